"""The judge stages of the cascade: a verdict for every claim against its evidence sentences, then relevance.

Release needs positive evidence: every claim ``entailed`` (with the judge's probability at least ``entailed_at``
where it gives logprobs) and the answer judged to address the question. A claim ``contradicted`` or ``not_found``
abstains the answer, naming the claim; a judge that cannot answer sends it to review (``gate_error``), never to
release. Judging stops at the first claim that fails: the remaining claims are recorded as not judged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.types import ClaimVerdict, EvidenceSpan, GateDecision, GateStageRecord
from evals.gate.base import CheckInput, ClaimJudge
from evals.gate.evidence import SHORT_CLAIM_WORDS, Repair, Sentence, select_evidence, sentences_of

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
        self.relevance = relevance

    def verify(self, item: CheckInput, repairs: Sequence[Repair], answer_text: str) -> Verification:
        out = Verification()
        repaired = {r.claim: r for r in repairs}
        sentences = sentences_of(item.contexts)
        started = time.perf_counter()
        for index, claim in enumerate(item.claims):
            evidence = select_evidence(claim, item.question, sentences, self.evidence_sentences)
            repair = repaired.get(index)
            try:
                verdict = self.judge.entailment(item.question, claim.text, [s.text for s in evidence])
            except Exception as exc:  # a judge that cannot answer must not release the answer
                out.stages.append(self._error(ENTAILMENT, started, exc))
                return self._review(out, f"gate_error: {ENTAILMENT}: {type(exc).__name__}: {exc}")
            label = verdict.label
            weak = label == "entailed" and verdict.probability is not None and verdict.probability < self.entailed_at
            out.claims.append(
                ClaimVerdict(
                    claim=claim.text,
                    cited=list(repair.cited if repair else claim.cited),
                    judged_against=list(claim.cited),
                    repair=repair.detail if repair else None,
                    verdict="not_found" if weak else label,
                    probability=verdict.probability,
                    decided_by=ENTAILMENT,
                    detail=f"p(entailed) {verdict.probability:.2f} < {self.entailed_at:.2f}" if weak else "",
                    cached=verdict.cached,
                    evidence=spans(evidence),
                )
            )
            if label != "entailed" or weak:
                shown = out.claims[-1].verdict.replace("_", " ")
                rest = len(item.claims) - index - 1
                detail = f"claim {index + 1} {shown}: {claim.text[:120]!r}" + (
                    f"; {rest} later claim(s) not judged" if rest else ""
                )
                out.stages.append(self._stage(ENTAILMENT, "fail", started, out.claims, detail))
                out.stages.append(GateStageRecord(name=RELEVANCE, outcome="skipped", detail=f"{ENTAILMENT} failed"))
                out.decision, out.reason = "abstained", f"{ENTAILMENT}: {detail}"
                return out
        entailed = f"{len(out.claims)} claim(s) entailed by their evidence"
        out.stages.append(self._stage(ENTAILMENT, "pass", started, out.claims, entailed))
        if not self.relevance:
            return out
        if all(len(c.text.split()) < SHORT_CLAIM_WORDS for c in item.claims):
            # A short answer (an entity alone) was judged together with its question: that verdict already says
            # the evidence gives it as the answer to this question.
            out.relevant = True
            out.stages.append(
                GateStageRecord(name=RELEVANCE, outcome="skipped", detail="a short answer, judged with its question")
            )
            return out
        started = time.perf_counter()
        try:
            verdict = self.judge.relevance(item.question, answer_text)
        except Exception as exc:
            out.stages.append(self._error(RELEVANCE, started, exc))
            return self._review(out, f"gate_error: {RELEVANCE}: {type(exc).__name__}: {exc}")
        p = verdict.probability
        out.relevant = verdict.label == "entailed" and (p is None or p >= self.relevant_at)
        scores = {"relevance": p} if p is not None else {}
        if not out.relevant:
            detail = "the answer does not address the question" + (f" (p {p:.2f})" if p is not None else "")
            out.stages.append(
                GateStageRecord(name=RELEVANCE, outcome="fail", scores=scores, duration_ms=_ms(started), detail=detail)
            )
            out.decision, out.reason = "abstained", f"{RELEVANCE}: {detail}"
            return out
        out.stages.append(
            GateStageRecord(
                name=RELEVANCE,
                outcome="pass",
                scores=scores,
                duration_ms=_ms(started),
                detail=f"answers the question with {verdict.text!r}" if verdict.text else "answers the question",
            )
        )
        return out

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
