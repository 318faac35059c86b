"""Protocols of the answer gate and of the cheap checks its cascade runs before the LLM judge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from core.types import GateRecord, GateStageOutcome


class AnswerGate(Protocol):
    """Scores a generated answer against its question and contexts and decides whether to release it."""

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord: ...


@dataclass(frozen=True)
class Claim:
    """One answer sentence without its citation markers, and the passage numbers it cites (``1`` = contexts[0])."""

    text: str
    cited: tuple[int, ...] = ()


@dataclass(frozen=True)
class CheckInput:
    """What every cheap check sees: the question, the answer split into claims, and the numbered contexts."""

    question: str
    answer: str
    claims: tuple[Claim, ...]
    contexts: tuple[str, ...]

    def cited_contexts(self, claim: Claim) -> list[str]:
        """The passages ``claim`` cites that exist; all passages when it cites none that exists."""
        chosen = [self.contexts[n - 1] for n in dict.fromkeys(claim.cited) if 1 <= n <= len(self.contexts)]
        return chosen or list(self.contexts)


@dataclass
class CheckResult:
    """A cheap check's verdict: pass, fail or inconclusive (then the judge decides), with scores and a reason."""

    outcome: GateStageOutcome
    scores: dict[str, float] = field(default_factory=dict)
    detail: str = ""


class GateCheck(Protocol):
    """One cheap (model-free or embedding-only) stage of the gate's cascade."""

    name: str

    def check(self, item: CheckInput) -> CheckResult: ...
