"""Dense, BM25 and hybrid (weighted reciprocal rank fusion) retrieval over the chunk store."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from core.errors import ConfigurationError, InputError
from core.types import Chunk, RetrievedChunk
from retrieval.base import ChunkStore, Embedder, KeywordIndex, VectorIndex

RetrievalMode = Literal["dense", "bm25", "hybrid"]
_MODES: tuple[str, ...] = ("dense", "bm25", "hybrid")


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float], k: int
) -> list[tuple[str, float]]:
    """Fuse ranked id lists: ``score(id) = sum(weight_i / (k + rank_i(id)))`` with ranks starting at 1.

    A list that does not contain an id adds nothing for it; an id repeated inside one list counts at its first
    (best) rank only. Returns ``(id, score)`` best first; equal scores keep the order in which ids were first
    seen (the first ranking wins ties).
    """
    if len(rankings) != len(weights):
        raise ValueError(f"got {len(rankings)} rankings but {len(weights)} weights")
    if k < 0:
        raise ValueError(f"the RRF constant k must be >= 0, got {k}")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        seen: set[str] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                continue
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def _checked(question: str, top_k: int) -> int:
    """``top_k``, after checking that the question is not empty and ``top_k`` is at least 1 (InputError if not)."""
    if not question or not question.strip():
        raise InputError("the question is empty")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}")
    return top_k


class HybridRetriever:
    """Finds the chunks most relevant to a question by dense search, BM25, or both fused by weighted RRF.

    ``mode="dense"`` scores are cosine similarities, ``mode="bm25"`` scores are BM25 scores, and
    ``mode="hybrid"`` scores are fused RRF scores; each hit's ``method`` is the mode. Each ranker contributes its
    top ``candidates`` (at least ``top_k``) hits. Vector or keyword hits whose chunk is no longer in the chunk
    store are skipped.
    """

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorIndex,
        keywords: KeywordIndex,
        chunks: ChunkStore,
        mode: RetrievalMode = "hybrid",
        top_k: int = 5,
        candidates: int = 20,
        rrf_k: int = 60,
        dense_weight: float = 1.0,
        bm25_weight: float = 1.0,
    ) -> None:
        if mode not in _MODES:
            raise ConfigurationError(f"retrieval mode must be one of {', '.join(_MODES)}, got {mode!r}")
        if top_k < 1:
            raise ConfigurationError(f"retrieval top_k must be at least 1, got {top_k}")
        if candidates < 1:
            raise ConfigurationError(f"retrieval candidates must be at least 1, got {candidates}")
        if rrf_k < 0:
            raise ConfigurationError(f"retrieval rrf_k must be >= 0, got {rrf_k}")
        if dense_weight < 0 or bm25_weight < 0 or (mode == "hybrid" and dense_weight + bm25_weight == 0):
            raise ConfigurationError(
                f"retrieval weights must be >= 0 and not both 0, got dense={dense_weight}, bm25={bm25_weight}"
            )
        self.embedder = embedder
        self.vectors = vectors
        self.keywords = keywords
        self.chunks = chunks
        self.mode: RetrievalMode = mode
        self.top_k = top_k
        self.candidates = candidates
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.bm25_weight = bm25_weight

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]:
        """The ``top_k`` (default: the constructor's) best chunks for ``question``, best first."""
        k = _checked(question, self.top_k if top_k is None else top_k)
        pool = max(self.candidates, k)

        if self.mode == "dense":
            return [RetrievedChunk(chunk=c, score=s, method="dense") for c, s in self._dense(question, pool)[:k]]
        if self.mode == "bm25":
            return [RetrievedChunk(chunk=c, score=s, method="bm25") for c, s in self._bm25(question, pool)[:k]]

        dense = self._dense(question, pool) if self.dense_weight > 0 else []
        lexical = self._bm25(question, pool) if self.bm25_weight > 0 else []
        by_id: dict[str, Chunk] = {c.id: c for c, _ in dense}
        by_id.update((c.id, c) for c, _ in lexical)
        fused = reciprocal_rank_fusion(
            [[c.id for c, _ in dense], [c.id for c, _ in lexical]],
            [self.dense_weight, self.bm25_weight],
            self.rrf_k,
        )
        return [RetrievedChunk(chunk=by_id[cid], score=score, method="hybrid") for cid, score in fused[:k]]

    def dense_ids(self, question: str, top_k: int) -> list[tuple[str, float]]:
        """The ``top_k`` best chunks by dense search as ``(chunk id, cosine score)``, best first, without reading the
        chunks (whatever this retriever's mode): the ids and scores of ``retrieve`` in dense mode. Like it, it
        searches ``max(candidates, top_k)`` vectors and skips hits whose chunk is gone."""
        k = _checked(question, top_k)
        hits = self._vector_hits(question, max(self.candidates, k))
        ids = self.chunks.chunk_ids_by_vector_ids([vid for vid, _ in hits])
        return [(ids[vid], score) for vid, score in hits if vid in ids][:k]

    def _vector_hits(self, question: str, pool: int) -> list[tuple[int, float]]:
        return self.vectors.search(self.embedder.embed([question])[0], pool)

    def _dense(self, question: str, pool: int) -> list[tuple[Chunk, float]]:
        hits = self._vector_hits(question, pool)
        found = self.chunks.chunks_by_vector_ids([vid for vid, _ in hits])
        return [(found[vid], score) for vid, score in hits if vid in found]

    def _bm25(self, question: str, pool: int) -> list[tuple[Chunk, float]]:
        hits = self.keywords.search(question, pool)
        found = self.chunks.get_chunks([cid for cid, _ in hits])
        return [(found[cid], score) for cid, score in hits if cid in found]
