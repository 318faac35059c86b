"""Adapter from kgrag's :class:`~retrieval.base.Embedder` to Ragas' modern embedding interface.

Importing this module imports Ragas (seconds); :mod:`evals.gate.ragas_gate` imports it only when a gate is built.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")

from ragas.embeddings.base import BaseRagasEmbedding  # noqa: E402

from retrieval.base import Embedder  # noqa: E402


class RagasEmbedderAdapter(BaseRagasEmbedding):
    """Lets Ragas metrics (answer relevancy) embed texts with kgrag's embedder; no caching, no network."""

    def __init__(self, embedder: Embedder) -> None:
        super().__init__(cache=None)
        self.embedder = embedder

    def embed_texts(self, texts: Sequence[str], **kwargs: Any) -> list[list[float]]:  # type: ignore[override]
        items = [str(t) for t in texts]
        if not items:
            return []
        vectors = self.embedder.embed(items)
        return [[float(x) for x in row] for row in vectors]

    def embed_text(self, text: str, **kwargs: Any) -> list[float]:
        return self.embed_texts([text])[0]

    async def aembed_text(self, text: str, **kwargs: Any) -> list[float]:
        return await asyncio.to_thread(self.embed_text, text)

    async def aembed_texts(self, texts: Sequence[str], **kwargs: Any) -> list[list[float]]:  # type: ignore[override]
        return await asyncio.to_thread(self.embed_texts, list(texts))

    def __repr__(self) -> str:
        return f"RagasEmbedderAdapter({getattr(self.embedder, 'model_name', type(self.embedder).__name__)})"
