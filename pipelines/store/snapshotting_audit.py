"""An audit store wrapper that snapshots the cited chunks and document versions beside every answer it saves."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.types import AnswerRecord, Chunk, Document
from pipelines.store.base import (
    AnswerSummary,
    AuditStore,
    DocumentSource,
    DocumentVersion,
    Review,
    ReviewDecision,
    SourceSnapshot,
)


class SnapshottingAuditStore:
    """Saves each record together with a snapshot of the chunks and document versions it used (cited passages,
    retrieval hits and the chunks behind graph facts), looked up in the chunk store at answer time. Everything else
    is the inner store's."""

    def __init__(
        self, inner: AuditStore, documents: DocumentSource, snapshot_id: Callable[[], str | None] | None = None
    ) -> None:
        self.inner = inner
        self.documents = documents
        self.snapshot_id = snapshot_id or (lambda: None)

    def save(self, record: AnswerRecord) -> None:
        wanted: dict[str, str] = {}
        for c in record.citations:
            wanted.setdefault(c.chunk_id, "cited")
        for r in record.provenance.retrieval:
            wanted.setdefault(r.chunk_id, "retrieved")
        for f in record.facts:
            wanted.setdefault(f.chunk_id, "fact")
        chunks = self.documents.get_chunks(list(wanted))
        docs: dict[str, Document] = {}
        sources: list[SourceSnapshot] = []
        snapshot_id = self.snapshot_id()
        for chunk_id, role in wanted.items():
            chunk = chunks.get(chunk_id)
            if chunk is None:
                continue
            doc = docs.get(chunk.document_id) or self.documents.get_document(chunk.document_id)
            if doc is None:
                continue
            docs[doc.id] = doc
            sources.append(_snapshot(chunk, doc, role, snapshot_id))
        self.inner.save_with_sources(record, sources, list(docs.values()))

    def save_with_sources(
        self, record: AnswerRecord, sources: Sequence[SourceSnapshot], documents: Sequence[Document]
    ) -> None:
        self.inner.save_with_sources(record, sources, documents)

    def get(self, answer_id: str) -> AnswerRecord:
        return self.inner.get(answer_id)

    def count(self) -> int:
        return self.inner.count()

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
        return self.inner.list_answers(start=start, end=end, decision=decision, q=q, limit=limit, offset=offset)

    def records(
        self, *, start: str | None = None, end: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AnswerRecord]:
        return self.inner.records(start=start, end=end, limit=limit, offset=offset)

    def sources(self, answer_id: str) -> list[SourceSnapshot]:
        return self.inner.sources(answer_id)

    def document_versions(self, hashes: Sequence[str]) -> dict[str, DocumentVersion]:
        return self.inner.document_versions(hashes)

    def add_review(
        self, answer_id: str, *, reviewer: str, decision: ReviewDecision, note: str, corrected_answer: str | None
    ) -> Review:
        return self.inner.add_review(
            answer_id, reviewer=reviewer, decision=decision, note=note, corrected_answer=corrected_answer
        )

    def reviews(self, answer_id: str) -> list[Review]:
        return self.inner.reviews(answer_id)

    def close(self) -> None:
        self.inner.close()


def _snapshot(chunk: Chunk, doc: Document, role: str, snapshot_id: str | None) -> SourceSnapshot:
    return SourceSnapshot(
        chunk_id=chunk.id,
        document_id=doc.id,
        document_sha256=doc.sha256,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        role=role,
        snapshot_id=snapshot_id,
    )
