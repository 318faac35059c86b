"""The KPI report over a real audit store holding real answer records (re-dated copies spread over days) and the
real ingestion run report of the sample store."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from core.settings import DriftSettings, KpiSettings
from core.types import AnswerRecord
from pipelines.ingest.report import IngestReport
from pipelines.ops.kpis import TOTAL, build_report, percentiles
from pipelines.ops.period import Period, parse_period
from pipelines.store.layout import StoreLayout
from pipelines.store.sql_audit import SqliteAuditStore
from tests.pipelines.ops.answers import Made, day, redated, write

KPIS = KpiSettings()
DRIFT = DriftSettings()


@pytest.fixture
def audit(tmp_path: Path) -> Iterator[SqliteAuditStore]:
    store = SqliteAuditStore(tmp_path / "audit.sqlite")
    yield store
    store.close()


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(q * len(ordered)) - 1]


def january(audit: SqliteAuditStore, made: Made) -> list[AnswerRecord]:
    """Day 1: two released, one abstained; day 2: nothing; day 3: one released, one held, two abstained (the same
    question in other case and spacing); day 9: one released (outside the period the tests ask for)."""
    return write(
        audit,
        [
            redated(made.released, day(1, 9)),
            redated(made.released, day(1, 10)),
            redated(made.abstained, day(1, 11)),
            redated(made.released, day(3, 9)),
            redated(made.held, day(3, 10)),
            redated(made.abstained, day(3, 11), question="  who founded   NORTHWIND robotics?"),
            redated(made.abstained, day(3, 12), question="What is the parking policy?"),
            redated(made.released, day(9)),
        ],
    )


def test_the_report_of_a_period_counts_its_real_answers(
    audit: SqliteAuditStore, answer_records: Made, sample_store: Path
) -> None:
    records = january(audit, answer_records)
    inside = records[:7]
    report = build_report(
        audit, StoreLayout(sample_store).reports, parse_period("2026-01-01", "2026-01-03"), kpis=KPIS, drift=DRIFT
    )
    assert report.answers == 7 and not report.truncated
    assert report.decisions == {"released": 3, "abstained": 3, "review": 1}
    assert report.rates == {"released": 3 / 7, "abstained": 3 / 7, "review": 1 / 7}
    assert [(d.day, d.answers, d.released, d.abstained, d.review) for d in report.daily] == [
        ("2026-01-01", 3, 2, 1, 0),
        ("2026-01-02", 0, 0, 0, 0),
        ("2026-01-03", 4, 1, 2, 1),
    ]
    assert report.daily[1].release_rate is None and report.daily[0].release_rate == 2 / 3

    # tokens: summed from each answer's provenance (the abstentions paid for two drafts)
    prompt = sum(r.provenance.prompt_tokens or 0 for r in inside)
    completion = sum(r.provenance.completion_tokens or 0 for r in inside)
    assert (report.tokens.prompt, report.tokens.completion, report.tokens.answers_with_usage) == (prompt, completion, 7)
    # and the gate judge's calls, counted apart and in the totals (the three released answers were judged)
    judged = [r.provenance.gate.judge_tokens() for r in inside]
    judge_prompt, judge_completion = sum(j[0] for j in judged), sum(j[1] for j in judged)
    assert judge_prompt >= 3 * 120 and (report.tokens.judge_prompt, report.tokens.judge_completion) == (
        judge_prompt,
        judge_completion,
    )
    assert report.tokens.total == prompt + completion + judge_prompt + judge_completion
    assert report.tokens.per_answer == report.tokens.total / 7
    assert sum(d.prompt_tokens for d in report.daily) == prompt
    assert sum(d.judge_tokens for d in report.daily) == judge_prompt + judge_completion

    # latency by step, from the workflow traces (steps that ran; skipped ones are not timings)
    retrieve = [t.duration_ms / 1000 for r in inside for t in r.provenance.trace if t.step == "retrieve"]
    assert report.latency_s["retrieve"].count == 7
    assert report.latency_s["retrieve"].p50 == nearest_rank(retrieve, 0.5)
    assert report.latency_s["retrieve"].p95 == nearest_rank(retrieve, 0.95) == max(retrieve)
    strict = [r for r in inside if any(t.step == "gate_strict" and t.status == "ok" for t in r.provenance.trace)]
    assert report.latency_s["gate_strict"].count == len(strict) == 3, "only the abstentions ran the strict retry"
    assert report.latency_s[TOTAL].count == 7
    assert report.latency_s[TOTAL].max >= max(retrieve)  # type: ignore[operator]

    # the most often abstained questions, case and spacing folded; the newest wording is shown
    assert [(q.question, q.count) for q in report.top_abstained] == [
        ("who founded   NORTHWIND robotics?", 2),
        ("What is the parking policy?", 1),
    ]
    # KPIs over the period: the share with graph facts is the abstentions' (the released answers had none)
    with_facts = sum(1 for r in inside if r.facts)
    assert report.kpis["facts_share"] == with_facts / 7
    assert report.kpis["release_rate"] == 3 / 7
    assert report.kpis["retrieval_top_score"] == pytest.approx(sum(r.provenance.retrieval[0].score for r in inside) / 7)
    assert report.kpis["mean_faithfulness"] is None, "no Ragas gate ran"
    # the sample store's ingestion ran today, outside January 2026
    assert report.ingestion.runs == 0


def test_review_turnaround_runs_from_the_answer_to_its_first_review(
    audit: SqliteAuditStore, answer_records: Made, sample_store: Path
) -> None:
    first, second, _ = write(
        audit,
        [
            redated(answer_records.held, day(2, 8)),
            redated(answer_records.held, day(2, 9)),
            redated(answer_records.held, day(2, 10)),
        ],
    )
    review = audit.add_review(first.answer_id, reviewer="ann", decision="approved", note="", corrected_answer=None)
    audit.add_review(first.answer_id, reviewer="bob", decision="rejected", note="second look", corrected_answer=None)
    other = audit.add_review(second.answer_id, reviewer="ann", decision="corrected", note="", corrected_answer="28.")
    report = build_report(audit, StoreLayout(sample_store).reports, Period(), kpis=KPIS, drift=DRIFT)
    v = report.reviews
    assert (v.held, v.reviewed, v.pending) == (3, 2, 1)
    assert v.decisions == {"approved": 1, "rejected": 1, "corrected": 1}
    waits = sorted(
        [
            (datetime.fromisoformat(review.created_at) - day(2, 8)).total_seconds(),
            (datetime.fromisoformat(other.created_at) - day(2, 9)).total_seconds(),
        ]
    )
    assert v.turnaround_s.count == 2 and v.turnaround_s.p50 == waits[0] and v.turnaround_s.p95 == waits[1]


def test_ingestion_runs_and_their_tokens_come_from_the_run_reports(
    audit: SqliteAuditStore, sample_store: Path, tmp_path: Path
) -> None:
    runs = [p for p in StoreLayout(sample_store).reports.glob("*.json") if p.name != "latest.json"]
    assert len(runs) == 1
    real = IngestReport.model_validate_json(runs[0].read_text("utf-8"))
    folder = tmp_path / "reports"
    folder.mkdir()
    (folder / runs[0].name).write_text(runs[0].read_text("utf-8"))
    llm_run = real.model_copy(
        update={
            "run_id": "llm-run",
            "started_at": "2026-01-02T02:30:00Z",
            "prompt_tokens": 900,
            "completion_tokens": 70,
        }
    )
    (folder / "llm-run.json").write_text(llm_run.model_dump_json())
    (folder / "latest.json").write_text(llm_run.model_dump_json())  # the copy of the last run is not counted twice
    (folder / "broken.json").write_text("{not json")
    everything = build_report(audit, folder, Period(), kpis=KPIS, drift=DRIFT).ingestion
    assert everything.runs == 2 and everything.unreadable_reports == 1
    assert everything.documents_added == 2 * real.documents_added
    assert everything.chunks_embedded == 2 * real.chunks_embedded
    assert (everything.prompt_tokens, everything.completion_tokens) == (900, 70), "offline extraction costs none"
    january_only = build_report(audit, folder, parse_period("2026-01-01", "2026-01-31"), kpis=KPIS, drift=DRIFT)
    assert (january_only.ingestion.runs, january_only.ingestion.prompt_tokens) == (1, 900)


def test_a_report_reads_at_most_max_answers_newest_first(
    audit: SqliteAuditStore, answer_records: Made, tmp_path: Path
) -> None:
    write(audit, [redated(answer_records.abstained, day(n)) for n in range(1, 6)])
    report = build_report(audit, tmp_path, Period(), kpis=KpiSettings(max_answers=3), drift=DRIFT)
    assert report.truncated and report.answers == 3
    assert [d.day for d in report.daily] == ["2026-01-03", "2026-01-04", "2026-01-05"]
    empty = build_report(audit, tmp_path, parse_period("2030-01-01", None), kpis=KPIS, drift=DRIFT)
    assert empty.answers == 0 and empty.daily == [] and empty.rates["released"] is None
    assert empty.latency_s == {} and empty.tokens.per_answer is None


def test_percentiles_are_nearest_rank() -> None:
    p = percentiles([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (p.count, p.p50, p.p95, p.max) == (5, 3.0, 5.0, 5.0)
    twenty = percentiles([float(n) for n in range(1, 21)])
    assert (twenty.p50, twenty.p95) == (10.0, 19.0)
    assert percentiles([]).p50 is None
