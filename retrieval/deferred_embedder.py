"""An embedder that loads its model on the first texts to embed: runs that embed nothing never load it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from core.errors import ConfigurationError
from retrieval.base import Embedder


class DeferredEmbedder:
    """Stands for the embedder ``load()`` builds, with its ``model_name`` and ``dimension`` known beforehand (what
    opening a store checks); ``load()`` runs on the first :meth:`embed` of at least one text, once.

    A no-change ingestion or a delete embeds nothing, so it never loads the model (nor torch or ONNX Runtime). A
    loaded embedder whose name or dimension differs from the declared ones is a :class:`ConfigurationError`.
    """

    def __init__(self, model_name: str, dimension: int, load: Callable[[], Embedder]) -> None:
        self.model_name = model_name
        self.dimension = dimension
        self._load = load
        self._loaded: Embedder | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded."""
        return self._loaded is not None

    def get(self) -> Embedder:
        """The real embedder, loaded now if it was not yet."""
        with self._lock:
            if self._loaded is None:
                embedder = self._load()
                if (embedder.model_name, embedder.dimension) != (self.model_name, self.dimension):
                    raise ConfigurationError(
                        f"the embedding model loaded as {embedder.model_name!r} ({embedder.dimension}-d), "
                        f"not {self.model_name!r} ({self.dimension}-d) as its files say",
                        hint="check the model directory's modules.json and module configs",
                    )
                self._loaded = embedder
            return self._loaded

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts`` with the real embedder (loading it first); no texts load nothing."""
        if not isinstance(texts, str) and len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return self.get().embed(texts, show_progress=show_progress)
