"""Graph retrieval, HippoRAG-style: personalized PageRank over the entity-chunk graph, seeded by the question.

The graph is bipartite: every chunk is linked to every entity it mentions. A question is linked to graph entities
(:class:`kg.linking.EntityLinker`); those entities, weighted by specificity (1 / number of chunks that mention
them), and the dense hits, weighted by their normalised cosine scores times ``passage_weight``, form the
personalization vector. PageRank with restart spreads that mass across shared entities, so a bridge passage that
shares an entity with a passage the question names gets found even when its text is far from the question. An
optional :class:`retrieval.bridge.TitleBridge` then lifts the documents the top passages name by title.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from core.errors import ConfigurationError, InputError
from core.types import Chunk, Entity, RetrievedChunk
from kg.base import GraphStore
from kg.linking import EntityLinker
from retrieval.base import ChunkStore, DenseSeedRetriever
from retrieval.bridge import TitleBridge, TitleIndex
from retrieval.pagerank import personalized_pagerank, push_pagerank, sparse_push_pagerank

__all__ = ["EntityChunkGraph", "GraphRetriever", "personalized_pagerank", "push_pagerank", "sparse_push_pagerank"]

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


#: What :meth:`GraphRetriever.variant` copies (each is a constructor argument kept as an attribute of that name).
_CONSTRUCTOR_ARGUMENTS = (
    "seed_retriever", "chunks", "graph", "linker", "top_k", "dense_seeds", "damping", "passage_weight", "dense_mix",
    "ppr_epsilon", "bridge",
)  # fmt: skip
#: Reached chunks sorted before the title bridge reads the first documents of the ranking.
_BRIDGE_HEAD = 64


def best_first(rows: np.ndarray, scores: np.ndarray, count: int) -> np.ndarray:
    """Positions of the ``count`` best ``scores`` (ties: lower ``rows`` first), in that order: exactly the first
    ``count`` of ``np.lexsort((rows, -scores))``, without sorting every position when ``count`` is small."""
    if count >= rows.size:
        return np.lexsort((rows, -scores))
    if count <= 0:
        return np.zeros(0, dtype=np.int64)
    kth = np.partition(scores, scores.size - count)[scores.size - count]  # the count-th best score
    head = np.flatnonzero(scores >= kth)  # every position scoring at least that, ties included
    return head[np.lexsort((rows[head], -scores[head]))][:count]


class GraphRetriever:
    """Ranks chunks by personalized PageRank seeded with the question's entities and its dense hits.

    ``seed_retriever`` (dense retrieval) gives the ``dense_seeds`` chunk seeds; ``passage_weight`` scales their
    min-max-normalised scores against the entity seeds (which sum to 1). A chunk's final score is its PageRank
    divided by the top chunk's, plus ``dense_mix`` times its cosine score when dense retrieval found it (in its
    top ``max(dense_seeds, top_k)``). With no linked entity the dense ranking is returned (method ``graph``).
    PageRank is computed by local push to precision ``ppr_epsilon`` (per unit of degree), or exactly by power
    iteration when ``ppr_epsilon`` is 0. With a ``bridge``, the documents that the top passages name by title are
    lifted to just below them (:class:`retrieval.bridge.TitleBridge`; also on the dense fallback). The matrix (and
    the bridge's title index) is built on first use; call :meth:`refresh` after the store changes. The question's
    entities are linked on a worker thread (one per retriever, started on first use) while the calling thread runs
    the dense search.
    """

    def __init__(
        self,
        seed_retriever: DenseSeedRetriever,
        chunks: ChunkStore,
        graph: GraphStore,
        linker: EntityLinker,
        top_k: int = 5,
        dense_seeds: int = 20,
        damping: float = 0.5,
        passage_weight: float = 0.2,
        dense_mix: float = 1.0,
        ppr_epsilon: float = 1e-5,
        bridge: TitleBridge | None = None,
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
        self.bridge = bridge
        self._matrix: EntityChunkGraph | None = None
        self._titles: TitleIndex | None = None
        self._worker: ThreadPoolExecutor | None = None  # links entities beside the dense search (one per retriever)
        self._worker_lock = threading.Lock()

    def variant(self, **changes: Any) -> GraphRetriever:
        """A retriever like this one with some constructor arguments changed (``seed_retriever=``, ``linker=``,
        ``damping=``, ``bridge=``...), sharing this one's entity-chunk matrix and, when its bridge is the same, its
        title index: nothing is rebuilt, so variants can be compared on one store side by side."""
        arguments: dict[str, Any] = {name: getattr(self, name) for name in _CONSTRUCTOR_ARGUMENTS}
        arguments.update(changes)
        other = GraphRetriever(**arguments)
        other._matrix = self.matrix
        if other.bridge is not None and other.bridge == self.bridge:
            other._titles = self.titles
        return other

    def refresh(self) -> EntityChunkGraph:
        """Rebuild the entity-chunk matrix, the bridge's title index and the linker's name index from the store."""
        self.linker.refresh()
        chunk_ids: list[str] = []

        def chunks() -> Iterable[Chunk]:
            for chunk in self.chunks.iter_chunks():
                chunk_ids.append(chunk.id)
                yield chunk

        if self.bridge is not None:
            self._titles = self.bridge.index(chunks())
        else:
            chunk_ids = [c.id for c in self.chunks.iter_chunks()]
        self._matrix = EntityChunkGraph.build(self.graph, chunk_ids)
        return self._matrix

    @property
    def matrix(self) -> EntityChunkGraph:
        return self._matrix if self._matrix is not None else self.refresh()

    @property
    def titles(self) -> TitleIndex | None:
        """The bridge's title index (``None`` without a bridge), built with the matrix."""
        if self.bridge is not None and self._titles is None:
            self.refresh()
        return self._titles

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]:
        """The ``top_k`` (default: the constructor's) chunks with the highest PageRank, best first."""
        if not question or not question.strip():
            raise InputError("the question is empty")
        k = self.top_k if top_k is None else top_k
        if k < 1:
            raise InputError(f"top_k must be at least 1, got {k}")
        matrix = self.matrix
        dense, linked = self._seeds(question, max(self.dense_seeds, k))
        n_chunks = len(matrix.chunk_ids)
        seeds = self._seed_weights(matrix, dense, linked)
        if not seeds:
            return self._bridge_dense(dense, k)
        nodes = np.fromiter(seeds, dtype=np.int64, count=len(seeds))
        weights = np.fromiter(seeds.values(), dtype=np.float64, count=len(seeds))
        if self.ppr_epsilon > 0:
            reached, ranks = sparse_push_pagerank(
                matrix.adjacency, nodes, weights, self.damping, self.ppr_epsilon, degree=matrix.degree
            )
        else:
            seed_vector = np.zeros(matrix.size, dtype=np.float64)
            seed_vector[nodes] = weights
            every = personalized_pagerank(matrix.transition, seed_vector, self.damping)
            reached = np.flatnonzero(every)
            ranks = every[reached]
        cut = int(np.searchsorted(reached, n_chunks))  # reached is ascending: chunks first, then entities
        ranked_rows, chunk_ranks = reached[:cut], ranks[:cut]
        # Only chunks PageRank reached or dense retrieval found can score above 0: rank those, not every chunk.
        dense_rows = {matrix.chunk_index[cid]: score for cid, score in dense if cid in matrix.chunk_index}
        dense_at = np.fromiter(dense_rows, dtype=np.int64, count=len(dense_rows))
        # The dense hits PageRank did not reach join the reached rows where they sort (few: no sort of the many).
        at = np.searchsorted(ranked_rows, dense_at)
        reached_too = at < cut
        reached_too[reached_too] = ranked_rows[at[reached_too]] == dense_at[reached_too]
        unreached = np.sort(dense_at[~reached_too])
        slots = np.searchsorted(ranked_rows, unreached)
        top = chunk_ranks.max() if cut else 0.0
        rows = np.insert(ranked_rows, slots, unreached)  # ascending
        row_scores = np.insert(chunk_ranks / top if top > 0 else np.zeros(cut), slots, 0.0)
        dense_scores = np.fromiter(dense_rows.values(), dtype=np.float64, count=len(dense_rows))
        np.add.at(row_scores, np.searchsorted(rows, dense_at), self.dense_mix * dense_scores)
        if self.bridge is not None:
            rows, row_scores = self._bridge_rows(matrix, rows, row_scores)
        order = best_first(rows, row_scores, k)  # best score first, ties by row (as a stable full sort)
        ids = [matrix.chunk_ids[rows[i]] for i in order if row_scores[i] > 0]
        by_id = {matrix.chunk_ids[rows[i]]: float(row_scores[i]) for i in order}
        found = self.chunks.get_chunks(ids)
        return [RetrievedChunk(chunk=found[cid], score=by_id[cid], method="graph") for cid in ids if cid in found]

    def _seed_weights(
        self, matrix: EntityChunkGraph, dense: list[tuple[str, float]], linked: list[Entity]
    ) -> dict[int, float]:
        """The personalization, node -> weight (only the seeded nodes, never a vector over the whole graph): the
        linked entities by specificity, summing to 1, plus the dense seed hits' normalised scores times
        ``passage_weight``. Empty when no linked entity is in the graph."""
        n_chunks = len(matrix.chunk_ids)
        seeds: dict[int, float] = {}
        for entity in linked:
            node = matrix.entity_index.get(entity.id)
            if node is not None:
                seeds[node] = seeds.get(node, 0.0) + 1.0 / matrix.entity_chunk_counts[node - n_chunks]
        if not seeds:
            return seeds
        entity_total = sum(seeds.values())
        seeds = {node: weight / entity_total for node, weight in seeds.items()}
        seed_hits = dense[: self.dense_seeds]
        if seed_hits and self.passage_weight > 0:
            scores = np.array([score for _, score in seed_hits], dtype=np.float64)
            spread = scores.max() - scores.min()
            normalised = (scores - scores.min()) / spread if spread > 0 else np.ones_like(scores)
            for (chunk_id, _), weight in zip(seed_hits, normalised, strict=True):
                row = matrix.chunk_index.get(chunk_id)
                if row is not None:
                    seeds[row] = seeds.get(row, 0.0) + self.passage_weight * float(weight)
        return seeds

    def _seeds(self, question: str, pool: int) -> tuple[list[tuple[str, float]], list[Entity]]:
        """The dense hits (top ``pool``, chunk ids and scores) and the linked entities of ``question``, found side by
        side: the entities are linked on a worker thread while this one embeds the question and searches, which
        mostly runs outside the GIL (ONNX Runtime, FAISS), so on a multi-core machine the linking costs the request
        almost no time."""
        with self._worker_lock:
            if self._worker is None:
                self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kgrag-entity-linking")
            linking = self._worker.submit(self.linker.link, question)
        try:
            dense = self.seed_retriever.dense_ids(question, pool)
        except BaseException:
            wait([linking])  # no stray work left behind; the search's error is the one raised
            raise
        return dense, linking.result()

    def _bridge_rows(
        self, matrix: EntityChunkGraph, rows: np.ndarray, row_scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``rows`` (ascending) and their scores with the title bridge's chunks lifted (inserted when not there)."""
        assert self.bridge is not None
        titles = self.titles
        if titles is None or rows.size == 0:
            return rows, row_scores

        def position(row: int) -> int:
            """Where ``row`` is in ``rows``, or -1."""
            at = int(np.searchsorted(rows, row))
            return at if at < rows.size and rows[at] == row else -1

        def score_of(chunk_id: str) -> float:
            row = matrix.chunk_index.get(chunk_id)
            at = -1 if row is None else position(row)
            return float(row_scores[at]) if at >= 0 else 0.0

        def ranked() -> Iterator[tuple[str, float]]:
            # The bridge reads the first few documents only: sort a head, the whole ranking only if it asks for more.
            head = best_first(rows, row_scores, _BRIDGE_HEAD)
            yield from ((matrix.chunk_ids[rows[i]], float(row_scores[i])) for i in head)
            if head.size < rows.size:
                rest = best_first(rows, row_scores, rows.size)[head.size :]
                yield from ((matrix.chunk_ids[rows[i]], float(row_scores[i])) for i in rest)

        lifted = self.bridge.lift(
            ranked(),
            score_of,
            lambda ids: {cid: c.text for cid, c in self.chunks.get_chunks(ids).items()},
            titles,
        )
        scores = row_scores.copy()
        added: dict[int, float] = {}
        for chunk_id, score in lifted.items():
            row = matrix.chunk_index.get(chunk_id)
            if row is None:
                continue
            at = position(row)
            if at >= 0:
                scores[at] = score
            else:
                added[row] = score
        if not added:
            return rows, scores
        new_rows = np.fromiter(added, dtype=rows.dtype, count=len(added))
        order = np.argsort(new_rows)
        slots = np.searchsorted(rows, new_rows[order])  # positions in the original arrays: the result stays ascending
        new_scores = np.fromiter(added.values(), dtype=np.float64, count=len(added))[order]
        return np.insert(rows, slots, new_rows[order]), np.insert(scores, slots, new_scores)

    def _bridge_dense(self, dense: list[tuple[str, float]], k: int) -> list[RetrievedChunk]:
        """The dense fallback's top ``k``, with the title bridge's chunks lifted among them."""
        titles = self.titles
        with_bridge = self.bridge is not None and titles is not None
        found = self.chunks.get_chunks([cid for cid, _ in (dense if with_bridge else dense[:k])])
        hits = [RetrievedChunk(chunk=found[cid], score=score, method="graph") for cid, score in dense if cid in found]
        if self.bridge is None or titles is None or not hits:
            return hits[:k]
        by_id: dict[str, RetrievedChunk] = {}
        for hit in hits:
            by_id.setdefault(hit.chunk.id, hit)
        lifted = self.bridge.lift(
            ((h.chunk.id, h.score) for h in hits),
            lambda cid: by_id[cid].score if cid in by_id else 0.0,
            lambda ids: {cid: by_id[cid].chunk.text for cid in ids if cid in by_id},
            titles,
        )
        if not lifted:
            return hits[:k]
        found = self.chunks.get_chunks([cid for cid in lifted if cid not in by_id])
        for cid, score in lifted.items():
            chunk = by_id[cid].chunk if cid in by_id else found.get(cid)
            if chunk is not None:
                by_id[cid] = RetrievedChunk(chunk=chunk, score=score, method="graph")
        # Stable: equal scores keep the dense order, lifted chunks go after the hits they tie with.
        return sorted(by_id.values(), key=lambda h: -h.score)[:k]
