"""The cascade gate: cheap checks that may only fail an answer, then a verdict per claim and a relevance verdict.

Order: a precheck (abstention, empty answer, no contexts: decided without any check); citation repair (a claim
whose cited passage does not hold it while another shown passage does is re-pointed, and the repair recorded);
each configured cheap stage (citation coverage, quoted spans, support similarity, lexical support, polarity, swapped
spans, numbers); then the judge stages. A cheap stage that fails stops the cascade and the answer is not released
(``abstained``; the workflow may retry it with the strict prompt). A cheap stage that passes releases nothing:
release needs every claim ``entailed`` by its evidence sentences and the answer judged relevant
(:class:`~evals.gate.verification.ClaimVerifier`). Ragas faithfulness and answer relevancy
(:class:`~evals.gate.ragas_gate.RagasGate`, stage ``judge``, built by the :class:`~evals.gate.base.JudgeFactory` the
composition root passes) may run after them. A judge that fails sends the
answer to ``review`` with a ``gate_error``, never to ``released``; with no judge stage configured, the cascade
decides ``inconclusive_decision`` (``review`` or ``abstained``).

Every stage's outcome, scores and time are kept in :attr:`GateRecord.stages`; every judged claim's verdict and
evidence in :attr:`GateRecord.claims`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.llm import ModelClient
from core.settings import GateSettings
from core.types import ClaimVerdict, GateDecision, GateRecord, GateScores, GateStageOutcome, GateStageRecord
from evals.gate.base import AnswerGate, CheckInput, GateCheck, JudgeFactory, VerdictModel, require_judge
from evals.gate.checks.citation_coverage import CitationCoverageCheck
from evals.gate.checks.claims import check_input, render_claims, strip_citations
from evals.gate.checks.lexical_support import LexicalSupportCheck
from evals.gate.checks.numbers import NumbersCheck
from evals.gate.checks.polarity import PolarityCheck
from evals.gate.checks.quoted_spans import QuotedSpansCheck
from evals.gate.checks.restates_question import RestatesQuestionCheck
from evals.gate.checks.support_similarity import SupportSimilarityCheck
from evals.gate.checks.swapped_spans import SwappedSpansCheck
from evals.gate.evidence import repair_citations
from evals.gate.verdicts import LlmClaimJudge
from evals.gate.verification import ENTAILMENT, RELEVANCE, ClaimVerifier
from prompts.abstention import is_abstention
from retrieval.base import Embedder

PRECHECK = "precheck"
REPAIR = "citation_repair"
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


@dataclass
class _Record:
    """What the cascade has gathered so far, turned into the :class:`GateRecord` of its decision."""

    repaired_answer: str | None = None
    scores: dict[str, float] = field(default_factory=dict)
    claims: list[ClaimVerdict] = field(default_factory=list)
    relevant: bool | None = None
    judge_tokens: tuple[int, int] | None = None

    def record(self, decision: GateDecision, reason: str, stages: list[GateStageRecord]) -> GateRecord:
        return GateRecord(
            decision=decision,
            scores=GateScores(**self.scores),
            reason=reason,
            stages=stages,
            claims=self.claims,
            relevant=self.relevant,
            repaired_answer=self.repaired_answer,
            judge_prompt_tokens=self.judge_tokens[0] if self.judge_tokens else None,
            judge_completion_tokens=self.judge_tokens[1] if self.judge_tokens else None,
        )


class CascadeGate:
    """Citation repair, then cheap :class:`~evals.gate.base.GateCheck` stages that may only fail an answer, then
    ``verifier`` (a verdict per claim, and relevance) and, if given, ``judge`` (an :class:`AnswerGate`, normally
    :class:`~evals.gate.ragas_gate.RagasGate`). Release needs the judge stages' positive verdicts."""

    def __init__(
        self,
        checks: Sequence[GateCheck],
        verifier: ClaimVerifier | None = None,
        judge: AnswerGate | None = None,
        inconclusive_decision: GateDecision = "review",
        repair_margin: float = 0.2,
    ) -> None:
        if not checks and judge is None and verifier is None:
            raise ConfigurationError(
                "the gate cascade has no stage", hint="list at least one stage in KGRAG_GATE__STAGES"
            )
        if inconclusive_decision == "released":
            raise ConfigurationError(
                "the gate's inconclusive_decision cannot be released: cheap checks alone never release an answer",
                hint="set KGRAG_GATE__INCONCLUSIVE_DECISION to review or abstained",
            )
        self.checks = list(checks)
        self.verifier = verifier
        self.judge = judge
        self.inconclusive_decision: GateDecision = inconclusive_decision
        self.repair_margin = repair_margin

    @classmethod
    def from_settings(
        cls,
        settings: GateSettings,
        client: VerdictModel,
        embedder: Embedder,
        judge_factory: JudgeFactory | None = None,
        *,
        verdicts: VerdictModel | None = None,
    ) -> CascadeGate:
        """The stages ``settings.stages`` names, in the cascade's fixed order, with their thresholds; ``client``
        judges (``verdicts``, when given, makes the claim and relevance verdicts instead, e.g. ``client`` behind a
        breaker). Ragas' ``judge`` stage needs a :class:`~core.llm.ModelClient` and ``judge_factory`` to build it."""
        stages = set(settings.stages)
        checks: list[GateCheck] = []
        if "restates_question" in stages:
            checks.append(RestatesQuestionCheck())
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
        if "polarity" in stages:
            checks.append(PolarityCheck())
        if "swapped_spans" in stages:
            checks.append(SwappedSpansCheck())
        if "numbers" in stages:
            checks.append(NumbersCheck())
        verifier = None
        if ENTAILMENT in stages:
            verifier = ClaimVerifier(
                LlmClaimJudge(
                    verdicts or client,
                    cache_size=settings.verdict_cache_size,
                    top_logprobs=settings.entailment_logprobs,
                    relevance_logprobs=settings.relevance_logprobs,
                    retries=settings.retries,
                ),
                entailed_at=settings.entailed_at,
                relevant_at=settings.relevant_at,
                evidence_sentences=settings.evidence_sentences,
                question_sentences=settings.question_sentences,
                relevance=RELEVANCE in stages,
            )
        judge = None
        if JUDGE in stages:
            if not isinstance(client, ModelClient):
                raise ConfigurationError("the gate's judge stage needs an OpenAI-compatible endpoint")
            judge = require_judge(judge_factory)(settings, client, embedder)
        return cls(checks, verifier, judge, settings.inconclusive_decision, settings.repair_margin)

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
        item, repairs = repair_citations(check_input(question, answer, contexts), margin=self.repair_margin)
        stages = [
            GateStageRecord(
                name=REPAIR,
                outcome="pass",
                duration_ms=_ms(t0),
                detail="; ".join(f"claim {r.claim + 1}: {r.detail}" for r in repairs) or "no citation re-pointed",
            )
        ]
        done = _Record(repaired_answer=render_claims(item) if repairs else None)
        for check in self.checks:
            stage = self._stage(check, item)
            stages.append(stage)
            done.scores |= {k: v for k, v in stage.scores.items() if k in _SCORE_FIELDS}
            if stage.outcome in ("fail", "error"):
                stages += self._skipped(after=check.name, why=f"{check.name} failed")
                prefix = "" if stage.outcome == "fail" else "gate_error: "
                return done.record(
                    "abstained" if stage.outcome == "fail" else "review",
                    f"{prefix}{check.name} {_fmt(stage.scores, check.name)}: {stage.detail}",
                    stages,
                )
        if self.verifier is None and self.judge is None:
            reason = "no judge stage configured: cheap checks alone never release"
            return done.record(self.inconclusive_decision, reason, stages)
        reason = "every claim entailed by its evidence; addresses the question"
        if self.verifier is not None:
            found = self.verifier.verify(item, repairs, strip_citations(answer))
            stages += found.stages
            done.claims, done.relevant = found.claims, found.relevant
            done.judge_tokens = (found.prompt_tokens, found.completion_tokens)
            entailment = found.stages[0].scores.get("entailment_min") if found.stages else None
            if entailment is not None:
                done.scores["entailment"] = entailment
            if found.decision is not None:
                if self.judge is not None:
                    stages.append(GateStageRecord(name=JUDGE, outcome="skipped", detail="a claim verdict decided"))
                return done.record(found.decision, found.reason, stages)
        if self.judge is not None:
            t1 = time.perf_counter()
            verdict = self.judge.evaluate(question, answer, contexts)
            judged = verdict.scores.model_dump(exclude_none=True)
            outcome: GateStageOutcome = "pass" if verdict.decision == "released" else "fail"
            if verdict.reason.startswith("gate_error") or verdict.decision == "review":
                outcome = "error"
            stages.append(
                GateStageRecord(name=JUDGE, outcome=outcome, scores=judged, duration_ms=_ms(t1), detail=verdict.reason)
            )
            done.scores |= judged
            if outcome == "error":
                return done.record("review", verdict.reason, stages)
            if outcome == "fail":
                return done.record(verdict.decision, f"judge: {verdict.reason}", stages)
            reason = f"judge: {verdict.reason}" if self.verifier is None else f"{reason}; judge: {verdict.reason}"
        return done.record("released", reason, stages)

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
        judges = [ENTAILMENT, RELEVANCE] if self.verifier is not None else []
        rest = names[names.index(after) + 1 :] + judges + ([JUDGE] if self.judge is not None else [])
        return [GateStageRecord(name=name, outcome="skipped", detail=why) for name in rest]


def _fmt(scores: dict[str, float], name: str) -> str:
    value = scores.get(name)
    return f"{value:.2f}" if value is not None else "-"
