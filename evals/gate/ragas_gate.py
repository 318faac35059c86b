"""The answer gate: score every generated answer with Ragas faithfulness and answer relevancy before release.

Cheap checks run first and need no model: an abstention, an empty answer, or an answer without contexts is
never sent to the judge. Otherwise the local model judges the answer (citation markers such as ``[1]``
stripped) with Ragas' collections metrics. Both scores must reach their thresholds for the answer to be
released; a judge that fails (error, timeout, NaN score, unreachable server) sends the answer to ``review``,
never to ``released``.

Importing this module imports Ragas (seconds): the composition root names it as ``lazy.RagasGate`` and hands the
gate's factory a :class:`~evals.gate.base.JudgeFactory` that builds it, so only a gate with a judge loads Ragas.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import openai
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # before Ragas is imported: it reads the switch then

from ragas.llms.base import llm_factory  # noqa: E402
from ragas.metrics.collections import AnswerRelevancy, Faithfulness  # noqa: E402

from core.errors import ConfigurationError  # noqa: E402
from core.llm import ModelClient  # noqa: E402
from core.settings import GateSettings  # noqa: E402
from core.types import GateRecord, GateScores, GateStageOutcome, GateStageRecord  # noqa: E402
from evals.gate.checks.claims import strip_citations  # noqa: E402
from evals.gate.ragas_embeddings import RagasEmbedderAdapter  # noqa: E402
from prompts.abstention import is_abstention  # noqa: E402
from retrieval.base import Embedder  # noqa: E402

__all__ = ["RagasGate"]


class _NaNScore(Exception):
    """A metric returned NaN (for example no statements could be extracted from the answer)."""


@dataclass
class _MetricOutcome:
    score: float | None = None
    error: str | None = None
    unreachable: bool = False


class RagasGate:
    """Ragas faithfulness + answer relevancy judged by ``client``'s model, with release thresholds.

    ``max_tokens`` caps each judge completion (Ragas' default 1024; the NLI step writes a reason per statement,
    so the answer client's small ``max_tokens`` is not used). The judge runs at temperature 0.
    """

    def __init__(
        self,
        client: ModelClient,
        embedder: Embedder,
        faithfulness_threshold: float = 0.5,
        answer_relevancy_threshold: float = 0.3,
        answer_relevancy_strictness: int = 1,
        timeout_s: float = 600,
        retries: int = 1,
        *,
        max_tokens: int = 1024,
    ) -> None:
        for label, value in (
            ("faithfulness_threshold", faithfulness_threshold),
            ("answer_relevancy_threshold", answer_relevancy_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"gate {label} must be between 0 and 1, got {value}")
        if answer_relevancy_strictness < 1:
            raise ConfigurationError(
                f"gate answer_relevancy_strictness must be at least 1, got {answer_relevancy_strictness}"
            )
        if timeout_s <= 0:
            raise ConfigurationError(f"gate timeout_s must be positive, got {timeout_s}")
        if retries < 0:
            raise ConfigurationError(f"gate retries must be 0 or more, got {retries}")
        if max_tokens < 1:
            raise ConfigurationError(f"gate max_tokens must be positive, got {max_tokens}")

        self.client = client
        self.embeddings = RagasEmbedderAdapter(embedder)
        self.faithfulness_threshold = faithfulness_threshold
        self.answer_relevancy_threshold = answer_relevancy_threshold
        self.answer_relevancy_strictness = answer_relevancy_strictness
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_tokens = max_tokens

    @classmethod
    def from_settings(cls, settings: GateSettings, client: ModelClient, embedder: Embedder) -> RagasGate:
        """Build from ``settings.gate``."""
        return cls(
            client,
            embedder,
            faithfulness_threshold=settings.faithfulness_threshold,
            answer_relevancy_threshold=settings.answer_relevancy_threshold,
            answer_relevancy_strictness=settings.answer_relevancy_strictness,
            timeout_s=settings.timeout_s,
            retries=settings.retries,
        )

    # ----- public API -----

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        """Score ``answer`` and decide; safe to call from inside a running event loop (it then uses a thread)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.aevaluate(question, answer, contexts))
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, self.aevaluate(question, answer, contexts)).result()

    async def aevaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        """The async form of :meth:`evaluate`."""
        started = time.perf_counter()
        record = self._cheap_check(question, answer, contexts)
        name = "precheck"
        if record is None:
            name = "judge"
            record = await self._judge(question, strip_citations(answer), [c for c in contexts if c.strip()])
        elapsed = (time.perf_counter() - started) * 1000.0
        outcome: GateStageOutcome = {"released": "pass", "abstained": "fail"}.get(record.decision, "error")  # type: ignore[assignment]
        stage = GateStageRecord(
            name=name,
            outcome=outcome,
            scores=record.scores.model_dump(exclude_none=True),
            duration_ms=elapsed,
            detail=record.reason,
        )
        return record.model_copy(update={"duration_ms": elapsed, "stages": [stage]})

    # ----- cheap checks -----

    def _cheap_check(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord | None:
        if is_abstention(answer):
            return GateRecord(decision="abstained", reason="model abstained")
        if not answer.strip():
            return GateRecord(decision="abstained", reason="empty answer")
        if not strip_citations(answer):
            return GateRecord(decision="abstained", reason="answer holds only citation markers")
        if not question.strip():
            return GateRecord(decision="abstained", reason="empty question")
        if not any(c.strip() for c in contexts):
            return GateRecord(decision="abstained", reason="no contexts to check the answer against")
        return None

    # ----- the judge -----

    async def _judge(self, question: str, answer: str, contexts: list[str]) -> GateRecord:
        # A fresh async client per evaluation: an AsyncOpenAI client's connection pool is bound to the event loop
        # it was first used on, and every evaluate() runs its own loop.
        async_client = self.client.async_client()
        try:
            llm = llm_factory(
                self.client.model,
                client=async_client,
                temperature=0.0,
                top_p=1.0,
                max_tokens=self.max_tokens,
            )
            faithfulness = Faithfulness(llm=llm)
            relevancy = AnswerRelevancy(
                llm=llm, embeddings=self.embeddings, strictness=self.answer_relevancy_strictness
            )
            faith = await self._run_metric(
                lambda: faithfulness.ascore(user_input=question, response=answer, retrieved_contexts=contexts)
            )
            if faith.unreachable:
                relevance = _MetricOutcome(error="not run: the judge is unreachable")
            else:
                relevance = await self._run_metric(lambda: relevancy.ascore(user_input=question, response=answer))
        finally:
            await async_client.close()
        return self._decide(faith, relevance)

    async def _run_metric(self, call: Callable[[], Awaitable[Any]]) -> _MetricOutcome:
        attempts = self.retries + 1
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            retry=retry_if_exception_type(Exception),
            reraise=True,
        )
        value = math.nan
        try:
            async for attempt in retrying:
                with attempt:
                    result = await asyncio.wait_for(call(), timeout=self.timeout_s)
                    value = float(result.value)
                    if math.isnan(value):
                        raise _NaNScore("score is NaN")
            return _MetricOutcome(score=value)
        except _NaNScore:
            return _MetricOutcome(error=f"score is NaN after {attempts} attempt(s)")
        except TimeoutError:
            return _MetricOutcome(error=f"timed out after {self.timeout_s:g}s ({attempts} attempt(s))")
        except Exception as exc:
            return self._failure(exc, attempts)

    def _failure(self, exc: BaseException, attempts: int) -> _MetricOutcome:
        chain = list(_exception_chain(exc))
        for item in chain:
            if isinstance(item, openai.APITimeoutError):
                return _MetricOutcome(error=f"judge request timed out ({attempts} attempt(s))")
        for item in chain:
            if isinstance(item, openai.APIConnectionError):
                return _MetricOutcome(error=str(self.client.unavailable(type(item).__name__)), unreachable=True)
        for item in chain:
            if isinstance(item, openai.APIStatusError):
                return _MetricOutcome(
                    error=f"model server at {self.client.base_url} answered HTTP {item.status_code}: "
                    f"{_short(item.message)} ({attempts} attempt(s))"
                )
        return _MetricOutcome(error=f"{type(exc).__name__}: {_short(str(exc))} ({attempts} attempt(s))")

    def _decide(self, faith: _MetricOutcome, relevance: _MetricOutcome) -> GateRecord:
        scores = GateScores(faithfulness=faith.score, answer_relevancy=relevance.score)
        checks = (
            ("faithfulness", faith, self.faithfulness_threshold),
            ("answer_relevancy", relevance, self.answer_relevancy_threshold),
        )
        below = [
            f"{name} {outcome.score:.2f} < threshold {threshold:.2f}"
            for name, outcome, threshold in checks
            if outcome.score is not None and outcome.score < threshold
        ]
        errors = [f"{name}: {outcome.error}" for name, outcome, _ in checks if outcome.error is not None]
        if faith.unreachable:
            # One line is enough: the same server would serve both metrics.
            return GateRecord(decision="review", scores=scores, reason=f"gate_error: {faith.error}")
        if below:
            reason = "; ".join(below)
            if errors:
                reason += "; gate_error: " + "; ".join(errors)
            return GateRecord(decision="abstained", scores=scores, reason=reason)
        if errors:
            return GateRecord(decision="review", scores=scores, reason="gate_error: " + "; ".join(errors))
        passed = "; ".join(f"{name} {outcome.score:.2f} >= {threshold:.2f}" for name, outcome, threshold in checks)
        return GateRecord(decision="released", scores=scores, reason=passed)


def _exception_chain(exc: BaseException) -> Sequence[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen):
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
