"""The gate used when ``settings.gate.enabled`` is false: it releases every answer unscored, and says so."""

from __future__ import annotations

from collections.abc import Sequence

from core.types import GateRecord, GateScores

DISABLED_REASON = "gate disabled by settings"


class DisabledGate:
    """Releases everything with reason ``"gate disabled by settings"`` and no scores (no model is called)."""

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        return GateRecord(decision="released", scores=GateScores(), reason=DISABLED_REASON, duration_ms=0.0)

    async def aevaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        return self.evaluate(question, answer, contexts)
