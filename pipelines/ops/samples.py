"""What the KPIs read of one answer record: a few numbers (decision, gate scores, retrieval top score, graph facts,
tokens, step timings), not the record itself, so that windows of thousands of answers stay small."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.types import AnswerRecord, GateDecision
from pipelines.store.base import AuditStore

#: Records read from the audit store per query.
PAGE = 500


@dataclass(frozen=True, slots=True)
class AnswerSample:
    """One answer as the KPIs see it.

    ``top_score`` is the score of the first retrieval hit shown to the model (the retriever's best; its scale is the
    retrieval mode's: fused RRF for hybrid, cosine for dense); ``steps_s`` holds the workflow steps that ran (skipped
    ones left out) with their durations, and ``total_s`` the workflow's wall time (steps overlap: retrieval and
    graph context run concurrently). ``question`` is kept for abstentions only.
    """

    answer_id: str
    created_at: str
    decision: GateDecision
    question: str
    entailment: float | None
    faithfulness: float | None
    top_score: float | None
    has_facts: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    #: The gate's judge calls (both drafts on a strict retry); 0 without a judge or with cached verdicts.
    judge_prompt_tokens: int
    judge_completion_tokens: int
    steps_s: tuple[tuple[str, float], ...]
    total_s: float | None


def _wall_time(record: AnswerRecord) -> float | None:
    spans = []
    for entry in record.provenance.trace:
        if entry.status == "skipped":
            continue
        try:
            start = datetime.fromisoformat(entry.started_at)
        except ValueError:
            return None
        spans.append((start, start + timedelta(milliseconds=entry.duration_ms)))
    if not spans:
        return None
    return (max(end for _, end in spans) - min(start for start, _ in spans)).total_seconds()


def sample_of(record: AnswerRecord) -> AnswerSample:
    """The KPI sample of one answer record."""
    p = record.provenance
    decision = p.gate.decision
    judge_prompt, judge_completion = p.gate.judge_tokens()
    return AnswerSample(
        answer_id=record.answer_id,
        created_at=record.created_at,
        decision=decision,
        question=record.question if decision == "abstained" else "",
        entailment=p.gate.scores.entailment,
        faithfulness=p.gate.scores.faithfulness,
        top_score=p.retrieval[0].score if p.retrieval else None,
        has_facts=bool(record.facts),
        prompt_tokens=p.prompt_tokens,
        completion_tokens=p.completion_tokens,
        judge_prompt_tokens=judge_prompt,
        judge_completion_tokens=judge_completion,
        steps_s=tuple((t.step, t.duration_ms / 1000) for t in p.trace if t.status != "skipped"),
        total_s=_wall_time(record),
    )


def iter_samples(
    audit: AuditStore, *, start: str | None = None, end: str | None = None, limit: int
) -> Iterator[AnswerSample]:
    """Samples of the newest ``limit`` answers created in ``[start, end)``, newest first, read a page at a time."""
    offset = 0
    while offset < limit:
        page = audit.records(start=start, end=end, limit=min(PAGE, limit - offset), offset=offset)
        for record in page:
            yield sample_of(record)
        if len(page) < PAGE:
            return
        offset += len(page)


def recent_samples(audit: AuditStore, limit: int) -> list[AnswerSample]:
    """Samples of the newest ``limit`` answers, oldest first (what a drift watch is seeded with)."""
    return list(iter_samples(audit, limit=limit))[::-1]
