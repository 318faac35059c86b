"""Pick the answer gate the settings ask for."""

from __future__ import annotations

from core.llm import ModelClient
from core.settings import GateSettings
from evals.base import AnswerGate
from evals.disabled_gate import DisabledGate
from evals.ragas_gate import RagasGate
from retrieval.base import Embedder


def build_gate(settings: GateSettings, client: ModelClient, embedder: Embedder) -> AnswerGate:
    """:class:`~evals.ragas_gate.RagasGate` from ``settings`` when enabled, else :class:`DisabledGate`."""
    if not settings.enabled:
        return DisabledGate()
    return RagasGate.from_settings(settings, client, embedder)
