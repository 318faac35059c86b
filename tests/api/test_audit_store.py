"""The audit store contract on embedded SQLite and on a real PostgreSQL server, and the API reading PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import AnswerNotFoundError, ConfigurationError, InputError
from core.types import AnswerRecord, Citation, Document, GateRecord, PromptRef, Provenance, WorkflowRef
from pipelines.store.base import SourceSnapshot
from pipelines.store.sql_audit import SqlAuditStore, SqliteAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import COMPLIANCE, bearer, key_settings
from tests.api.postgres import PG_BIN, postgres_server
from tests.api.test_answer_api import assert_problem

DOC = Document(id="d1", source="d1.md", text="Staff get 28 days of leave.", sha256="a" * 64)


def record(answer_id: str, created_at: str, decision: str = "released", answer: str = "28 days [1].") -> AnswerRecord:
    return AnswerRecord(
        answer_id=answer_id,
        question=f"question {answer_id}",
        answer=answer,
        citations=[
            Citation(chunk_id="c1", document_id="d1", source="d1.md", start=0, end=27, text=DOC.text, score=1.0)
        ],
        provenance=Provenance(
            prompt=PromptRef(name="answer", version=1, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="m",
            gate=GateRecord(decision=decision),  # type: ignore[arg-type]
        ),
        created_at=created_at,
    )


SNAP = SourceSnapshot(
    chunk_id="c1", document_id="d1", document_sha256=DOC.sha256, start=0, end=27, text=DOC.text, role="cited"
)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("postgresql-15 is not installed (`apt-get install -y postgresql-15`, as .ci/run does)")
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def audit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlAuditStore]:
    if request.param == "sqlite":
        store: SqlAuditStore = SqliteAuditStore(tmp_path / "audit.sqlite")
    else:
        store = SqlAuditStore(request.getfixturevalue("pg_url"))
        with store._engine.begin() as conn:  # a clean slate per test on the shared server
            for table in ("answers", "answer_sources", "document_versions", "reviews"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
    yield store
    store.close()


def test_audit_contract(audit: SqlAuditStore) -> None:
    a = record("a1", "2026-01-01T10:00:00+00:00")
    b = record("b2", "2026-01-02T10:00:00+00:00", decision="review", answer="Held 100% _for_ review.")
    audit.save_with_sources(a, [SNAP], [DOC])
    audit.save_with_sources(b, [SNAP], [DOC])  # the same document version is stored once
    assert audit.get("a1") == a and audit.count() == 2
    with pytest.raises(sa.exc.IntegrityError):
        audit.save(record("a1", "2026-03-01T00:00:00+00:00", answer="overwrite attempt"))
    assert audit.get("a1") == a, "records are never replaced"
    with pytest.raises(AnswerNotFoundError, match="zz"):
        audit.get("zz")
    assert [x.answer_id for x in audit.list_answers()] == ["b2", "a1"]
    assert [x.answer_id for x in audit.list_answers(start="2026-01-02T00:00:00+00:00")] == ["b2"]
    assert [x.answer_id for x in audit.list_answers(end="2026-01-02T00:00:00+00:00")] == ["a1"]
    assert [x.answer_id for x in audit.list_answers(decision="review")] == ["b2"]
    assert [x.answer_id for x in audit.list_answers(q="100%")] == ["b2"]
    assert [x.answer_id for x in audit.list_answers(q="_FOR_")] == ["b2"]
    assert audit.list_answers(q="%") == [] or all("%" in x.answer for x in audit.list_answers(q="%"))
    assert [x.answer_id for x in audit.list_answers(limit=1, offset=1)] == ["a1"]
    assert audit.sources("a1") == [SNAP]
    assert audit.document_versions([DOC.sha256])[DOC.sha256].text == DOC.text
    review = audit.add_review("b2", reviewer="r", decision="approved", note="ok", corrected_answer=None)
    assert audit.reviews("b2") == [review] and audit.get("b2") == b
    assert audit.list_answers(decision="review")[0].reviews == 1
    with pytest.raises(InputError, match="corrected_answer"):
        audit.add_review("b2", reviewer="r", decision="corrected", note="", corrected_answer=" ")
    with pytest.raises(AnswerNotFoundError):
        audit.add_review("zz", reviewer="r", decision="approved", note="", corrected_answer=None)


def test_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot open the audit database") as err:
        SqlAuditStore(f"postgresql+psycopg://kgrag:secret@127.0.0.1:{closed_port_url().split(':')[2].split('/')[0]}/x")
    assert "secret" not in str(err.value) and "KGRAG_AUDIT__URL" in str(err.value)


def test_api_reads_answers_from_postgres(live_api, sample_store: Path, pg_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = SqlAuditStore(pg_url)
    store.save_with_sources(record("pg1", "2026-05-05T05:05:05+00:00"), [SNAP], [DOC])
    store.close()
    copy = tmp_path / "store"
    shutil.copytree(sample_store, copy)
    api = live_api(settings_for(copy, closed_port_url(), "m", api={"keys": key_settings()}, audit={"url": pg_url}))
    h = bearer(COMPLIANCE)
    listed = api.client.get("/v1/answers", params={"from": "2026-05-05", "to": "2026-05-05"}, headers=h).json()
    assert [x["answer_id"] for x in listed["items"]] == ["pg1"]
    graph = api.client.get("/v1/answers/pg1/provenance", headers=h).json()
    docv = next(n for n in graph["nodes"] if n["kind"] == "document_version")
    assert docv["text"] == DOC.text
    local = SqliteAuditStore(copy / "audit.sqlite")
    with pytest.raises(AnswerNotFoundError):
        local.get("pg1")  # the record came from PostgreSQL, not the store's own SQLite file
    local.close()
    assert_problem(api.client.get("/v1/answers/nope", headers=h), 404, "nope")
