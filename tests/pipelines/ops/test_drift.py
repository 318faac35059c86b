"""Drift of the KPIs between the newest window and the baseline before it, on real answer records (re-dated, and
re-scored where the claim judge's entailment is the point); the watch a running API keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.settings import DriftSettings
from core.types import AnswerRecord
from pipelines.ops.drift import KPIS, DriftWatch, compute_drift
from pipelines.ops.samples import AnswerSample, recent_samples, sample_of
from pipelines.store.sql_audit import SqliteAuditStore
from tests.pipelines.ops.answers import Made, day, redated, with_entailment

SMALL = DriftSettings(window=10, baseline=30, min_answers=10)


def series(made: Made, baseline: int, current: int) -> list[AnswerRecord]:
    """``baseline`` released answers judged 0.9 entailed, then ``current`` answers of which half abstained and the
    released ones judged 0.5: the release rate, the abstain rate, the entailment and the share with graph facts
    (the abstentions had facts) move; the review rate and the retrieval top score do not."""
    start = day(1)
    out = [redated(with_entailment(made.released, 0.9), start + timedelta(minutes=i)) for i in range(baseline)]
    for i in range(current):
        when = start + timedelta(hours=12, minutes=i)
        out.append(redated(with_entailment(made.released, 0.5), when) if i % 2 else redated(made.abstained, when))
    return out


def test_a_shift_in_decisions_and_scores_drifts_and_the_rest_does_not(answer_records: Made) -> None:
    samples = [sample_of(r) for r in series(answer_records, 30, 10)]
    report = compute_drift(samples, SMALL)
    assert (report.current_answers, report.baseline_answers) == (10, 30)
    rows = {r.kpi: r for r in report.kpis}
    assert [r.kpi for r in report.kpis] == [k.name for k in KPIS]
    assert rows["release_rate"].baseline == 1.0 and rows["release_rate"].current == 0.5
    assert rows["abstain_rate"].current == 0.5 and rows["review_rate"].current == 0.0
    assert rows["mean_entailment"].baseline == pytest.approx(0.9)
    assert rows["mean_entailment"].current == 0.5 and rows["mean_entailment"].current_values == 5
    assert rows["facts_share"].current == 0.5 and rows["facts_share"].baseline == 0.0
    assert rows["mean_faithfulness"].current is None and rows["mean_faithfulness"].current_values == 0
    top = rows["retrieval_top_score"]
    assert top.threshold == top.baseline * SMALL.top_score_relative  # type: ignore[operator]
    # entailment: 5 values in the window, fewer than min_answers -> not judged, whatever the change
    assert report.drifting == ["release_rate", "abstain_rate", "facts_share"]
    assert report.current_since == samples[30].created_at and report.baseline_since == samples[0].created_at

    judged = compute_drift(samples, SMALL.model_copy(update={"min_answers": 5}))
    assert "mean_entailment" in judged.drifting and "review_rate" not in judged.drifting
    assert "retrieval_top_score" not in judged.drifting, "the same retrieval: the top score did not move"


def test_no_drift_without_enough_answers_or_beyond_the_threshold(answer_records: Made) -> None:
    few = [sample_of(r) for r in series(answer_records, 9, 10)]
    assert compute_drift(few, SMALL).drifting == [], "9 baseline answers: fewer than min_answers"
    assert compute_drift([], SMALL).current_answers == 0
    lax = SMALL.model_copy(update={"rate_delta": 0.6})
    steady = [sample_of(r) for r in series(answer_records, 30, 10)]
    assert compute_drift(steady, lax).drifting == [], "a change of 0.5 is within a threshold of 0.6"


def test_the_watch_keeps_the_newest_two_windows_seeded_from_the_store(
    answer_records: Made,
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    records = series(answer_records, 60, 10)
    audit = SqliteAuditStore(tmp_path / "audit.sqlite")
    for r in records:
        audit.save(r)
    watch = DriftWatch(SMALL)
    seeded = recent_samples(audit, watch.capacity)
    audit.close()
    assert [s.answer_id for s in seeded] == [r.answer_id for r in records[-40:]], "newest 40, oldest first"
    watch.seed(seeded)
    assert watch.report() == compute_drift([sample_of(r) for r in records[-40:]], SMALL)
    # ten more released answers push the abstentions into the baseline: the window is steady again
    for i in range(10):
        watch.observe(redated(answer_records.released, day(2) + timedelta(minutes=i)))
    after = watch.report()
    assert (after.current_answers, after.baseline_answers) == (10, 30)
    rows = {r.kpi: r for r in after.kpis}
    assert rows["release_rate"].current == 1.0 and rows["release_rate"].baseline == 25 / 30


def test_a_sample_keeps_numbers_not_the_record(answer_records: Made) -> None:
    s: AnswerSample = sample_of(answer_records.abstained)
    p = answer_records.abstained.provenance
    assert s.decision == "abstained" and s.question == answer_records.abstained.question
    assert s.top_score == p.retrieval[0].score and s.has_facts
    assert dict(s.steps_s)["gate_strict"] > 0 and "gate_strict" in {t.step for t in p.trace}
    assert sample_of(answer_records.released).question == "", "questions are kept for abstentions only"
    assert s.total_s is not None and s.total_s >= max(seconds for _, seconds in s.steps_s)
