"""The judge stages of the cascade: a verdict for every claim against its evidence sentences, then relevance.

Release needs positive evidence: every claim ``entailed`` (with the judge's probability at least ``entailed_at``
where it gives logprobs) and the answer judged to address the question. A claim ``contradicted`` or ``not_found``
abstains the answer, naming the claim; a judge that cannot answer sends it to review (``gate_error``), never to
release. Judging stops at the first claim that fails: the remaining claims are recorded as not judged.

Relevance is the question-answer verdict: the judge answers the question from the claims' evidence sentences
alone, and the answer must say what it found. A short claim (an entity alone, fewer than ``SHORT_CLAIM_WORDS``
words) is judged by that verdict instead of an entailment call: ``entailed`` when the evidence answers the question
with it, ``contradicted`` when the evidence answers something else, ``not_found`` when it does not answer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.types import ClaimVerdict, EvidenceSpan, GateDecision, GateStageRecord, VerdictLabel
from evals.gate.base import CheckInput, Claim, ClaimJudge, Verdict
from evals.gate.evidence import (
    Repair,
    Sentence,
    question_sentences,
    select_evidence,
    sentences_of,
)

ENTAILMENT = "entailment"
RELEVANCE = "relevance"


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 3)


@dataclass
class Verification:
    """What the judge stages found: their stage records, the claims' verdicts, relevance, and the decision
    (None when every claim is entailed and the answer relevant)."""

    stages: list[GateStageRecord] = field(default_factory=list)
    claims: list[ClaimVerdict] = field(default_factory=list)
    relevant: bool | None = None
    decision: GateDecision | None = None
    reason: str = ""
    #: Model tokens of the judge's calls (0 when every verdict came from the cache).
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def used(self, verdict: Verdict) -> None:
        """Count the tokens ``verdict``'s call used."""
        self.prompt_tokens += verdict.prompt_tokens
        self.completion_tokens += verdict.completion_tokens


def spans(evidence: Sequence[Sentence]) -> list[EvidenceSpan]:
    """Evidence sentences as recorded spans."""
    return [EvidenceSpan(passage=s.passage, start=s.start, end=s.end, text=s.text) for s in evidence]


class ClaimVerifier:
    """Runs a :class:`~evals.gate.base.ClaimJudge` over every claim (its evidence: the ``evidence_sentences`` best
    sentences of the passages it is judged against) and over the answer's relevance."""

    def __init__(
        self,
        judge: ClaimJudge,
        *,
        entailed_at: float = 0.5,
        relevant_at: float = 0.5,
        evidence_sentences: int = 3,
        question_sentences: int = 2,
        relevance: bool = True,
    ) -> None:
        for label, value in (("entailed_at", entailed_at), ("relevant_at", relevant_at)):
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"gate {label} must be between 0 and 1, got {value}")
        if evidence_sentences < 1:
            raise ConfigurationError(f"gate evidence_sentences must be at least 1, got {evidence_sentences}")
        self.judge = judge
        self.entailed_at = entailed_at
        self.relevant_at = relevant_at
        self.evidence_sentences = evidence_sentences
        self.question_sentences = question_sentences
        self.relevance = relevance

    def verify(self, item: CheckInput, repairs: Sequence[Repair], answer_text: str) -> Verification:
        out = Verification()
        repaired = {r.claim: r for r in repairs}
        sentences = sentences_of(item.contexts)
        evidence = [select_evidence(c, item.question, sentences, self.evidence_sentences) for c in item.claims]
        # A short claim (an entity alone) means nothing without its question: with the relevance stage on, its
        # verdict is the question-answer verdict (does its evidence answer the question with it?).
        by_answer = [self.relevance and c.short for c in item.claims]
        verdicts: dict[int, ClaimVerdict] = {}
        started = time.perf_counter()
        for index, claim in enumerate(item.claims):
            if by_answer[index]:
                continue
            try:
                verdict = self.judge.entailment(item.question, claim.text, [s.text for s in evidence[index]])
            except Exception as exc:  # a judge that cannot answer must not release the answer
                out.stages.append(self._error(ENTAILMENT, started, exc))
                return self._review(out, f"gate_error: {ENTAILMENT}: {type(exc).__name__}: {exc}")
            out.used(verdict)
            label = verdict.label
            weak = label == "entailed" and verdict.probability is not None and verdict.probability < self.entailed_at
            verdicts[index] = self._verdict(
                claim,
                repaired.get(index),
                "not_found" if weak else label,
                verdict.probability,
                ENTAILMENT,
                evidence[index],
                cached=verdict.cached,
                detail=f"p(entailed) {verdict.probability:.2f} < {self.entailed_at:.2f}" if weak else "",
            )
            if label != "entailed" or weak:
                out.claims = [verdicts[i] for i in sorted(verdicts)]
                shown = verdicts[index].verdict.replace("_", " ")
                rest = sum(1 for i in range(index + 1, len(item.claims)) if not by_answer[i]) + sum(by_answer)
                detail = f"claim {index + 1} {shown}: {claim.text[:120]!r}" + (
                    f"; {rest} other claim(s) not judged" if rest else ""
                )
                out.stages.append(self._stage(ENTAILMENT, "fail", started, out.claims, detail))
                out.stages.append(GateStageRecord(name=RELEVANCE, outcome="skipped", detail=f"{ENTAILMENT} failed"))
                out.decision, out.reason = "abstained", f"{ENTAILMENT}: {detail}"
                return out
        judged = [verdicts[i] for i in sorted(verdicts)]
        if judged:
            detail = f"{len(judged)} claim(s) entailed by their evidence"
            out.stages.append(self._stage(ENTAILMENT, "pass", started, judged, detail))
        else:
            out.stages.append(
                GateStageRecord(
                    name=ENTAILMENT, outcome="skipped", detail="short answers: judged by the question-answer verdict"
                )
            )
        out.claims = judged
        if not self.relevance:
            return out
        return self._answers(out, item, repaired, answer_text, evidence, by_answer, verdicts, sentences)

    def _answers(
        self,
        out: Verification,
        item: CheckInput,
        repaired: dict[int, Repair],
        answer_text: str,
        evidence: Sequence[Sequence[Sentence]],
        by_answer: Sequence[bool],
        verdicts: dict[int, ClaimVerdict],
        sentences: Sequence[Sentence],
    ) -> Verification:
        """The question-answer verdict over the claims' evidence sentences and the passages' best sentences for the
        question (so that an answer citing a passage that does not answer, correctly, meets the one that does); it
        also decides the short claims."""
        started = time.perf_counter()
        found = [s for group in evidence for s in group]
        found += question_sentences(item.question, sentences, self.question_sentences)
        pooled = sorted(set(found), key=lambda s: (s.passage, s.start))
        try:
            verdict = self.judge.relevance(item.question, answer_text, [s.text for s in pooled])
        except Exception as exc:
            out.stages.append(self._error(RELEVANCE, started, exc))
            return self._review(out, f"gate_error: {RELEVANCE}: {type(exc).__name__}: {exc}")
        out.used(verdict)
        p = verdict.probability
        out.relevant = verdict.label == "entailed" and (p is None or p >= self.relevant_at)
        for index, claim in enumerate(item.claims):
            if by_answer[index]:
                label = verdict.label if verdict.label != "entailed" or out.relevant else "not_found"
                verdicts[index] = self._verdict(
                    claim,
                    repaired.get(index),
                    label,
                    p,
                    RELEVANCE,
                    evidence[index],
                    cached=verdict.cached,
                    detail=f"the evidence answers {verdict.text!r}" if verdict.text else "",
                )
        out.claims = [verdicts[i] for i in sorted(verdicts)]
        scores = {"relevance": p} if p is not None else {}
        copied = f" {verdict.text!r}" if verdict.text and verdict.label != "not_found" else ""
        if not out.relevant:
            why = {
                "not_found": "the cited evidence does not answer the question",
                "contradicted": f"the cited evidence answers{copied}, which the answer does not say",
            }.get(verdict.label, f"p {p:.2f} < {self.relevant_at:.2f}" if p is not None else "not relevant")
            out.stages.append(
                GateStageRecord(name=RELEVANCE, outcome="fail", scores=scores, duration_ms=_ms(started), detail=why)
            )
            out.decision, out.reason = "abstained", f"{RELEVANCE}: {why}"
            return out
        out.stages.append(
            GateStageRecord(
                name=RELEVANCE,
                outcome="pass",
                scores=scores,
                duration_ms=_ms(started),
                detail=f"the cited evidence answers{copied}, as the answer says",
            )
        )
        return out

    def _verdict(
        self,
        claim: Claim,
        repair: Repair | None,
        label: VerdictLabel,
        probability: float | None,
        decided_by: str,
        evidence: Sequence[Sentence],
        *,
        cached: bool,
        detail: str,
    ) -> ClaimVerdict:
        return ClaimVerdict(
            claim=claim.text,
            cited=list(repair.cited if repair else claim.cited),
            judged_against=list(claim.cited),
            repair=repair.detail if repair else None,
            verdict=label,
            probability=probability,
            decided_by=decided_by,
            detail=detail,
            cached=cached,
            evidence=spans(evidence),
        )

    @staticmethod
    def _stage(name: str, outcome: str, started: float, claims: Sequence[ClaimVerdict], detail: str) -> GateStageRecord:
        probabilities = [c.probability for c in claims if c.probability is not None]
        scores = {"entailment_min": min(probabilities)} if probabilities else {}
        return GateStageRecord(
            name=name,
            outcome=outcome,  # type: ignore[arg-type]
            scores=scores,
            duration_ms=_ms(started),
            detail=detail,
        )

    @staticmethod
    def _error(name: str, started: float, exc: Exception) -> GateStageRecord:
        return GateStageRecord(
            name=name, outcome="error", duration_ms=_ms(started), detail=f"{type(exc).__name__}: {exc}"
        )

    @staticmethod
    def _review(out: Verification, reason: str) -> Verification:
        out.decision, out.reason = "review", reason
        return out
