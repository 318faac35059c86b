"""AutoRollback's counting and failure handling on a real registry and audit store (the end-to-end rollback with a
real model is tests/evals/test_gate_rollback.py)."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.settings import RollbackSettings
from core.types import AnswerRecord, GateRecord, PromptRef, Provenance, WorkflowRef
from pipelines.answer.rollback import AutoRollback
from pipelines.store.sql_audit import SqliteAuditStore
from prompts.registry import FilePromptRegistry
from tests.prompt_copies import registry_with_answer_v2

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def registry(tmp_path: Path) -> FilePromptRegistry:
    return registry_with_answer_v2(tmp_path)


def answer(version: int, decision: str, n: int, prompt: str = "answer") -> AnswerRecord:
    return AnswerRecord(
        answer_id=uuid.uuid4().hex,
        question="q",
        answer="a",
        provenance=Provenance(
            prompt=PromptRef(name=prompt, version=version, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="m",
            gate=GateRecord(decision=decision),  # type: ignore[arg-type]
        ),
        created_at=(T0 + timedelta(seconds=n)).isoformat(),
    )


def test_checks_every_nth_answer_of_the_watched_prompt_and_rolls_back(
    registry: FilePromptRegistry, tmp_path: Path
) -> None:
    audit = SqliteAuditStore(tmp_path / "audit.sqlite")
    watch = AutoRollback(registry, audit, RollbackSettings(window=4, margin=0.2, min_answers=4, check_every=2))
    for n in range(4):
        record = answer(1, "released", n)
        audit.save(record)
        assert watch.observe(record) is None, "v1 has no previous version: nothing is read or decided"
    registry.promote("answer", 2, "production", actor="alice")
    decisions = []
    for n in range(4, 8):
        record = answer(2, "review", n)
        audit.save(record)
        decisions.append(watch.observe(record))
        other = answer(1, "abstained", 100 + n, prompt="condense")
        assert watch.observe(other) is None, "answers of other prompts are not counted"
    assert decisions[0] is None and decisions[2] is None, "checked on every second answer only"
    assert decisions[1] is not None and not decisions[1].rollback and "not enough answers" in decisions[1].reason
    assert decisions[3] is not None and decisions[3].rollback and decisions[3].event is not None
    assert registry.resolve("answer").version == 1
    assert FilePromptRegistry(registry.directory).resolve("answer").version == 1
    audit.close()


def test_a_failing_check_is_logged_and_never_loses_the_answer(
    registry: FilePromptRegistry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    audit = SqliteAuditStore(tmp_path / "audit.sqlite")
    registry.promote("answer", 2, "production", actor="alice")
    watch = AutoRollback(registry, audit, RollbackSettings(check_every=1), label="production")
    record = answer(2, "released", 0)
    audit.save(record)
    with sqlite3.connect(tmp_path / "audit.sqlite") as db:  # a damaged audit database: reading outcomes fails
        db.execute("DROP TABLE answers")
    with caplog.at_level("WARNING", logger="kgrag.rollback"):
        result = watch.observe(record)
    assert result is None
    assert "automatic rollback check of answer/production failed" in caplog.text
    assert registry.resolve("answer").version == 2, "no decision without outcomes"
    audit.close()
