"""The gate inside the answer workflow with real parts (real store, real SmolLM2 server, the cascade gate): a failed
first draft is regenerated once with the strict prompt and re-scored, the final record keeps the first attempt, an
abstention says what was searched, and all of it lands in the stored provenance."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings
from pipelines.answer.decision import NOT_ANSWERED
from pipelines.answer.names import STRICT_STEPS
from pipelines.answer.provenance import build_graph
from pipelines.compose.answer import build_answer_service
from pipelines.compose.stores import open_store
from pipelines.store.sql_audit import SqliteAuditStore
from prompts.constants import ABSTENTION_TEXT
from tests.conftest import RunningModelServer
from tests.prompt_copies import copy_packaged_prompts

QUESTION = "How many days of paid annual leave do employees get?"
CHEAP_STAGES = ["citation_coverage", "quoted_spans", "support_similarity", "lexical_support"]


def prompts_recording_must_cite(tmp_path: Path) -> Path:
    """The packaged prompts with the must_cite guardrail only recording (so the gate, not it, judges citations)."""
    templates = tmp_path / "prompts" / "templates"
    copy_packaged_prompts(templates, tmp_path / "prompts" / "labels.yaml")
    for name in ("answer", "answer_strict"):
        path = templates / f"{name}.guardrails.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace("must_cite: review", "must_cite: record"), "utf-8")
    return templates


@pytest.mark.integration
def test_failed_draft_is_retried_strictly_and_both_attempts_are_recorded(
    sample_store: Path,
    embedder,
    tmp_path: Path,
    smol_server: RunningModelServer,  # type: ignore[no-untyped-def]
) -> None:
    audit_path = tmp_path / "audit.sqlite"
    settings = Settings(
        store_dir=sample_store,
        llm_base_url=smol_server.base_url,
        llm_model=smol_server.name,
        llm_max_tokens=1,
        # A one-token draft never reaches 0.99 similarity to a passage sentence: the cascade fails every draft.
        gate={"stages": CHEAP_STAGES, "support_similarity_fail_below": 0.99, "support_similarity_pass_at": 0.99},  # type: ignore[arg-type]
        prompts={"directory": prompts_recording_must_cite(tmp_path)},  # type: ignore[arg-type]
        audit={"url": f"sqlite:///{audit_path}"},  # type: ignore[arg-type]
    )
    assert settings.prompts.strict_retry, "strict retry is on by default"
    service = build_answer_service(settings, open_store(settings, embedder, create=False), embedder)
    record = service.answer(QUESTION)

    steps = [t.step for t in record.provenance.trace]
    assert steps[-3:] == list(STRICT_STEPS) and all(t.status == "ok" for t in record.provenance.trace[-3:])
    gate = record.provenance.gate
    assert gate.retried and gate.first_attempt is not None
    assert record.provenance.prompt.name == "answer_strict"
    first = gate.first_attempt
    assert first.decision == "abstained" and not first.retried
    assert "fail" in [s.outcome for s in first.stages] and first.stages[1].name == "citation_coverage"
    assert first.stages[0].name == "citation_repair"
    assert first.scores.citation_coverage is not None
    # The retry failed too: an abstention that says what was searched.
    assert gate.decision == "abstained" and record.answer == ABSTENTION_TEXT and not record.citations
    assert gate.reason.startswith(NOT_ANSWERED) and QUESTION in gate.reason
    assert gate.searched is not None and gate.searched.query == QUESTION
    assert gate.searched.passages == len(record.provenance.retrieval) > 0 and gate.searched.modes
    assert gate.stages and all(s.duration_ms >= 0 for s in gate.stages)

    audit = SqliteAuditStore(audit_path)
    stored = audit.get(record.answer_id)
    graph = build_graph(stored, audit.sources(record.answer_id), {}, [])
    audit.close()
    assert stored == record, "every decision, score and stage time is in the stored record"
    node = next(n for n in graph.nodes if n.kind == "gate")
    assert node.attributes["retried"] and node.attributes["first_attempt"]["stages"]
    assert node.attributes["searched"]["query"] == QUESTION
