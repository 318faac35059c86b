"""The API reading answers from a real PostgreSQL audit server (the store contract itself: tests/pipelines/store)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import AnswerNotFoundError
from pipelines.store.sql_audit import SqlAuditStore, SqliteAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import COMPLIANCE, bearer, key_settings
from tests.api.postgres import PG_BIN, postgres_server
from tests.api.test_answer_api import assert_problem
from tests.pipelines.store.audit_contract import DOC, SNAP, record


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip("postgresql-15 is not installed (`apt-get install -y postgresql-15`, as .ci/run does)")
    with postgres_server() as url:
        yield url


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
