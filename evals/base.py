"""Protocol of the answer gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from core.types import GateRecord


class AnswerGate(Protocol):
    """Scores a generated answer against its question and contexts and decides whether to release it."""

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord: ...
