"""The store layer's interfaces: the audit store Protocol, the records it keeps, and what a snapshot reads documents
from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, Field

from core.types import AnswerRecord, Chunk, Document, GateDecision

ReviewDecision = Literal["approved", "rejected", "corrected"]


class AnswerSummary(BaseModel):
    """One row of an answer listing."""

    answer_id: str
    created_at: str
    question: str
    answer: str
    decision: GateDecision
    citations: int
    reviews: int = 0


class SourceSnapshot(BaseModel):
    """A chunk an answer used, and the document version it belonged to at answer time."""

    chunk_id: str
    document_id: str
    document_sha256: str
    start: int
    end: int
    text: str
    role: str = Field(description="cited, retrieved or fact")
    snapshot_id: str | None = Field(default=None, description="The published store snapshot (ingestion run) read.")


class DocumentVersion(BaseModel):
    """The full text of a document version, keyed by its content hash."""

    sha256: str
    document_id: str
    source: str
    title: str
    media_type: str
    text: str
    first_seen: str


class Review(BaseModel):
    """A reviewer's decision on an answer: a new record linked to it (the answer itself never changes)."""

    review_id: str
    answer_id: str
    created_at: str
    reviewer: str
    decision: ReviewDecision
    note: str = ""
    corrected_answer: str | None = None


class AuditStore(Protocol):
    """Append-only storage of answer records keyed by answer id, with their source snapshots and reviews.

    Records are only ever inserted: saving an id that exists fails and leaves the stored record as it was. Beside a
    record the store keeps the chunks it used (:class:`SourceSnapshot`) and the full text of those chunks' document
    versions (:class:`DocumentVersion`, stored once per content hash). Reviews are new records linked to an answer,
    never edits of it. ``get`` and ``add_review`` raise :class:`~core.errors.AnswerNotFoundError` for an unknown id;
    a ``corrected`` review without corrected text is an :class:`~core.errors.InputError`.
    """

    def save(self, record: AnswerRecord) -> None:
        """Insert ``record`` without a source snapshot."""
        ...

    def save_with_sources(
        self, record: AnswerRecord, sources: Sequence[SourceSnapshot], documents: Sequence[Document]
    ) -> None:
        """Insert the record, its source snapshot and any document versions not stored yet, in one transaction."""
        ...

    def get(self, answer_id: str) -> AnswerRecord:
        """The record saved under ``answer_id``."""
        ...

    def count(self) -> int:
        """How many records are stored."""
        ...

    def list_answers(
        self,
        *,
        start: str | None = None,
        end: str | None = None,
        decision: str | None = None,
        q: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AnswerSummary]:
        """Answers newest first, filtered by creation time ``[start, end)`` (ISO UTC), decision and text."""
        ...

    def records(
        self, *, start: str | None = None, end: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AnswerRecord]:
        """Whole records newest first (ties by answer id, descending), created in ``[start, end)`` (ISO UTC): a page
        of them."""
        ...

    def sources(self, answer_id: str) -> list[SourceSnapshot]:
        """The chunks the answer used, as they were when it was given."""
        ...

    def document_versions(self, hashes: Sequence[str]) -> dict[str, DocumentVersion]:
        """The stored document versions among ``hashes``, by hash."""
        ...

    def add_review(
        self, answer_id: str, *, reviewer: str, decision: ReviewDecision, note: str, corrected_answer: str | None
    ) -> Review:
        """Record a review as a new record linked to the answer (which must exist)."""
        ...

    def reviews(self, answer_id: str) -> list[Review]:
        """The answer's reviews, oldest first."""
        ...

    def close(self) -> None:
        """Release the connections."""
        ...


class DocumentSource(Protocol):
    """The part of the chunk store the snapshot needs."""

    def get_document(self, document_id: str) -> Document | None: ...

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]: ...
