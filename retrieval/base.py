"""Protocols of the retrieval layer: one interface per concern, one implementation per file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from core.types import Chunk, Document, RetrievedChunk

if TYPE_CHECKING:
    import numpy as np


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (inner product == cosine)."""

    model_name: str
    dimension: int

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Return an array of shape ``(len(texts), dimension)``, dtype float32, rows normalised."""
        ...


class VectorIndex(Protocol):
    """Vectors keyed by int64 ids, with deletes; persisted in the store directory."""

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None: ...

    def remove(self, ids: Sequence[int]) -> int:
        """Remove vectors by id; return how many were removed."""
        ...

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k ``(id, score)`` by inner product, best first."""
        ...

    def __len__(self) -> int: ...

    def save(self) -> None: ...


class KeywordIndex(Protocol):
    """A lexical (BM25) index over chunk texts, keyed by chunk id."""

    def rebuild(self, chunk_ids: Sequence[str], texts: Sequence[str]) -> None: ...

    @property
    def updatable(self) -> bool:
        """Whether :meth:`remove` can update the index in place of a rebuild."""
        ...

    def remove(self, chunk_ids: Iterable[str]) -> None:
        """Drop these chunks; the index is then the one a rebuild over the remaining chunks would give."""
        ...

    def chunk_ids(self) -> list[str]: ...

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k ``(chunk_id, score)``, best first; an empty list when nothing matches."""
        ...

    def __len__(self) -> int: ...

    def save(self) -> None: ...


class ChunkStore(Protocol):
    """Documents and their chunks (the citation source of truth), with the int id each chunk has in the vector index."""

    def put_document(self, document: Document, chunks: Sequence[Chunk]) -> tuple[list[int], list[int]]:
        """Store a document and its chunks, replacing any older version of the same document id.

        Returns ``(vector_ids, replaced_vector_ids)``: the vector id of each new chunk, in order, and the vector ids
        of the older version's chunks that were removed (the caller removes those from the vector index).
        """
        ...

    def get_document(self, document_id: str) -> Document | None: ...

    def get_chunk(self, chunk_id: str) -> Chunk | None: ...

    def chunks_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, Chunk]: ...

    def chunk_ids_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, str]:
        """Map each known vector id to its chunk's id, without reading the chunks; unknown ids are left out."""
        ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]: ...

    def iter_chunks(self) -> Iterator[Chunk]: ...

    def chunk_ids(self) -> list[str]:
        """Every chunk id, in the order of :meth:`iter_chunks`."""
        ...

    def document_count(self) -> int: ...

    def chunk_count(self) -> int: ...


class Retriever(Protocol):
    """Finds the chunks most relevant to a question."""

    def retrieve(self, question: str, *, top_k: int | None = None) -> list[RetrievedChunk]: ...


class DenseSeedRetriever(Retriever, Protocol):
    """A retriever that also gives its dense ranking as chunk ids and cosine scores, without reading the chunks:
    what graph mode seeds its PageRank with (it reads only the chunks it returns)."""

    def dense_ids(self, question: str, top_k: int) -> list[tuple[str, float]]: ...
