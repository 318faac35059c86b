"""The audit store: every answer record, written before the answer is returned, never updated in place.

One SQLAlchemy implementation serves the embedded SQLite file and PostgreSQL (``KGRAG_AUDIT__URL``). Besides the
records it keeps, per answer, a snapshot of the chunks and document versions the answer used, so the provenance
graph shows the sources as they were when the answer was given even after re-indexing changed or deleted them.
Reviews are new rows linked to the answer, never edits of it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, OperationalError

from core.errors import AnswerNotFoundError, ConfigurationError, InputError
from core.types import AnswerRecord, Document
from pipelines.store.base import AnswerSummary, AuditStore, DocumentVersion, Review, ReviewDecision, SourceSnapshot
from prompts.rollback import Outcome

_META = sa.MetaData()
_ANSWERS = sa.Table(
    "answers",
    _META,
    sa.Column("answer_id", sa.Text, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("question", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    # What ``list_answers(q=...)`` searches: question, answer and citation texts (never the record's JSON keys).
    sa.Column("search_text", sa.Text, nullable=True),
)
#: Time order without a sort of the whole table: listings, KPI reports (pages of ``records``), the drift watch's seed.
_BY_TIME = sa.Index("ix_answers_created_at", _ANSWERS.c.created_at, _ANSWERS.c.answer_id)
_DOCUMENTS = sa.Table(
    "document_versions",
    _META,
    sa.Column("sha256", sa.Text, primary_key=True),
    sa.Column("document_id", sa.Text, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("media_type", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("first_seen", sa.Text, nullable=False),
)
_SOURCES = sa.Table(
    "answer_sources",
    _META,
    sa.Column("answer_id", sa.Text, primary_key=True),
    sa.Column("chunk_id", sa.Text, primary_key=True),
    sa.Column("document_id", sa.Text, nullable=False),
    sa.Column("document_sha256", sa.Text, nullable=False),
    sa.Column("start", sa.Integer, nullable=False),
    sa.Column("end", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("snapshot_id", sa.Text, nullable=True),
)
_REVIEWS = sa.Table(
    "reviews",
    _META,
    sa.Column("review_id", sa.Text, primary_key=True),
    sa.Column("answer_id", sa.Text, nullable=False, index=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("reviewer", sa.Text, nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("corrected_answer", sa.Text, nullable=True),
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _searchable(text: str) -> str:
    """NUL as U+FFFD: PostgreSQL text cannot hold NUL, and a searched NUL must still match only a NUL."""
    return text.replace("\x00", "\ufffd")


def search_text(record: AnswerRecord) -> str:
    """The text an answer is found by: its question, its answer and the texts of its citations, one per line."""
    return _searchable("\n".join([record.question, record.answer, *(c.text for c in record.citations)]))


class SqlAuditStore:
    """Answer records, source snapshots and reviews in any SQLAlchemy database; rows are only ever inserted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        sqlite = url.startswith("sqlite")
        try:
            self._engine = sa.create_engine(
                url, connect_args={"check_same_thread": False} if sqlite else {}, pool_pre_ping=not sqlite
            )
            if sqlite:

                @sa.event.listens_for(self._engine, "connect")
                def _wal(dbapi_connection: Any, _: Any) -> None:
                    dbapi_connection.execute("PRAGMA journal_mode=WAL")

            _META.create_all(self._engine)
            _BY_TIME.create(self._engine, checkfirst=True)  # stores made before the index get it
            self._add_search_text()
        except (OperationalError, ImportError, sa.exc.ArgumentError) as exc:
            raise ConfigurationError(
                f"cannot open the audit database {sa.engine.make_url(url).render_as_string(hide_password=True)}: "
                f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                hint="check KGRAG_AUDIT__URL (e.g. postgresql+psycopg://user:pw@127.0.0.1:5432/kgrag) and that "
                "the server is running",
            ) from exc

    def _add_search_text(self) -> None:
        """Stores made before the ``search_text`` column get it, filled from their records (once)."""
        columns = {c["name"] for c in sa.inspect(self._engine).get_columns("answers")}
        with self._engine.begin() as conn:
            if "search_text" not in columns:
                conn.execute(sa.text("ALTER TABLE answers ADD COLUMN search_text TEXT"))
            rows = conn.execute(
                sa.select(_ANSWERS.c.answer_id, _ANSWERS.c.record).where(_ANSWERS.c.search_text.is_(None))
            ).all()
            for answer_id, raw in rows:
                text = search_text(AnswerRecord.model_validate_json(raw))
                conn.execute(_ANSWERS.update().where(_ANSWERS.c.answer_id == answer_id).values(search_text=text))

    # ----- records -----

    def save(self, record: AnswerRecord) -> None:
        self.save_with_sources(record, [], [])

    def save_with_sources(
        self, record: AnswerRecord, sources: Sequence[SourceSnapshot], documents: Sequence[Document]
    ) -> None:
        """Insert the record, its source snapshot and any document versions not stored yet, in one transaction."""
        with self._lock, self._engine.begin() as conn:
            conn.execute(
                _ANSWERS.insert().values(
                    answer_id=record.answer_id,
                    created_at=record.created_at,
                    question=record.question,
                    decision=record.provenance.gate.decision,
                    record=record.model_dump_json(),
                    search_text=search_text(record),
                )
            )
            known = {
                row[0]
                for row in conn.execute(
                    sa.select(_DOCUMENTS.c.sha256).where(_DOCUMENTS.c.sha256.in_([d.sha256 for d in documents]))
                )
            }
            for doc in documents:
                if doc.sha256 in known:
                    continue
                known.add(doc.sha256)
                conn.execute(
                    _DOCUMENTS.insert().values(
                        sha256=doc.sha256,
                        document_id=doc.id,
                        source=doc.source,
                        title=doc.title,
                        media_type=doc.media_type,
                        text=doc.text,
                        first_seen=record.created_at,
                    )
                )
            if sources:
                conn.execute(_SOURCES.insert(), [{"answer_id": record.answer_id, **s.model_dump()} for s in sources])

    def get(self, answer_id: str) -> AnswerRecord:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(_ANSWERS.c.record).where(_ANSWERS.c.answer_id == answer_id)).first()
        if row is None:
            raise AnswerNotFoundError(f"no answer with id {answer_id!r}", hint="list answers with GET /v1/answers")
        return AnswerRecord.model_validate_json(row[0])

    def count(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(_ANSWERS)).scalar_one())

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
        review_counts = (
            sa.select(_REVIEWS.c.answer_id, sa.func.count().label("n")).group_by(_REVIEWS.c.answer_id).subquery()
        )
        query = sa.select(_ANSWERS.c.record, sa.func.coalesce(review_counts.c.n, 0)).outerjoin(
            review_counts, review_counts.c.answer_id == _ANSWERS.c.answer_id
        )
        if start:
            query = query.where(_ANSWERS.c.created_at >= start)
        if end:
            query = query.where(_ANSWERS.c.created_at < end)
        if decision:
            query = query.where(_ANSWERS.c.decision == decision)
        if q:
            # autoescape: % and _ are literal, and so is a backslash ("/" is the escape character).
            query = query.where(_ANSWERS.c.search_text.icontains(_searchable(q), autoescape=True))
        query = query.order_by(_ANSWERS.c.created_at.desc(), _ANSWERS.c.answer_id).limit(limit).offset(offset)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        out = []
        for raw, reviews in rows:
            rec = AnswerRecord.model_validate_json(raw)
            out.append(
                AnswerSummary(
                    answer_id=rec.answer_id,
                    created_at=rec.created_at,
                    question=rec.question,
                    answer=rec.answer,
                    decision=rec.provenance.gate.decision,
                    citations=len(rec.citations),
                    reviews=int(reviews),
                )
            )
        return out

    def records(
        self, *, start: str | None = None, end: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[AnswerRecord]:
        """Whole records newest first (ties by answer id, descending), created in ``[start, end)`` (ISO UTC): a page
        of them, read along the time index."""
        query = sa.select(_ANSWERS.c.record)
        if start:
            query = query.where(_ANSWERS.c.created_at >= start)
        if end:
            query = query.where(_ANSWERS.c.created_at < end)
        order = (_ANSWERS.c.created_at.desc(), _ANSWERS.c.answer_id.desc())
        query = query.order_by(*order).limit(limit).offset(offset)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [AnswerRecord.model_validate_json(raw) for (raw,) in rows]

    # ----- snapshots -----

    def sources(self, answer_id: str) -> list[SourceSnapshot]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(*[c for c in _SOURCES.c if c.name != "answer_id"]).where(_SOURCES.c.answer_id == answer_id)
            ).all()
        return [SourceSnapshot.model_validate(dict(r._mapping)) for r in rows]

    def document_versions(self, hashes: Sequence[str]) -> dict[str, DocumentVersion]:
        if not hashes:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(_DOCUMENTS).where(_DOCUMENTS.c.sha256.in_(list(hashes)))).all()
        return {r.sha256: DocumentVersion.model_validate(dict(r._mapping)) for r in rows}

    # ----- reviews -----

    def add_review(
        self, answer_id: str, *, reviewer: str, decision: ReviewDecision, note: str, corrected_answer: str | None
    ) -> Review:
        """Record a review as a new row linked to the answer (which must exist)."""
        self.get(answer_id)
        if decision == "corrected" and not (corrected_answer or "").strip():
            raise InputError("a 'corrected' review needs corrected_answer", hint="send the corrected answer text")
        review = Review(
            review_id=uuid.uuid4().hex,
            answer_id=answer_id,
            created_at=_now(),
            reviewer=reviewer,
            decision=decision,
            note=note,
            corrected_answer=corrected_answer,
        )
        try:
            with self._lock, self._engine.begin() as conn:
                conn.execute(_REVIEWS.insert().values(**review.model_dump()))
        except IntegrityError as exc:  # pragma: no cover - uuid4 collision
            raise InputError(f"review {review.review_id} exists") from exc
        return review

    def reviews(self, answer_id: str) -> list[Review]:
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(_REVIEWS).where(_REVIEWS.c.answer_id == answer_id).order_by(_REVIEWS.c.created_at)
            ).all()
        return [Review.model_validate(dict(r._mapping)) for r in rows]

    def close(self) -> None:
        self._engine.dispose()


class SqliteAuditStore(SqlAuditStore):
    """The audit store in an embedded SQLite file (the default, inside the store directory)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(f"sqlite:///{path}")


def open_audit_store(url: str | None, default_path: Path) -> SqlAuditStore:
    """The store ``KGRAG_AUDIT__URL`` points at, else the SQLite file in the store directory."""
    return SqlAuditStore(url) if url else SqliteAuditStore(default_path)


def recent_outcomes(audit: AuditStore, prompt: str, limit: int = 1000) -> list[Outcome]:
    """Outcomes (prompt version, released or not) of the newest ``limit`` answers made with ``prompt``, oldest first.

    An answer whose first draft came from ``prompt`` and failed the gate counts as a failure of that version even when
    the strict retry (another prompt) then released it: the version under watch did not pass on its own.
    """
    if limit < 1:
        raise InputError(f"limit must be at least 1, not {limit}")
    outcomes = []
    for summary in audit.list_answers(limit=limit):
        record = audit.get(summary.answer_id)
        used = record.provenance.first_prompt or record.provenance.prompt
        if used.name == prompt:
            gate = record.provenance.gate
            outcomes.append(
                Outcome(
                    version=used.version,
                    passed=gate.decision == "released" and not gate.retried,
                    created_at=record.created_at,
                )
            )
    return outcomes[::-1]
