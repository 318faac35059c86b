"""The answer workflow's step names: one typed enum, checked against ``definitions/answer.yaml`` when it is built.

Components are keyed by the name of the step they first serve (``generate_strict`` reuses ``generate``'s component).
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import WorkflowBuildError
from pipelines.workflow.spec import WorkflowSpec


class AnswerStep(StrEnum):
    """The steps of the answer workflow, as named in its YAML declaration."""

    GUARD_INPUT = "guard_input"
    RETRIEVE = "retrieve"
    GRAPH_CONTEXT = "graph_context"
    ASSEMBLE = "assemble"
    GENERATE = "generate"
    GATE = "gate"
    ASSEMBLE_STRICT = "assemble_strict"
    GENERATE_STRICT = "generate_strict"
    GATE_STRICT = "gate_strict"


#: The strict retry's steps: dropped from the declaration when the retry is off.
STRICT_STEPS = (AnswerStep.ASSEMBLE_STRICT, AnswerStep.GENERATE_STRICT, AnswerStep.GATE_STRICT)


def check_declared(spec: WorkflowSpec, *, strict_retry: bool) -> None:
    """Fail at build time, naming the step, when ``spec`` declares other steps than :class:`AnswerStep`."""
    expected = {s.value for s in AnswerStep} - (set() if strict_retry else {s.value for s in STRICT_STEPS})
    declared = {step.name for step in spec.steps}
    unknown, missing = sorted(declared - expected), sorted(expected - declared)
    if unknown or missing:
        parts = [f"unknown step(s) {', '.join(unknown)}"] if unknown else []
        parts += [f"missing step(s) {', '.join(missing)}"] if missing else []
        raise WorkflowBuildError(
            f"workflow {spec.name!r} does not declare the answer workflow's steps: {'; '.join(parts)}",
            hint="the step names of pipelines/workflow/definitions/answer.yaml must be those of "
            "pipelines.answer.names.AnswerStep; rename both together",
        )
