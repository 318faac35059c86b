"""The gate-speed benchmark's arithmetic: times read from an answer's workflow trace, and the ratio's summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from core.errors import InputError
from core.types import AnswerRecord, GateRecord, GateStageRecord, PromptRef, Provenance, TraceEntry, WorkflowRef
from evals.bench.benchmarks.gate_speed import DEFAULT_QUESTIONS, read_questions, summarise, timing


def _record(
    steps: list[tuple[str, float, str]], stages: list[tuple[str, str]], judge_tokens: tuple[int, int] | None = None
) -> AnswerRecord:
    trace = [
        TraceEntry(step=name, started_at="2026-01-01T00:00:00Z", duration_ms=ms, status=status, attempts=1)  # type: ignore[arg-type]
        for name, ms, status in steps
    ]
    gate = GateRecord(
        decision="released",
        stages=[GateStageRecord(name=name, outcome=outcome) for name, outcome in stages],  # type: ignore[arg-type]
        judge_prompt_tokens=judge_tokens[0] if judge_tokens else None,
        judge_completion_tokens=judge_tokens[1] if judge_tokens else None,
    )
    provenance = Provenance(
        prompt=PromptRef(name="answer", version=1, sha256="0" * 64),
        workflow=WorkflowRef(name="answer", version="1"),
        model="m",
        gate=gate,
        trace=trace,
    )
    return AnswerRecord(answer_id="a", question="q?", answer="x [1].", provenance=provenance, created_at="now")


def test_generation_and_gate_times_come_from_the_same_answers_trace() -> None:
    record = _record(
        [("retrieve", 50.0, "ok"), ("generate", 4000.0, "ok"), ("gate", 1000.0, "ok"), ("gate_strict", 0.0, "skipped")],
        [("citation_coverage", "inconclusive"), ("judge", "pass")],
    )
    row = timing(record, 5.4321)
    assert row["seconds"] == 5.432 and timing(record)["seconds"] is None
    assert row["generation_ms"] == 4000.0 and row["gate_ms"] == 1000.0 and row["ratio"] == 0.25
    assert row["judge_ran"] and not row["strict_retry"]
    retried = timing(
        _record(
            [("generate", 3000.0, "ok"), ("gate", 500.0, "ok"), ("generate_strict", 1000.0, "ok"), ("gate", 0, "ok")],
            [("citation_coverage", "pass"), ("judge", "skipped")],
        )
    )
    assert retried["generation_ms"] == 4000.0 and retried["strict_retry"] and not retried["judge_ran"]
    # the claim judge's stages count as the judge, with its tokens
    claims = timing(
        _record([("generate", 2000.0, "ok"), ("gate", 800.0, "ok")], [("entailment", "pass")], judge_tokens=(300, 12))
    )
    assert claims["judge_ran"] and claims["judge_tokens"] == [300, 12]
    assert not timing(_record([("generate", 2000.0, "ok")], [("relevance", "skipped")]))["judge_ran"]
    no_model = timing(_record([("retrieve", 5.0, "ok"), ("generate", 0.0, "skipped")], []))
    assert no_model["ratio"] is None


def test_the_summary_averages_per_answer_ratios_and_leaves_untimed_answers_out() -> None:
    rows: list[dict[str, Any]] = [
        {"generation_ms": 1000.0, "gate_ms": 500.0, "ratio": 0.5, "judge_ran": True, "judge_tokens": [400, 10]},
        {"generation_ms": 3000.0, "gate_ms": 300.0, "ratio": 0.1, "judge_ran": False, "judge_tokens": [0, 0]},
        {"generation_ms": 0.0, "gate_ms": 0.0, "ratio": None, "judge_ran": False, "judge_tokens": [0, 0]},
    ]
    for row, seconds, decision in zip(rows, (2.0, 4.0, 0.5), ("released", "abstained", "released"), strict=True):
        row |= {"seconds": seconds, "decision": decision}
    summary = summarise(rows)
    assert summary["answers"] == 3 and summary["timed"] == 2 and summary["judge_ran"] == 1
    assert summary["mean_ratio"]["mean"] == pytest.approx(0.3)
    assert summary["total_ratio"] == pytest.approx(800 / 4000)
    assert summary["mean_judge_prompt_tokens"] == 200.0
    # whole-answer seconds: every answer counts (untimed by the trace or not); released ones on their own
    assert summary["median_seconds"] == 2.0 and summary["released"] == 2
    assert summary["median_released_seconds"] == pytest.approx(1.25)


def test_questions_file_errors_are_clear(tmp_path: Path) -> None:
    assert len(read_questions(DEFAULT_QUESTIONS)) >= 10
    with pytest.raises(InputError, match="does not exist"):
        read_questions(tmp_path / "none.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n", "utf-8")
    with pytest.raises(InputError, match="holds no questions"):
        read_questions(empty)
