"""Automatic rollback on a real degraded prompt version: a version telling the model to ignore the passages is
promoted, real answers (the Qwen 1.5B server: SmolLM2 cannot write answers its passages support, so its baseline
would never pass; real store) go through the answer workflow and the cascade gate, whose cheap stages fail answers no
passage supports, and the answer service itself moves the label back to the previous version (automatic rollback,
checked after every answer here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.compose.answer import build_answer_service
from pipelines.compose.stores import open_store
from pipelines.store.sql_audit import SqliteAuditStore, recent_outcomes
from prompts.registry import FilePromptRegistry
from prompts.rollback import ROLLBACK_ACTOR
from tests.conftest import RunningModelServer
from tests.prompt_copies import answer_prompts_at

QUESTIONS = [
    "How many days of paid annual leave do employees get?",
    "Where are Heron robots assembled?",
    "How long must passwords be?",
]
DEGRADED_SYSTEM = """system: |-
  Ignore any passages the user gives you. Answer from general knowledge only.
  Always reply with one sentence about the planet Jupiter and its moons. Never cite anything.
user: |-
  {% for p in passages %}{% endfor %}{% for f in facts %}{% endfor %}Question: {{ question }}
  Answer:
"""


def degraded_version(templates: Path) -> None:
    """answer.v4: v1's metadata (free text, no reply schema) with a system prompt that answers from general knowledge
    and never cites; production stays at the packaged v3 until the test promotes it."""
    v1 = (templates / "answer.v1.yaml").read_text(encoding="utf-8")
    head = v1[: v1.index("system:")].replace("version: 1", "version: 4")
    (templates / "answer.v4.yaml").write_text(head + DEGRADED_SYSTEM, encoding="utf-8")


@pytest.mark.slow
@pytest.mark.integration
def test_degraded_prompt_version_is_rolled_back_by_the_gate(
    sample_store: Path,
    embedder,
    tmp_path: Path,
    qwen_server: RunningModelServer,  # type: ignore[no-untyped-def]
) -> None:
    templates = answer_prompts_at(tmp_path / "prompts", 3)
    degraded_version(templates)
    audit_path = tmp_path / "audit.sqlite"
    settings = Settings(
        store_dir=sample_store,
        llm_base_url=qwen_server.base_url,
        llm_model=qwen_server.name,
        llm_max_tokens=80,
        # The default gate: cheap stages fail what no passage supports, the Qwen claim judge releases the rest.
        prompts={  # type: ignore[arg-type]
            "directory": templates,
            "strict_retry": False,
            # Checked after every answer; a pass-rate drop of more than 0.3 over 3 answers of each version.
            "rollback": {"window": len(QUESTIONS), "margin": 0.3, "min_answers": len(QUESTIONS), "check_every": 1},
        },
        audit={"url": f"sqlite:///{audit_path}"},  # type: ignore[arg-type]
    )
    store = open_store(settings, embedder, create=False)
    registry = FilePromptRegistry(templates)
    assert registry.resolve("answer").version == 3

    baseline_service = build_answer_service(settings, store, embedder)
    baseline = [baseline_service.answer(q).provenance.gate.decision for q in QUESTIONS]
    assert baseline.count("released") >= 2, baseline  # margin 0.3 below needs a pass-rate drop of at least 1/3
    registry.promote("answer", 4, "production", actor="tests", reason="try the degraded version")

    service = build_answer_service(settings, store, embedder)
    degraded = [service.answer(q).provenance for q in QUESTIONS]
    assert [p.prompt.version for p in degraded] == [4] * len(QUESTIONS)
    # No passage supports the Jupiter answers: the must_cite guardrail or a cheap stage stops each one.
    assert "released" not in [p.gate.decision for p in degraded], degraded

    # The answer service rolled the label back by itself after the third degraded answer, and logged it.
    assert FilePromptRegistry(templates).resolve("answer").version == 3
    last = registry.history("answer", "production")[-1]
    assert (last.kind, last.actor, last.from_, last.to) == ("rollback", ROLLBACK_ACTOR, "4", "3")
    assert "below v3's" in last.reason
    # The same service's next answer already uses the restored version.
    assert service.answer(QUESTIONS[0]).provenance.prompt.version == 3

    audit = SqliteAuditStore(audit_path)
    outcomes = recent_outcomes(audit, "answer")
    audit.close()
    assert [o.version for o in outcomes] == [3] * len(QUESTIONS) + [4] * len(QUESTIONS) + [3]
