"""Protocols of the answer gate and of the cheap checks its cascade runs before the LLM judge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from core.errors import ConfigurationError
from core.llm import ChatResult
from core.types import GateRecord, GateStageOutcome, VerdictLabel

if TYPE_CHECKING:
    from core.llm import ModelClient
    from core.settings import GateSettings
    from retrieval.base import Embedder


class AnswerGate(Protocol):
    """Scores a generated answer against its question and contexts and decides whether to release it."""

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord: ...


class JudgeFactory(Protocol):
    """Builds the Ragas judge: the cascade's ``judge`` stage, or the whole gate with ``backend="ragas"``.

    The composition root passes one (``pipelines.compose.answer.ragas_judge``, through ``lazy.RagasGate``), so the
    gate's own modules never import Ragas (seconds of start-up): only building a judge does."""

    def __call__(self, settings: GateSettings, client: ModelClient, embedder: Embedder) -> AnswerGate: ...


def require_judge(factory: JudgeFactory | None) -> JudgeFactory:
    """``factory``; ``None`` (a gate built without the composition root's Ragas judge) is a ConfigurationError."""
    if factory is None:
        raise ConfigurationError(
            "the gate's Ragas judge was asked for, but this gate was built without a judge factory",
            hint="build the gate through pipelines.compose (kgrag ask and the API do), or drop the judge stage",
        )
    return factory


#: Claims with fewer words than this are short: read with the question they answer.
SHORT_CLAIM_WORDS = 6


@dataclass(frozen=True)
class Claim:
    """One answer sentence without its citation markers, and the passage numbers it cites (``1`` = contexts[0])."""

    text: str
    cited: tuple[int, ...] = ()

    @property
    def short(self) -> bool:
        """An entity alone (fewer than ``SHORT_CLAIM_WORDS`` words): it means nothing without its question."""
        return len(self.text.split()) < SHORT_CLAIM_WORDS


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


class VerdictModel(Protocol):
    """The judge's endpoint: a chat model that can constrain its output by a JSON schema and return logprobs
    (:class:`core.llm.ModelClient` on any OpenAI-compatible server)."""

    @property
    def model(self) -> str:
        """The judge model's name (part of every cached verdict's key)."""
        ...

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        logprobs: int | None = None,
    ) -> ChatResult: ...


@dataclass(frozen=True)
class Verdict:
    """A judge's verdict: its label, the probability the judge gave the releasing label (``entailed``, or ``yes``
    for relevance; None without logprobs), and whether it came from the cache."""

    label: VerdictLabel
    probability: float | None = None
    cached: bool = False
    #: What the judge wrote besides the label (relevance: the words of the evidence that answer the question).
    text: str | None = None
    #: Model tokens the verdict's call(s) used, retries included; 0 for a cached verdict.
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ClaimJudge(Protocol):
    """Judges one claim against its evidence sentences, and whether an answer addresses its question."""

    @property
    def version(self) -> str:
        """The judge's prompt version (part of every cached verdict's key and of the provenance)."""
        ...

    def entailment(self, question: str, claim: str, evidence: Sequence[str]) -> Verdict: ...

    def relevance(self, question: str, answer: str, evidence: Sequence[str]) -> Verdict:
        """The question-answer verdict: the judge answers ``question`` from ``evidence`` alone (``text``: the words
        it copied); ``entailed`` when the answer says them, ``contradicted`` when the evidence answers something the
        answer does not say, ``not_found`` when the evidence does not answer the question."""
        ...
