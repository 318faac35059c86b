"""The audit store contract on embedded SQLite, on a real PostgreSQL server and through the snapshotting wrapper."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import ConfigurationError
from core.types import Chunk, Citation, Document, FactCitation, RetrievalRef
from pipelines.store.base import AuditStore, SourceSnapshot
from pipelines.store.snapshotting_audit import SnapshottingAuditStore
from pipelines.store.sql_audit import SqlAuditStore, SqliteAuditStore
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.api.postgres import PG_BIN, postgres_server
from tests.conftest import free_port
from tests.pipelines.store.audit_contract import DOC, DOC2, AuditStoreContract, record


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("postgresql-15 is not installed (`apt-get install -y postgresql-15`, as .ci/run does)")
    with postgres_server() as url:
        yield url


class TestSqliteAuditStore(AuditStoreContract):
    """The contract on the embedded SQLite file."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[AuditStore]:
        audit = SqliteAuditStore(tmp_path / "audit.sqlite")
        yield audit
        audit.close()


class TestPostgresAuditStore(AuditStoreContract):
    """The contract on a real PostgreSQL 15 server (one per module, emptied before each test)."""

    @pytest.fixture
    def store(self, pg_url: str) -> Iterator[AuditStore]:
        audit = SqlAuditStore(pg_url)
        with audit._engine.begin() as conn:  # a clean slate per test on the shared server
            for table in ("answers", "answer_sources", "document_versions", "reviews"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
        yield audit
        audit.close()


def chunk(chunk_id: str, doc: Document, start: int, end: int, ordinal: int) -> Chunk:
    return Chunk(
        id=chunk_id,
        document_id=doc.id,
        source=doc.source,
        text=doc.text[start:end],
        start=start,
        end=end,
        ordinal=ordinal,
        sha256=f"{ordinal}" * 64,
    )


class TestSnapshottingAuditStore(AuditStoreContract):
    """The contract through the wrapper over SQLite, snapshotting from a real chunk store."""

    @pytest.fixture
    def chunks(self, tmp_path: Path) -> Iterator[SqliteChunkStore]:
        with SqliteChunkStore(tmp_path / "chunks.sqlite") as chunks:
            chunks.put_document(DOC, [chunk("c1", DOC, 0, 27, 0)])
            chunks.put_document(DOC2, [chunk("c2", DOC2, 0, 28, 0), chunk("c3", DOC2, 0, 8, 1)])
            yield chunks

    @pytest.fixture
    def store(self, tmp_path: Path, chunks: SqliteChunkStore) -> Iterator[AuditStore]:
        audit = SnapshottingAuditStore(SqliteAuditStore(tmp_path / "audit.sqlite"), chunks, lambda: "run-3")
        yield audit
        audit.close()

    def test_save_snapshots_the_chunks_the_record_used(self, store: AuditStore, chunks: SqliteChunkStore) -> None:
        rec = record("a1", "2026-01-01T10:00:00+00:00")
        rec.provenance.retrieval = [
            RetrievalRef(chunk_id="c2", score=0.9, method="dense"),
            RetrievalRef(chunk_id="c1", score=0.8, method="bm25"),
            RetrievalRef(chunk_id="gone", score=0.7, method="dense"),
        ]
        rec.facts = [FactCitation(subject="Sick pay", predicate="starts on", object="day four", chunk_id="c3")]
        store.save(rec)
        chunks.delete_document("d1")  # re-indexing later changes nothing in what was recorded
        assert store.get("a1") == rec
        assert sorted(store.sources("a1"), key=lambda s: s.chunk_id) == [
            SourceSnapshot(
                chunk_id="c1", document_id="d1", document_sha256=DOC.sha256, start=0, end=27, text=DOC.text,
                role="cited", snapshot_id="run-3",
            ),
            SourceSnapshot(
                chunk_id="c2", document_id="d2", document_sha256=DOC2.sha256, start=0, end=28, text=DOC2.text,
                role="retrieved", snapshot_id="run-3",
            ),
            SourceSnapshot(
                chunk_id="c3", document_id="d2", document_sha256=DOC2.sha256, start=0, end=8, text="Sick pay",
                role="fact", snapshot_id="run-3",
            ),
        ]  # fmt: skip
        versions = store.document_versions([DOC.sha256, DOC2.sha256])
        assert {h: v.text for h, v in versions.items()} == {DOC.sha256: DOC.text, DOC2.sha256: DOC2.text}

    def test_a_record_whose_chunks_are_gone_is_saved_without_sources(self, store: AuditStore) -> None:
        rec = record("a1", "2026-01-01T10:00:00+00:00")
        rec.citations = [Citation(chunk_id="gone", document_id="dx", source="x.md", start=0, end=1, text="x", score=1)]
        store.save(rec)
        assert store.get("a1") == rec and store.sources("a1") == [] and store.count() == 1


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot open the audit database") as err:
        SqlAuditStore(f"postgresql+psycopg://kgrag:secret@127.0.0.1:{free_port()}/x")
    assert "secret" not in str(err.value) and "KGRAG_AUDIT__URL" in str(err.value)


def test_a_store_made_before_search_text_gets_the_column_filled_from_its_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    old = record("o1", "2026-01-01T10:00:00+00:00", answer="Old snake_case answer.")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE answers (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, question TEXT NOT NULL,"
                " decision TEXT NOT NULL, record TEXT NOT NULL)"
            )
        )
        conn.execute(
            sa.text("INSERT INTO answers VALUES (:i, :c, :q, :d, :r)"),
            {"i": "o1", "c": old.created_at, "q": old.question, "d": "released", "r": old.model_dump_json()},
        )
    engine.dispose()
    store = SqlAuditStore(url)
    assert [x.answer_id for x in store.list_answers(q="snake_case")] == ["o1"]
    assert store.list_answers(q="answer_id") == []
    assert store.get("o1") == old
