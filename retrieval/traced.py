"""A retrieval as a span: ``retrieval <mode>`` around any :class:`~retrieval.base.Retriever`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from core.types import RetrievedChunk
from retrieval.base import Retriever

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class TracedRetriever:
    """Runs ``inner`` inside a span named ``retrieval <mode>`` with the mode, ``top_k``, the hits found, the best
    score and the time taken (``kgrag.retrieval.*``); a retriever nested inside (graph mode's dense seeds, a
    reranked retriever) that is traced too is a child span."""

    def __init__(self, inner: Retriever, tracer: Tracer, mode: str, top_k: int) -> None:
        self.inner = inner
        self.tracer = tracer
        self.mode = mode
        self.top_k = top_k

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]:
        k = self.top_k if top_k is None else top_k
        attributes: dict[str, str | int] = {"kgrag.retrieval.mode": self.mode, "kgrag.retrieval.top_k": k}
        with self.tracer.start_as_current_span(f"retrieval {self.mode}", attributes=attributes) as span:
            started = time.perf_counter()
            hits = self.inner.retrieve(question, top_k=top_k)
            if span.is_recording():
                span.set_attributes(
                    {
                        "kgrag.retrieval.duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "kgrag.retrieval.hits": len(hits),
                        "kgrag.retrieval.top_score": hits[0].score if hits else 0.0,
                        "kgrag.retrieval.chunk_ids": [h.chunk.id for h in hits],
                    }
                )
            return hits
