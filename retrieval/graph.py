"""Graph retrieval, HippoRAG-style: personalized PageRank over the entity-chunk graph, seeded by the question.

The graph is bipartite: every chunk is linked to every entity it mentions. A question is linked to graph entities
(:class:`kg.linking.EntityLinker`); those entities, weighted by specificity (1 / number of chunks that mention
them), and the dense hits, weighted by their normalised cosine scores times ``passage_weight``, form the
personalization vector. PageRank with restart spreads that mass across shared entities, so a bridge passage that
shares an entity with a passage the question names gets found even when its text is far from the question.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from core.errors import ConfigurationError, InputError
from core.types import RetrievedChunk
from kg.base import GraphStore
from kg.linking import EntityLinker
from retrieval.base import ChunkStore, Retriever
from retrieval.pagerank import personalized_pagerank, push_pagerank

__all__ = ["EntityChunkGraph", "GraphRetriever", "personalized_pagerank", "push_pagerank"]

#: Effectively unlimited: every chunk that mentions an entity.
_ALL = 1 << 30


@dataclass(frozen=True)
class EntityChunkGraph:
    """The entity-chunk graph as a column-stochastic sparse transition matrix, built once per store state.

    Rows/columns ``0 .. len(chunk_ids)-1`` are chunks, the rest are entities. ``adjacency`` (symmetric, CSR) and
    ``degree`` are kept for the local push, so nothing is rebuilt per question.
    """

    chunk_ids: list[str]
    entity_index: dict[str, int]
    chunk_index: dict[str, int]
    transition: sp.csr_matrix
    entity_chunk_counts: np.ndarray
    adjacency: sp.csr_matrix
    degree: np.ndarray

    @classmethod
    def build(cls, graph: GraphStore, chunk_ids: Sequence[str]) -> EntityChunkGraph:
        """Read every entity's mentioning chunks from the graph store and build the transition matrix."""
        chunk_list = list(dict.fromkeys(chunk_ids))
        chunk_index = {cid: i for i, cid in enumerate(chunk_list)}
        entity_ids = sorted(set(graph.entity_names().values()))
        rows: list[int] = []
        cols: list[int] = []
        entity_index: dict[str, int] = {}
        counts: list[int] = []
        for ent in entity_ids:
            mentioned = [chunk_index[c] for c in graph.chunks_mentioning([ent], limit=_ALL) if c in chunk_index]
            if not mentioned:
                continue
            node = len(chunk_list) + len(entity_index)
            entity_index[ent] = node
            counts.append(len(mentioned))
            rows.extend(mentioned)
            cols.extend([node] * len(mentioned))
        n = len(chunk_list) + len(entity_index)
        data = np.ones(len(rows) * 2, dtype=np.float64)
        adjacency = sp.coo_matrix(
            (data, (np.array(rows + cols, dtype=np.int64), np.array(cols + rows, dtype=np.int64))), shape=(n, n)
        ).tocsr()
        adjacency.sum_duplicates()
        degree = np.asarray(adjacency.sum(axis=0)).ravel()
        inverse = np.divide(1.0, degree, out=np.zeros_like(degree), where=degree > 0)
        transition = (adjacency @ sp.diags(inverse)).tocsr()  # column j spreads node j's mass to its neighbours
        return cls(
            chunk_ids=chunk_list,
            entity_index=entity_index,
            chunk_index=chunk_index,
            transition=transition,
            entity_chunk_counts=np.asarray(counts, dtype=np.float64),
            adjacency=adjacency,
            degree=degree,
        )

    @property
    def size(self) -> int:
        return int(self.transition.shape[0])


class GraphRetriever:
    """Ranks chunks by personalized PageRank seeded with the question's entities and its dense hits.

    ``seed_retriever`` (dense retrieval) gives the ``dense_seeds`` chunk seeds; ``passage_weight`` scales their
    min-max-normalised scores against the entity seeds (which sum to 1). A chunk's final score is its PageRank
    divided by the top chunk's, plus ``dense_mix`` times its cosine score when dense retrieval found it (in its
    top ``max(dense_seeds, top_k)``). With no linked entity the dense ranking is returned unchanged (method
    ``graph``). PageRank is computed by local push to precision ``ppr_epsilon`` (per unit of degree), or exactly by
    power iteration when ``ppr_epsilon`` is 0. The matrix is built on first use; call :meth:`refresh` after the store
    changes.
    """

    def __init__(
        self,
        seed_retriever: Retriever,
        chunks: ChunkStore,
        graph: GraphStore,
        linker: EntityLinker,
        top_k: int = 5,
        dense_seeds: int = 20,
        damping: float = 0.5,
        passage_weight: float = 0.2,
        dense_mix: float = 1.0,
        ppr_epsilon: float = 1e-6,
    ) -> None:
        if top_k < 1:
            raise ConfigurationError(f"retrieval top_k must be at least 1, got {top_k}")
        if dense_seeds < 1:
            raise ConfigurationError(f"graph dense_seeds must be at least 1, got {dense_seeds}")
        if not 0.0 < damping < 1.0:
            raise ConfigurationError(f"graph damping must be between 0 and 1 (exclusive), got {damping}")
        if ppr_epsilon < 0:
            raise ConfigurationError(f"graph ppr_epsilon must be >= 0 (0: exact power iteration), got {ppr_epsilon}")
        if passage_weight < 0 or dense_mix < 0:
            raise ConfigurationError(
                f"graph passage_weight and dense_mix must be >= 0, got {passage_weight} and {dense_mix}"
            )
        self.seed_retriever = seed_retriever
        self.chunks = chunks
        self.graph = graph
        self.linker = linker
        self.top_k = top_k
        self.dense_seeds = dense_seeds
        self.damping = damping
        self.passage_weight = passage_weight
        self.dense_mix = dense_mix
        self.ppr_epsilon = ppr_epsilon
        self._matrix: EntityChunkGraph | None = None

    def refresh(self) -> EntityChunkGraph:
        """Rebuild the entity-chunk matrix and the linker's name index from the current store."""
        self.linker.refresh()
        self._matrix = EntityChunkGraph.build(self.graph, [c.id for c in self.chunks.iter_chunks()])
        return self._matrix

    @property
    def matrix(self) -> EntityChunkGraph:
        return self._matrix if self._matrix is not None else self.refresh()

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]:
        """The ``top_k`` (default: the constructor's) chunks with the highest PageRank, best first."""
        if not question or not question.strip():
            raise InputError("the question is empty")
        k = self.top_k if top_k is None else top_k
        if k < 1:
            raise InputError(f"top_k must be at least 1, got {k}")
        matrix = self.matrix
        dense = self.seed_retriever.retrieve(question, top_k=max(self.dense_seeds, k))
        seeds = np.zeros(matrix.size, dtype=np.float64)
        for entity in self.linker.link(question):
            node = matrix.entity_index.get(entity.id)
            if node is not None:
                seeds[node] += 1.0 / matrix.entity_chunk_counts[node - len(matrix.chunk_ids)]
        if seeds.sum() <= 0:
            return [RetrievedChunk(chunk=h.chunk, score=h.score, method="graph") for h in dense[:k]]
        seeds /= seeds.sum()
        seed_hits = dense[: self.dense_seeds]
        if seed_hits and self.passage_weight > 0:
            scores = np.array([h.score for h in seed_hits], dtype=np.float64)
            spread = scores.max() - scores.min()
            normalised = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
            for hit, weight in zip(seed_hits, normalised, strict=True):
                row = matrix.chunk_index.get(hit.chunk.id)
                if row is not None:
                    seeds[row] += self.passage_weight * float(weight)
        n_chunks = len(matrix.chunk_ids)
        if self.ppr_epsilon > 0:
            ranks = push_pagerank(matrix.adjacency, seeds, self.damping, self.ppr_epsilon, degree=matrix.degree)
        else:
            ranks = personalized_pagerank(matrix.transition, seeds, self.damping)
        chunk_ranks = ranks[:n_chunks]
        # Only chunks PageRank reached or dense retrieval found can score above 0: rank those, not every chunk.
        dense_rows = {matrix.chunk_index[h.chunk.id]: h.score for h in dense if h.chunk.id in matrix.chunk_index}
        rows = np.union1d(np.flatnonzero(chunk_ranks > 0), np.fromiter(dense_rows, dtype=np.int64))
        top = chunk_ranks.max()
        row_scores = chunk_ranks[rows] / top if top > 0 else np.zeros(rows.size)
        row_scores += self.dense_mix * np.array([dense_rows.get(int(r), 0.0) for r in rows], dtype=np.float64)
        order = np.lexsort((rows, -row_scores))[:k]  # best score first, ties by row (as a stable full sort)
        ids = [matrix.chunk_ids[rows[i]] for i in order if row_scores[i] > 0]
        by_id = {matrix.chunk_ids[rows[i]]: float(row_scores[i]) for i in order}
        found = self.chunks.get_chunks(ids)
        return [RetrievedChunk(chunk=found[cid], score=by_id[cid], method="graph") for cid in ids if cid in found]
