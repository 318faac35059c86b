"""The gate as a span: ``gate`` around any :class:`~evals.gate.base.AnswerGate`, with a child span per cascade stage.

A stage's span is made from its :class:`~core.types.GateStageRecord` once the gate has decided (the stages do not
know about tracing): named ``gate_stage <name>``, with its outcome, detail and scores as attributes and its recorded
duration, the stages laid end to end from the gate's start in the order they ran. The judge's model calls, made
while the gate runs, are children of the ``gate`` span.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from core.types import GateRecord
from evals.gate.base import AnswerGate

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


class TracedGate:
    """Runs ``inner`` inside a ``gate`` span on ``tracer`` and records each stage of its decision as a child span."""

    def __init__(self, inner: AnswerGate, tracer: Tracer) -> None:
        self.inner = inner
        self.tracer = tracer

    def evaluate(self, question: str, answer: str, contexts: Sequence[str]) -> GateRecord:
        started = time.time_ns()
        attributes = {"kgrag.gate.contexts": len(contexts)}
        with self.tracer.start_as_current_span("gate", start_time=started, attributes=attributes) as span:
            record = self.inner.evaluate(question, answer, contexts)
            if not span.is_recording():
                return record
            span.set_attributes(
                {
                    "kgrag.gate.decision": record.decision,
                    "kgrag.gate.reason": record.reason,
                    "kgrag.gate.duration_ms": record.duration_ms,
                    **{f"kgrag.gate.score.{k}": v for k, v in record.scores.model_dump(exclude_none=True).items()},
                }
            )
            at = started
            for stage in record.stages:
                took = int(stage.duration_ms * 1_000_000)
                child = self.tracer.start_span(
                    f"gate_stage {stage.name}",
                    start_time=at,
                    attributes={
                        "kgrag.gate.stage": stage.name,
                        "kgrag.gate.stage.outcome": stage.outcome,
                        "kgrag.gate.stage.detail": stage.detail,
                        **{f"kgrag.gate.stage.score.{k}": v for k, v in stage.scores.items()},
                    },
                )
                child.end(end_time=at + took)
                at += took
        return record
