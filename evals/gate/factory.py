"""Pick the answer gate the settings ask for."""

from __future__ import annotations

from core.llm import ModelClient
from core.settings import GateSettings
from evals.gate.base import AnswerGate
from evals.gate.cascade import CascadeGate
from evals.gate.disabled import DisabledGate
from evals.gate.ragas_gate import RagasGate
from retrieval.base import Embedder


def build_gate(settings: GateSettings, client: ModelClient, embedder: Embedder) -> AnswerGate:
    """:class:`~evals.gate.cascade.CascadeGate` (default) or the judge-only :class:`~evals.gate.ragas_gate.RagasGate`
    from ``settings`` when enabled, else :class:`DisabledGate`. The judge uses ``client`` unless the settings name
    another endpoint or model (``judge_base_url``, ``judge_model``)."""
    if not settings.enabled:
        return DisabledGate()
    if settings.judge_base_url or settings.judge_model:
        client = ModelClient(
            base_url=settings.judge_base_url or client.base_url,
            model=settings.judge_model or client.model,
            api_key=client._api_key,
            timeout_s=client.timeout_s,
        )
    if settings.backend == "ragas":
        return RagasGate.from_settings(settings, client, embedder)
    return CascadeGate.from_settings(settings, client, embedder)
