"""Real answer records for the KPI tests: the answer service (real store, embedder, retrieval and cheap gate stages)
answers with a scripted model that reports its tokens, and writes to a real SQLite audit store. ``redated`` copies
spread them over days (the service stamps ``created_at`` with the time it answered)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.errors import ModelUnavailableError
from core.types import AnswerRecord
from pipelines.store.base import AuditStore
from pipelines.store.knowledge import KnowledgeStore
from pipelines.store.sql_audit import SqliteAuditStore
from retrieval.base import Embedder
from tests.pipelines.answer.test_service_logic import misquoting, quoting, service
from tests.scripted_model import ScriptedChatModel, agreeing_judge

#: Token counts every scripted generation reports, and every call of the released answer's judge.
USAGE = (120, 15)
JUDGE_USAGE = (60, 4)
RELEASED_QUESTION = "How many days of paid annual leave do employees get?"
ABSTAINED_QUESTION = "Who founded Northwind Robotics?"


def _answer(
    knowledge: KnowledgeStore,
    embedder: Embedder,
    audit: AuditStore,
    question: str,
    model: ScriptedChatModel,
    judge: ScriptedChatModel | None = None,
) -> AnswerRecord:
    return service(knowledge, embedder, model, audit, judge=judge).answer(question)


def released(knowledge: KnowledgeStore, embedder: Embedder, audit: AuditStore) -> AnswerRecord:
    """A draft quoting passage [1]: the cheap stages and the agreeing judge release it."""
    judge = agreeing_judge(usage=JUDGE_USAGE)
    record = _answer(knowledge, embedder, audit, RELEASED_QUESTION, ScriptedChatModel([quoting], usage=USAGE), judge)
    assert record.provenance.gate.decision == "released", record.provenance.gate.reason
    # every verdict call of the judge is counted: at least one claim and the relevance call
    assert record.provenance.gate.judge_tokens()[0] >= 2 * JUDGE_USAGE[0]
    return record


def abstained(
    knowledge: KnowledgeStore, embedder: Embedder, audit: AuditStore, question: str = ABSTAINED_QUESTION
) -> AnswerRecord:
    """Two misquoting drafts (the first and the strict retry): the gate fails both and the answer abstains."""
    record = _answer(knowledge, embedder, audit, question, ScriptedChatModel([misquoting, misquoting], usage=USAGE))
    assert record.provenance.gate.decision == "abstained", record.provenance.gate.reason
    return record


def held(knowledge: KnowledgeStore, embedder: Embedder, audit: AuditStore) -> AnswerRecord:
    """A quoting draft whose claim judge is unreachable: held for review."""
    judge = ScriptedChatModel(respond=lambda _: ModelUnavailableError("judge down"))
    record = _answer(knowledge, embedder, audit, RELEASED_QUESTION, ScriptedChatModel([quoting], usage=USAGE), judge)
    assert record.provenance.gate.decision == "review", record.provenance.gate.reason
    return record


def redated(record: AnswerRecord, when: datetime, **changes: object) -> AnswerRecord:
    """A copy of ``record`` under a new id, created at ``when`` (with other top-level ``changes``)."""
    return record.model_copy(update={"answer_id": uuid.uuid4().hex, "created_at": when.isoformat(), **changes})


def day(n: int, hour: int = 12) -> datetime:
    """Noon (or ``hour``) UTC of day ``n`` of January 2026."""
    return datetime(2026, 1, n, hour, tzinfo=UTC)


def write(audit: AuditStore, records: list[AnswerRecord]) -> list[AnswerRecord]:
    for r in records:
        audit.save(r)
    return records


def scratch_audit(tmp: Path) -> SqliteAuditStore:
    return SqliteAuditStore(tmp / "scratch-audit.sqlite")


@dataclass(frozen=True)
class Made:
    """One real record of each gate decision (the ``answer_records`` fixture of tests/conftest.py)."""

    released: AnswerRecord
    abstained: AnswerRecord
    held: AnswerRecord


def with_entailment(record: AnswerRecord, value: float) -> AnswerRecord:
    """``record`` as if the claim judge had scored its weakest claim ``value``."""
    gate = record.provenance.gate
    gate = gate.model_copy(update={"scores": gate.scores.model_copy(update={"entailment": value})})
    return record.model_copy(update={"provenance": record.provenance.model_copy(update={"gate": gate})})
