"""``recent_outcomes``: prompt-version outcomes read from a real audit store, and a rollback decided on them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.types import AnswerRecord, GateRecord, PromptRef, Provenance, WorkflowRef
from pipelines.store.sql_audit import SqliteAuditStore, recent_outcomes
from prompts.registry import FilePromptRegistry
from prompts.rollback import ROLLBACK_ACTOR, RollbackMonitor, RollbackPolicy
from tests.prompt_copies import registry_with_answer_v2

POLICY = RollbackPolicy(window=20, margin=0.1, min_answers=10)


@pytest.fixture
def registry(tmp_path: Path) -> FilePromptRegistry:
    return registry_with_answer_v2(tmp_path)


def record(version: int, decision: str, at: datetime) -> AnswerRecord:
    return AnswerRecord(
        answer_id=uuid.uuid4().hex,
        question="How many days of paid annual leave do employees get?",
        answer="Employees get 28 days [1]." if decision == "released" else "The documents do not answer this question.",
        provenance=Provenance(
            prompt=PromptRef(name="answer", version=version, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="qwen2.5-coder-1.5b",
            gate=GateRecord(decision=decision),  # type: ignore[arg-type]
        ),
        created_at=at.isoformat(),
    )


def test_degraded_promoted_version_is_rolled_back_from_the_audit_store(
    registry: FilePromptRegistry, tmp_path: Path
) -> None:
    registry.promote("answer", 2, "production", actor="alice", reason="try v2")
    audit = SqliteAuditStore(tmp_path / "audit.sqlite")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    plan = [(1, "released")] * 18 + [(1, "abstained")] * 2 + [(2, "released")] * 10 + [(2, "review")] * 10
    for n, (version, decision) in enumerate(plan):
        audit.save(record(version, decision, t + timedelta(seconds=n)))
    audit.save(
        record(1, "released", t).model_copy(
            update={"answer_id": "other", "provenance": record(1, "released", t).provenance.model_copy(
                update={"prompt": PromptRef(name="answer_strict", version=1, sha256="0" * 64)})}
        )
    )  # fmt: skip
    found = recent_outcomes(audit, "answer", limit=500)
    audit.close()
    assert len(found) == 40 and [o.version for o in found[:20]] == [1] * 20, "oldest first, strict answers excluded"

    monitor = RollbackMonitor(registry, POLICY)
    dry = monitor.check("answer", "production", found, apply=False)
    assert dry.rollback and dry.event is None and registry.resolve("answer").version == 2
    decision = monitor.check("answer", "production", found)
    assert decision.rollback and decision.event is not None
    assert registry.resolve("answer").version == 1
    assert FilePromptRegistry(registry.directory).resolve("answer").version == 1
    last = registry.history("answer", "production")[-1]
    assert (last.kind, last.actor, last.from_, last.to) == ("rollback", ROLLBACK_ACTOR, "2", "1")
    assert "below v1's 90.0%" in last.reason
    again = monitor.check("answer", "production", found)
    assert not again.rollback and again.previous is None and "no previous version" in again.reason


def test_a_strictly_retried_answer_counts_as_a_failure_of_its_first_prompt_version(tmp_path: Path) -> None:
    audit = SqliteAuditStore(tmp_path / "audit.sqlite")
    t = datetime(2026, 1, 1, tzinfo=UTC)
    rescued = record(2, "released", t)
    rescued.provenance.prompt = PromptRef(name="answer_strict", version=1, sha256="1" * 64)
    rescued.provenance.first_prompt = PromptRef(name="answer", version=2, sha256="0" * 64)
    rescued.provenance.gate = GateRecord(decision="released", retried=True, first_attempt=GateRecord(decision="review"))
    audit.save(rescued)
    audit.save(record(2, "released", t + timedelta(seconds=1)))
    found = recent_outcomes(audit, "answer")
    assert [(o.version, o.passed) for o in found] == [(2, False), (2, True)]
    assert recent_outcomes(audit, "answer_strict") == []
    audit.close()
