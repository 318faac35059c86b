"""The answer workflow's final gate record: the strict retry (first attempt kept) and what an abstention searched.

Kept apart from :mod:`pipelines.answer` so the record's shape is decided in one small place: when the strict retry
ran, the final record is the retry's with ``retried=True`` and ``first_attempt`` holding the first draft's record
(its scores and stages); an abstention says plainly that the documents do not answer the question and what was
searched (the question, the retrieval modes that produced passages, how many passages the model was shown).
"""

from __future__ import annotations

from typing import Any

from core.types import GateRecord, SearchSummary
from pipelines.answer.names import AnswerStep
from pipelines.workflow.engine import WorkflowRun

NOT_ANSWERED = "the documents do not answer this"


def _items(run: WorkflowRun, step: str, attribute: str) -> list[Any]:
    value = run.outputs.get(step)
    return list(getattr(value, attribute, None) or [])


def searched(run: WorkflowRun, question: str) -> SearchSummary:
    """What the workflow searched for ``question``: the modes that ran and the passages the model was shown."""
    modes: list[str] = []
    for hit in _items(run, AnswerStep.RETRIEVE, "items") + _items(run, AnswerStep.GRAPH_CONTEXT, "chunks"):
        if hit.method not in modes:
            modes.append(hit.method)
    for step, mode in ((AnswerStep.RETRIEVE, "retrieval"), (AnswerStep.GRAPH_CONTEXT, "graph")):
        if step in run.outputs and not any(m == mode or (mode == "retrieval" and m != "graph") for m in modes):
            modes.append(mode)
    shown = _items(run, AnswerStep.ASSEMBLE_STRICT, "passages") or _items(run, AnswerStep.ASSEMBLE, "passages")
    return SearchSummary(query=question, modes=modes, passages=len(shown))


def finalise(gate: GateRecord, run: WorkflowRun, question: str, *, blocked: bool) -> GateRecord:
    """``gate`` with the strict retry recorded and, for an abstention (not a guardrail block), what was searched."""
    first = run.outputs.get(AnswerStep.GATE)
    if AnswerStep.GATE_STRICT in run.outputs and first is not None:
        gate = gate.model_copy(update={"retried": True, "first_attempt": getattr(first, "record", None)})
    if gate.decision == "abstained" and not blocked:
        what = searched(run, question)
        modes = ", ".join(what.modes) or "none"
        detail = f"searched {what.query!r} ({modes}; {what.passages} passage(s) shown to the model)"
        reason = f"{NOT_ANSWERED}: {detail}" + (f"; {gate.reason}" if gate.reason else "")
        gate = gate.model_copy(update={"searched": what, "reason": reason})
    return gate
