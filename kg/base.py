"""Protocols of the knowledge-graph layer."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from core.types import Chunk, Document, Entity, Extraction, Fact


class GraphStore(Protocol):
    """A property graph of documents, chunks and entities.

    Nodes: documents, chunks, entities. Edges: document -contains-> chunk, chunk -mentions-> entity, and
    entity -fact-> entity where each fact edge carries the id of the chunk it came from.
    """

    def upsert_document(self, document: Document) -> None: ...

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None: ...

    def add_extraction(self, extraction: Extraction) -> None:
        """Add the entities, mentions and facts one extractor found in one chunk (idempotent)."""
        ...

    def remove_chunks(self, chunk_ids: Iterable[str]) -> dict[str, int]:
        """Remove chunks with everything only they support (reference counting).

        Removes the chunk nodes, their mentions, every fact whose source chunk is removed, each entity that no
        remaining chunk mentions and no remaining fact uses, and each document left without chunks. Facts and
        entities still supported by another chunk are untouched. Returns counts of what was removed
        (``chunks``, ``mentions``, ``facts``, ``entities``, ``documents``).
        """
        ...

    def get_entity(self, entity_id: str) -> Entity | None: ...

    def entity_names(self) -> dict[str, str]:
        """Normalised entity name -> entity id, for linking questions to entities."""
        ...

    def facts_about(self, entity_ids: Iterable[str], *, limit: int) -> list[Fact]:
        """Facts whose subject or object is one of the entities, each with its source chunk id."""
        ...

    def chunks_mentioning(self, entity_ids: Iterable[str], *, limit: int) -> list[str]:
        """Ids of chunks that mention the entities, the chunks mentioning most of them first."""
        ...

    def has_chunk(self, chunk_id: str) -> bool: ...

    def walk_fact_provenance(self, fact: Fact) -> tuple[str, str] | None:
        """``(chunk_id, document_id)`` found by walking the stored fact -> its chunk -> its document.

        None when the fact is not stored or its chunk is not contained in a known document.
        """
        ...

    def counts(self) -> dict[str, int]:
        """Numbers of documents, chunks, entities, mentions and facts."""
        ...

    def save(self) -> None: ...


class Extractor(Protocol):
    """Finds entities, mentions and facts in a chunk."""

    name: str

    def extract(self, chunk: Chunk) -> Extraction: ...
