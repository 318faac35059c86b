"""The KPI report of a period, computed from the audit store (answers, reviews) and the ingestion run reports: what
``kgrag report``, ``GET /v1/kpis`` and the /ui dashboard show."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from core.settings import DriftSettings, KpiSettings
from core.types import GateDecision
from pipelines.ingest.report import IngestReport
from pipelines.ops.drift import KPIS, DriftReport, compute_drift, mean
from pipelines.ops.period import Period
from pipelines.ops.samples import AnswerSample, iter_samples
from pipelines.store.base import AuditStore
from pipelines.store.layout import LATEST_REPORT

DECISIONS: tuple[GateDecision, ...] = ("released", "abstained", "review")
#: The workflow's wall time, beside its steps, in ``latency_s``.
TOTAL = "total"
_SPACES = re.compile(r"\s+")


class Percentiles(BaseModel):
    """Nearest-rank percentiles of some durations, in seconds (None without any)."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


class TokenKpis(BaseModel):
    """Model tokens of the answers (from their provenance): the generations' and the gate judge's."""

    answers_with_usage: int = Field(description="Answers whose model reported its tokens (abstentions call none).")
    prompt: int = Field(description="Prompt tokens of the generations.")
    completion: int = Field(description="Completion tokens of the generations.")
    judge_prompt: int = Field(default=0, description="Prompt tokens of the gate judge's verdict calls.")
    judge_completion: int = Field(default=0, description="Completion tokens of the gate judge's verdict calls.")
    total: int = Field(description="Every token above: generations and judge.")
    per_answer: float | None = Field(description="Mean tokens (generations and judge) per answer with usage.")


class ReviewKpis(BaseModel):
    """Answers the gate held for review in the period, and how long the first review took."""

    held: int
    reviewed: int
    pending: int
    decisions: dict[str, int] = Field(description="Reviews of those answers by reviewer decision.")
    turnaround_s: Percentiles = Field(description="From the answer to its first review.")


class AbstainedQuestion(BaseModel):
    """A question (case and spacing folded) that abstained, how often, and when last."""

    question: str
    count: int
    last_asked: str


class DayKpis(BaseModel):
    """One UTC day of the period (days without answers between the first and last included)."""

    day: str
    answers: int
    released: int
    abstained: int
    review: int
    release_rate: float | None
    prompt_tokens: int
    completion_tokens: int
    judge_tokens: int = Field(default=0, description="Prompt and completion tokens of the gate judge's calls.")


class IngestKpis(BaseModel):
    """The ingestion runs (``kgrag ingest``, ``kgrag delete``, API jobs) that started in the period."""

    runs: int
    failed: int
    documents_added: int
    documents_changed: int
    documents_deleted: int
    chunks_embedded: int
    chunks_extracted: int
    extraction_failures: int
    files_skipped: int
    prompt_tokens: int = Field(description="The LLM extractor's prompt tokens (0 with the offline extractor).")
    completion_tokens: int
    unreadable_reports: int = 0


class KpiReport(BaseModel):
    """KPIs of the answers created in ``[start, end)`` and of the ingestion runs started then."""

    start: str | None
    end: str | None
    generated_at: str
    answers: int
    truncated: bool = Field(description="More answers than KGRAG_KPIS__MAX_ANSWERS: only the newest were read.")
    decisions: dict[str, int]
    rates: dict[str, float | None]
    kpis: dict[str, float | None] = Field(description="Each tracked KPI over the whole period.")
    latency_s: dict[str, Percentiles] = Field(description="By workflow step, and the workflow's wall time (total).")
    tokens: TokenKpis
    reviews: ReviewKpis
    top_abstained: list[AbstainedQuestion]
    drift: DriftReport
    daily: list[DayKpis]
    ingestion: IngestKpis


def percentiles(values: Sequence[float]) -> Percentiles:
    """Nearest-rank p50 and p95 (the smallest value with at least that share of values at or below it)."""
    ordered = sorted(values)
    n = len(ordered)

    def rank(q: float) -> float | None:
        return ordered[max(0, math.ceil(q * n) - 1)] if n else None

    return Percentiles(count=n, p50=rank(0.50), p95=rank(0.95), max=ordered[-1] if n else None)


def _latency(samples: Sequence[AnswerSample]) -> dict[str, Percentiles]:
    by_step: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        for step, seconds in s.steps_s:
            by_step[step].append(seconds)
        if s.total_s is not None:
            by_step[TOTAL].append(s.total_s)
    order = [step for step in by_step if step != TOTAL] + ([TOTAL] if TOTAL in by_step else [])
    return {step: percentiles(by_step[step]) for step in order}


def _tokens(samples: Sequence[AnswerSample]) -> TokenKpis:
    used = [
        s
        for s in samples
        if s.prompt_tokens is not None
        or s.completion_tokens is not None
        or s.judge_prompt_tokens
        or s.judge_completion_tokens
    ]
    prompt = sum(s.prompt_tokens or 0 for s in used)
    completion = sum(s.completion_tokens or 0 for s in used)
    judge_prompt = sum(s.judge_prompt_tokens for s in used)
    judge_completion = sum(s.judge_completion_tokens for s in used)
    total = prompt + completion + judge_prompt + judge_completion
    return TokenKpis(
        answers_with_usage=len(used),
        prompt=prompt,
        completion=completion,
        judge_prompt=judge_prompt,
        judge_completion=judge_completion,
        total=total,
        per_answer=total / len(used) if used else None,
    )


def _seconds_between(earlier: str, later: str) -> float | None:
    try:
        return (datetime.fromisoformat(later) - datetime.fromisoformat(earlier)).total_seconds()
    except (ValueError, TypeError):
        return None


def _reviews(audit: AuditStore, samples: Sequence[AnswerSample]) -> ReviewKpis:
    held = [s for s in samples if s.decision == "review"]
    decisions: Counter[str] = Counter()
    turnaround = []
    reviewed = 0
    for s in held:
        reviews = audit.reviews(s.answer_id)
        if not reviews:
            continue
        reviewed += 1
        decisions.update(r.decision for r in reviews)
        if (seconds := _seconds_between(s.created_at, reviews[0].created_at)) is not None:
            turnaround.append(seconds)
    return ReviewKpis(
        held=len(held),
        reviewed=reviewed,
        pending=len(held) - reviewed,
        decisions=dict(decisions),
        turnaround_s=percentiles(turnaround),
    )


def _top_abstained(samples: Sequence[AnswerSample], top: int) -> list[AbstainedQuestion]:
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    last: dict[str, str] = {}
    for s in samples:  # oldest first: the newest wording and time win
        if s.decision != "abstained":
            continue
        key = _SPACES.sub(" ", s.question).strip().casefold()
        counts[key] += 1
        shown[key] = s.question.strip()
        last[key] = s.created_at
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], -_stamp(last[kv[0]]), kv[0]))[:top]
    return [AbstainedQuestion(question=shown[k], count=n, last_asked=last[k]) for k, n in ranked]


def _stamp(created_at: str) -> float:
    try:
        return datetime.fromisoformat(created_at).timestamp()
    except ValueError:
        return 0.0


def _daily(samples: Sequence[AnswerSample]) -> list[DayKpis]:
    days: dict[str, list[AnswerSample]] = defaultdict(list)
    for s in samples:
        days[s.created_at[:10]].append(s)
    try:
        first, last = date.fromisoformat(min(days)), date.fromisoformat(max(days))
    except ValueError:  # no answers, or a created_at that is not ISO: no series
        return []
    out = []
    day = first
    while day <= last:
        items = days.get(day.isoformat(), [])
        counts = Counter(s.decision for s in items)
        out.append(
            DayKpis(
                day=day.isoformat(),
                answers=len(items),
                released=counts["released"],
                abstained=counts["abstained"],
                review=counts["review"],
                release_rate=counts["released"] / len(items) if items else None,
                prompt_tokens=sum(s.prompt_tokens or 0 for s in items),
                completion_tokens=sum(s.completion_tokens or 0 for s in items),
                judge_tokens=sum(s.judge_prompt_tokens + s.judge_completion_tokens for s in items),
            )
        )
        day += timedelta(days=1)
    return out


def ingest_runs(reports_dir: Path, period: Period) -> tuple[list[IngestReport], int]:
    """The run reports in ``reports_dir`` whose run started in ``period``, oldest first, and how many files there
    could not be read."""
    runs, unreadable = [], 0
    paths = sorted(reports_dir.glob("*.json")) if reports_dir.is_dir() else []
    for path in paths:
        if path.name == LATEST_REPORT:
            continue
        try:
            report = IngestReport.model_validate_json(path.read_text("utf-8"))
            started = datetime.fromisoformat(report.started_at)
        except (OSError, ValueError, ValidationError):
            unreadable += 1
            continue
        if period.contains(started if started.tzinfo else started.replace(tzinfo=UTC)):
            runs.append(report)
    return sorted(runs, key=lambda r: r.started_at), unreadable


def _ingestion(reports_dir: Path, period: Period) -> IngestKpis:
    runs, unreadable = ingest_runs(reports_dir, period)
    return IngestKpis(
        runs=len(runs),
        failed=sum(1 for r in runs if r.status == "failed"),
        documents_added=sum(r.documents_added for r in runs),
        documents_changed=sum(r.documents_changed for r in runs),
        documents_deleted=sum(r.documents_deleted for r in runs),
        chunks_embedded=sum(r.chunks_embedded for r in runs),
        chunks_extracted=sum(r.chunks_extracted for r in runs),
        extraction_failures=sum(r.extraction_failures for r in runs),
        files_skipped=sum(len(r.skipped) for r in runs),
        prompt_tokens=sum(r.prompt_tokens for r in runs),
        completion_tokens=sum(r.completion_tokens for r in runs),
        unreadable_reports=unreadable,
    )


def build_report(
    audit: AuditStore,
    reports_dir: Path,
    period: Period,
    *,
    kpis: KpiSettings,
    drift: DriftSettings,
    now: datetime | None = None,
) -> KpiReport:
    """The KPI report of ``period``: the newest ``kpis.max_answers`` answers created in it (one page of records at a
    time; only their samples are kept), their reviews, and the ingestion runs started in it. The drift compares the
    period's newest ``drift.window`` answers with the ``drift.baseline`` before them."""
    samples = list(iter_samples(audit, start=period.start, end=period.end, limit=kpis.max_answers + 1))
    truncated = len(samples) > kpis.max_answers
    samples = samples[: kpis.max_answers][::-1]  # oldest first
    counts = Counter(s.decision for s in samples)
    n = len(samples)
    return KpiReport(
        start=period.start,
        end=period.end,
        generated_at=(now or datetime.now(UTC)).isoformat(),
        answers=n,
        truncated=truncated,
        decisions={d: counts[d] for d in DECISIONS},
        rates={d: (counts[d] / n if n else None) for d in DECISIONS},
        kpis={k.name: mean([v for s in samples if (v := k.value(s)) is not None]) for k in KPIS},
        latency_s=_latency(samples),
        tokens=_tokens(samples),
        reviews=_reviews(audit, samples),
        top_abstained=_top_abstained(samples, kpis.top_abstained),
        drift=compute_drift(samples, drift),
        daily=_daily(samples),
        ingestion=_ingestion(reports_dir, period),
    )
