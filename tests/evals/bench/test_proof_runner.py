"""The proof runner: its figures on a hand-made result list, resuming after a crash, stage attribution from the
real cascade's records, and the command line's clear errors (no model is called)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.types import GateRecord
from evals.bench.benchmarks.gate_proof import app
from evals.bench.proof.items import DEFAULT_SET, ProofItem, load_items
from evals.bench.proof.metrics import ALL_PASSED, WHOLE_GATE, decided_by, summarise
from evals.bench.proof.runner import read_results, run_items
from evals.gate.cascade import CascadeGate
from evals.gate.checks.citation_coverage import CitationCoverageCheck
from evals.gate.disabled import DisabledGate


def _result(variant: str, decision: str, ms: float = 100.0, stages: list[dict[str, Any]] | None = None) -> dict:
    label = "faithful" if variant == "faithful" else "hallucinated"
    stages = stages or []
    return {
        "id": f"q:{variant}:{decision}:{ms}",
        "variant": variant,
        "label": label,
        "decision": decision,
        "reason": "gate_error: judge timed out" if decision == "review" else "",
        "duration_ms": ms,
        "stages": stages,
        "decided_by": decided_by(stages),
    }


def _stage(name: str, outcome: str, ms: float = 10.0) -> dict[str, Any]:
    return {"name": name, "outcome": outcome, "duration_ms": ms, "scores": {}, "detail": ""}


def test_recall_release_rate_per_variant_and_confusion_on_a_hand_made_list() -> None:
    cheap_fail = [_stage("coverage", "fail", 2.0), _stage("judge", "skipped", 0.0)]
    cheap_pass = [_stage("coverage", "pass", 4.0), _stage("judge", "skipped", 0.0)]
    judged_pass = [_stage("coverage", "inconclusive", 6.0), _stage("judge", "pass", 1000.0)]
    judged_fail = [_stage("coverage", "inconclusive", 2.0), _stage("judge", "fail", 3000.0)]
    results = [
        _result("faithful", "released", 10, cheap_pass),
        _result("faithful", "released", 1010, judged_pass),
        _result("faithful", "released", 10, cheap_pass),
        _result("faithful", "abstained", 3010, judged_fail),
        _result("wrong_entity", "released", 1010, judged_pass),
        _result("wrong_entity", "abstained", 10, cheap_fail),
        _result("unsupported_claim", "abstained", 3010, judged_fail),
        _result("unsupported_claim", "abstained", 10, cheap_fail),
        _result("distractor_answer", "review", 50, [_stage("coverage", "inconclusive"), _stage("judge", "error")]),
        _result("distractor_answer", "released", 10, cheap_pass),
    ]
    summary = summarise(results)
    assert summary["counts"] == {"faithful": 4, "hallucinated": 6}
    recall, release = summary["hallucination_recall"], summary["faithful_release_rate"]
    assert recall["mean"] == pytest.approx(4 / 6) and release["mean"] == pytest.approx(3 / 4)
    for estimate in (recall, release):
        assert 0.0 <= estimate["ci_low"] <= estimate["mean"] <= estimate["ci_high"] <= 1.0
        assert estimate["ci_low"] < estimate["ci_high"]
    per = summary["per_variant"]
    assert per["faithful"]["release_rate"]["mean"] == pytest.approx(0.75)
    assert per["wrong_entity"]["caught"]["mean"] == pytest.approx(0.5)
    assert per["unsupported_claim"]["caught"]["mean"] == 1.0
    assert per["distractor_answer"] == {
        "items": 2,
        "caught": per["distractor_answer"]["caught"],
        "decisions": {"review": 1, "released": 1},
    }
    assert summary["confusion"] == {
        "faithful": {"abstained": 1, "released": 3},
        "hallucinated": {"abstained": 3, "released": 2, "review": 1},
    }
    assert summary["gate_errors"] == 1
    assert summary["mean_gate_ms"] == pytest.approx(sum(r["duration_ms"] for r in results) / 10)
    stages = summary["stages"]
    assert stages["coverage"]["decided"] == 5
    assert stages["coverage"]["decisions"] == {"abstained": 2, "released": 3}
    assert stages["coverage"]["ran"] == 10
    assert stages["judge"]["decided"] == 5 and stages["judge"]["ran"] == 5
    assert stages["judge"]["decisions"] == {"released": 2, "abstained": 2, "review": 1}
    assert stages["judge"]["mean_ms"] == pytest.approx((1000 + 1000 + 3000 + 3000 + 10) / 5)
    assert stages["coverage"]["outcomes"] == {"pass": 3, "fail": 2, "inconclusive": 5}


def test_decided_by_names_the_stage_whose_verdict_stood() -> None:
    assert decided_by([]) == WHOLE_GATE
    assert decided_by([_stage("precheck", "fail")]) == "precheck"
    assert decided_by([_stage("a", "pass"), _stage("b", "fail"), _stage("judge", "skipped")]) == "b"
    assert decided_by([_stage("a", "pass"), _stage("b", "pass"), _stage("judge", "skipped")]) == ALL_PASSED
    assert decided_by([_stage("a", "inconclusive"), _stage("b", "pass"), _stage("judge", "fail")]) == "judge"
    assert decided_by([_stage("a", "inconclusive"), _stage("b", "pass")]) == "none"
    assert decided_by([_stage("judge", "pass")]) == "judge"


class CountingGate:
    """Wraps a real gate and records which answers it was asked to score."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seen: list[str] = []

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        self.seen.append(answer)
        return self.inner.evaluate(question, answer, contexts)


def test_a_crashed_run_resumes_without_rescoring_or_losing_items(tmp_path: Path) -> None:
    items = load_items(DEFAULT_SET)[:8]
    results = tmp_path / "results.jsonl"
    first = CountingGate(DisabledGate())
    run_items(first, items[:3], results)
    assert len(first.seen) == 3
    with results.open("a", encoding="utf-8") as handle:  # a crash mid-write leaves a torn line
        handle.write('{"id": "' + items[3].id + '", "decis')
    second = CountingGate(DisabledGate())
    done = run_items(second, items, results)
    assert second.seen == [item.answer for item in items[3:]]
    assert [r["id"] for r in done] == [item.id for item in items]
    assert [r["id"] for r in read_results(results)] == [item.id for item in items]
    assert all(r["decision"] == "released" for r in done)
    third = CountingGate(DisabledGate())
    assert run_items(third, items, results) == done and third.seen == []


def test_the_real_cascade_stages_are_recorded_and_attributed(tmp_path: Path) -> None:
    gate = CascadeGate([CitationCoverageCheck(0.5, 1.0)], judge=None, inconclusive_decision="review")
    base = load_items(DEFAULT_SET)[0]
    cited = ProofItem(
        **{**base.__dict__, "id": "cited", "answer": "Audrey Williams was the mother of Hank Junior [1]."}
    )
    uncited = ProofItem(
        **{**base.__dict__, "id": "uncited", "answer": "Audrey Williams was the mother of Hank Junior."}
    )
    done = run_items(gate, [cited, uncited], tmp_path / "r.jsonl")
    first, bare = done
    # Cheap stages never release: with no judge stage a passing answer goes to review.
    assert first["decision"] == "review" and first["decided_by"] == ALL_PASSED
    assert bare["decision"] == "abstained" and bare["decided_by"] == "citation_coverage"
    assert [s["name"] for s in bare["stages"]] == ["citation_repair", "citation_coverage"]
    assert bare["stages"][1]["outcome"] == "fail"


class BrokenGate:
    """A gate whose scoring raises (a fault the real gates catch themselves, so it cannot be caused otherwise)."""

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        raise RuntimeError("judge exploded")


def test_a_gate_that_raises_is_recorded_as_an_error_not_a_release(tmp_path: Path) -> None:
    items = load_items(DEFAULT_SET)[:2]
    done = run_items(BrokenGate(), items, tmp_path / "r.jsonl")
    assert [r["decision"] for r in done] == ["error", "error"]
    assert done[0]["reason"].startswith("gate_error: RuntimeError: judge exploded")
    summary = summarise(done)
    assert summary["faithful_release_rate"]["mean"] == 0.0 and summary["hallucination_recall"]["mean"] == 1.0


def test_the_command_summarises_stored_results_and_rejects_bad_input(tmp_path: Path) -> None:
    items = load_items(DEFAULT_SET)[:4]
    results = tmp_path / "r.jsonl"
    run_items(DisabledGate(), items, results)
    out = tmp_path / "summary.json"
    runner = CliRunner()
    shown = runner.invoke(
        app, ["--limit", "4", "--results", str(results), "--report-only", "--json", str(out)], catch_exceptions=False
    )
    assert shown.exit_code == 0, shown.output
    assert "hallucination recall" in shown.output and "faithful release rate" in shown.output
    summary = json.loads(out.read_text("utf-8"))
    assert summary["hallucination_recall"]["mean"] == 0.0 and summary["faithful_release_rate"]["mean"] == 1.0
    assert summary["config"]["gate"]["stages"]

    bad = runner.invoke(app, ["--limit", "0", "--results", str(results)])
    assert bad.exit_code == 2 and "--limit must be at least 1" in _flat(bad.output) and "Traceback" not in bad.output
    missing = runner.invoke(app, ["--set", str(tmp_path / "nope.jsonl"), "--report-only"])
    assert missing.exit_code == 2 and "does not exist" in _flat(missing.output)
    stages = runner.invoke(app, ["--stages", "nonsense", "--report-only", "--results", str(results)])
    assert stages.exit_code == 2 and "--stages 'nonsense' is not valid" in _flat(stages.output)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_results_the_accept_filter_refuses_stay_pending_for_a_later_pass(tmp_path: Path) -> None:
    items = load_items(DEFAULT_SET)[:4]
    results = tmp_path / "r.jsonl"
    kept = run_items(DisabledGate(), items, results, accept=lambda r: r["variant"] == "faithful")
    assert [r["variant"] for r in kept] == ["faithful"]
    later = CountingGate(DisabledGate())
    assert len(run_items(later, items, results)) == 4
    assert later.seen == [item.answer for item in items[1:]]
