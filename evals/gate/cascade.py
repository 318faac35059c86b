"""The cascade gate: cheap checks first, the Ragas LLM judge only when they are not conclusive.

Order: a precheck (abstention, empty answer, no contexts: decided without any check), then each configured cheap
stage (citation coverage, quoted spans, support similarity, lexical support). A stage that fails stops the cascade
and the answer is not released (``abstained``; the workflow may retry it with the strict prompt). When every cheap
stage passes, the answer is released without calling the judge. When any is inconclusive, the judge (Ragas
faithfulness and answer relevancy, :class:`~evals.gate.ragas_gate.RagasGate`) decides; a judge that fails after its
retries sends the answer to ``review`` with a ``gate_error`` stage, never to ``released``. Without a judge stage,
an inconclusive cascade decides ``inconclusive_decision`` (default ``review``).

Every stage's outcome, scores and time are kept in :attr:`GateRecord.stages`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from core.errors import ConfigurationError
from core.llm import ModelClient
from core.settings import GateSettings
from core.types import GateDecision, GateRecord, GateScores, GateStageOutcome, GateStageRecord
from evals.gate.base import AnswerGate, CheckInput, GateCheck
from evals.gate.checks.citation_coverage import CitationCoverageCheck
from evals.gate.checks.claims import check_input
from evals.gate.checks.lexical_support import LexicalSupportCheck
from evals.gate.checks.quoted_spans import QuotedSpansCheck
from evals.gate.checks.support_similarity import SupportSimilarityCheck
from evals.gate.ragas_gate import RagasGate, is_abstention, strip_citations
from retrieval.base import Embedder

PRECHECK = "precheck"
JUDGE = "judge"
#: GateScores fields a cheap stage's scores may fill.
_SCORE_FIELDS = ("citation_coverage", "support_similarity", "lexical_support")


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


def precheck(question: str, answer: str, contexts: Sequence[str]) -> str | None:
    """Why the answer needs no scoring (it abstains, is empty, or there is nothing to check it against), or None."""
    if is_abstention(answer):
        return "model abstained"
    if not answer.strip():
        return "empty answer"
    if not strip_citations(answer):
        return "answer holds only citation markers"
    if not question.strip():
        return "empty question"
    if not any(c.strip() for c in contexts):
        return "no contexts to check the answer against"
    return None


class CascadeGate:
    """Cheap :class:`~evals.gate.base.GateCheck` stages in order, then ``judge`` (an :class:`AnswerGate`, normally
    :class:`RagasGate`) only for answers the cheap stages leave inconclusive."""

    def __init__(
        self,
        checks: Sequence[GateCheck],
        judge: AnswerGate | None = None,
        inconclusive_decision: GateDecision = "review",
        similarity_settled_at: float | None = None,
    ) -> None:
        if not checks and judge is None:
            raise ConfigurationError(
                "the gate cascade has no stage", hint="list at least one stage in KGRAG_GATE__STAGES"
            )
        self.checks = list(checks)
        self.judge = judge
        self.inconclusive_decision: GateDecision = inconclusive_decision
        self.similarity_settled_at = similarity_settled_at

    @classmethod
    def from_settings(cls, settings: GateSettings, client: ModelClient, embedder: Embedder) -> CascadeGate:
        """The stages ``settings.stages`` names, in the cascade's fixed order, with their thresholds."""
        stages = set(settings.stages)
        checks: list[GateCheck] = []
        if "citation_coverage" in stages:
            checks.append(
                CitationCoverageCheck(settings.citation_coverage_fail_below, settings.citation_coverage_pass_at)
            )
        if "quoted_spans" in stages:
            checks.append(QuotedSpansCheck(settings.quoted_spans_fail_below, settings.quoted_spans_pass_at))
        if "support_similarity" in stages:
            checks.append(
                SupportSimilarityCheck(
                    embedder, settings.support_similarity_fail_below, settings.support_similarity_pass_at
                )
            )
        if "lexical_support" in stages:
            checks.append(
                LexicalSupportCheck(
                    settings.lexical_support_fail_below, settings.lexical_support_pass_at, settings.fuzzy_match
                )
            )
        judge = RagasGate.from_settings(settings, client, embedder) if JUDGE in stages else None
        return cls(checks, judge, settings.inconclusive_decision, settings.similarity_settled_by_lexical_at)

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        """Run the cascade and decide; every stage that ran (or was skipped) is in the record's ``stages``."""
        started = time.perf_counter()
        record = self._run(question, answer, contexts)
        return record.model_copy(update={"duration_ms": _ms(started)})

    async def aevaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        """Same as :meth:`evaluate` (the cheap stages are synchronous; the judge runs its own loop)."""
        return self.evaluate(question, answer, contexts)

    # ----- the cascade -----

    def _run(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        t0 = time.perf_counter()
        why = precheck(question, answer, contexts)
        if why is not None:
            stage = GateStageRecord(name=PRECHECK, outcome="fail", duration_ms=_ms(t0), detail=why)
            return GateRecord(decision="abstained", reason=why, stages=[stage])
        item = check_input(question, answer, contexts)
        stages: list[GateStageRecord] = []
        scores: dict[str, float] = {}
        for check in self.checks:
            stage = self._stage(check, item)
            stages.append(stage)
            scores |= {k: v for k, v in stage.scores.items() if k in _SCORE_FIELDS}
            if stage.outcome in ("fail", "error"):
                stages += self._skipped(after=check.name, why=f"{check.name} failed")
                decision: GateDecision = "abstained" if stage.outcome == "fail" else "review"
                prefix = "" if stage.outcome == "fail" else "gate_error: "
                return GateRecord(
                    decision=decision,
                    scores=GateScores(**scores),
                    reason=f"{prefix}{check.name} {_fmt(stage.scores, check.name)}: {stage.detail}",
                    stages=stages,
                )
        unsure = [s.name for s in stages if s.outcome == "inconclusive"]
        settled = self._settled(stages)
        unsure = [name for name in unsure if name != settled]
        if stages and not unsure:
            if self.judge is not None:
                stages.append(GateStageRecord(name=JUDGE, outcome="skipped", detail="every cheap stage passed clearly"))
            passed = ", ".join(f"{s.name} {_fmt(s.scores, s.name)}" for s in stages)
            note = f"; {settled} inconclusive, settled by lexical_support" if settled else ""
            return GateRecord(
                decision="released",
                scores=GateScores(**scores),
                reason=f"cheap stages passed: {passed}{note}",
                stages=stages,
            )
        inconclusive = "inconclusive: " + ", ".join(unsure) if unsure else "no cheap stage configured"
        if self.judge is None:
            return GateRecord(
                decision=self.inconclusive_decision,
                scores=GateScores(**scores),
                reason=f"{inconclusive}; no judge stage configured",
                stages=stages,
            )
        t1 = time.perf_counter()
        verdict = self.judge.evaluate(question, answer, contexts)
        judged = verdict.scores.model_dump(exclude_none=True)
        outcome: GateStageOutcome
        if verdict.decision == "released":
            outcome = "pass"
        elif verdict.reason.startswith("gate_error") or verdict.decision == "review":
            outcome = "error"
        else:
            outcome = "fail"
        stages.append(
            GateStageRecord(name=JUDGE, outcome=outcome, scores=judged, duration_ms=_ms(t1), detail=verdict.reason)
        )
        decision = "review" if outcome == "error" else verdict.decision
        reason = verdict.reason if outcome == "error" else f"{inconclusive}; judge: {verdict.reason}"
        return GateRecord(
            decision=decision,
            scores=GateScores(**(scores | judged)),
            reason=reason,
            stages=stages,
        )

    def _settled(self, stages: list[GateStageRecord]) -> str | None:
        """``support_similarity`` when it was inconclusive but lexical support reached ``similarity_settled_at``:
        a paraphrase all of whose content words, numbers and names its cited passages hold needs no judge."""
        if self.similarity_settled_at is None:
            return None
        by_name = {s.name: s for s in stages}
        similarity, lexical = by_name.get("support_similarity"), by_name.get("lexical_support")
        if similarity is None or lexical is None or similarity.outcome != "inconclusive" or lexical.outcome != "pass":
            return None
        return similarity.name if lexical.scores.get("lexical_support", 0.0) >= self.similarity_settled_at else None

    def _stage(self, check: GateCheck, item: CheckInput) -> GateStageRecord:
        started = time.perf_counter()
        try:
            result = check.check(item)
        except Exception as exc:  # a broken check must not release the answer
            return GateStageRecord(
                name=check.name, outcome="error", duration_ms=_ms(started), detail=f"{type(exc).__name__}: {exc}"
            )
        return GateStageRecord(
            name=check.name,
            outcome=result.outcome,
            scores=result.scores,
            duration_ms=_ms(started),
            detail=result.detail,
        )

    def _skipped(self, *, after: str, why: str) -> list[GateStageRecord]:
        names = [c.name for c in self.checks]
        rest = names[names.index(after) + 1 :] + ([JUDGE] if self.judge is not None else [])
        return [GateStageRecord(name=name, outcome="skipped", detail=why) for name in rest]


def _fmt(scores: dict[str, float], name: str) -> str:
    value = scores.get(name)
    return f"{value:.2f}" if value is not None else "-"
