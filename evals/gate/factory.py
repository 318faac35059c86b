"""Pick the answer gate the settings ask for."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.llm import ModelClient
from core.settings import GateSettings
from evals.gate.base import AnswerGate, JudgeFactory, VerdictModel, require_judge
from evals.gate.cascade import CascadeGate
from evals.gate.disabled import DisabledGate
from evals.gate.traced import TracedGate
from retrieval.base import Embedder

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


def build_gate(
    settings: GateSettings,
    client: ModelClient,
    embedder: Embedder,
    tracer: Tracer | None = None,
    *,
    judge_factory: JudgeFactory | None = None,
    guard: Callable[[ModelClient], VerdictModel] | None = None,
) -> AnswerGate:
    """:class:`~evals.gate.cascade.CascadeGate` (default) or the judge-only :class:`~evals.gate.ragas_gate.RagasGate`
    from ``settings`` when enabled, else :class:`DisabledGate`. The judge uses ``client`` unless the settings name
    another endpoint or model (``judge_base_url``, ``judge_model``), with the gate's timeout. A Ragas judge (the
    cascade's ``judge`` stage, or ``backend="ragas"``) is built by ``judge_factory``. With a ``tracer``, the gate is
    a span with a child per stage (:class:`~evals.gate.traced.TracedGate`). ``guard`` wraps the judge's client for
    the claim verdicts (the API: behind the endpoint's circuit breaker, counted in ``/metrics`` as role ``judge``)."""
    gate = _build(settings, client, embedder, judge_factory, guard)
    return TracedGate(gate, tracer) if tracer is not None else gate


def _build(
    settings: GateSettings,
    client: ModelClient,
    embedder: Embedder,
    judge_factory: JudgeFactory | None,
    guard: Callable[[ModelClient], VerdictModel] | None,
) -> AnswerGate:
    if not settings.enabled:
        return DisabledGate()
    # The judge's own client: its endpoint and model when the settings name them, and the gate's timeout (each
    # verdict is one short call: a judge that hangs must not hold the answer for the answer model's timeout).
    client = ModelClient(
        base_url=settings.judge_base_url or client.base_url,
        model=settings.judge_model or client.model,
        api_key=client._api_key,
        timeout_s=min(client.timeout_s, settings.timeout_s),
        traced=client.traced,  # the judge's calls are spans like the answer model's
    )
    if settings.backend == "ragas":
        return require_judge(judge_factory)(settings, client, embedder)
    verdicts = guard(client) if guard is not None else None
    return CascadeGate.from_settings(settings, client, embedder, judge_factory, verdicts=verdicts)
