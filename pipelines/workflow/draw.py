"""Drawings of a declared workflow: Mermaid and Graphviz dot."""

from __future__ import annotations

from pipelines.workflow.model import INPUTS
from pipelines.workflow.spec import StepDecl, WorkflowSpec


def to_mermaid(spec: WorkflowSpec) -> str:
    """A Mermaid flowchart: inputs, steps (with retry/timeout), data edges solid, branch edges dashed."""
    lines = ["flowchart TD"]
    for name in spec.inputs:
        lines.append(f'    in_{name}(["inputs.{name}"])')
    for step in spec.steps:
        lines.append(f'    {step.name}["{_label(step)}"]')
    for step in spec.steps:
        for source in step.sources():
            origin, _, attr = source.partition(".")
            if origin == INPUTS:
                lines.append(f"    in_{attr} --> {step.name}")
    for src, dst, label in spec.edges():
        if label:
            text = label.replace('"', "'")
            lines.append(f'    {src} -.->|"{text}"| {dst}')
        else:
            lines.append(f"    {src} --> {dst}")
    for step in spec.steps:
        if step.fallback:
            lines.append(f'    {step.name} -.->|"on failure"| {step.name}_fallback["{step.fallback}"]')
    return "\n".join(lines) + "\n"


def to_dot(spec: WorkflowSpec) -> str:
    """A Graphviz digraph of the same shape as :func:`to_mermaid`."""
    lines = [f'digraph "{spec.name} v{spec.version}" {{', "    rankdir=TB;"]
    for name in spec.inputs:
        lines.append(f'    "inputs.{name}" [shape=oval];')
    for step in spec.steps:
        lines.append(f'    "{step.name}" [shape=box, label="{_label(step)}"];')
    for step in spec.steps:
        for source in step.sources():
            origin, _, attr = source.partition(".")
            if origin == INPUTS:
                lines.append(f'    "inputs.{attr}" -> "{step.name}";')
    for src, dst, label in spec.edges():
        style = f' [style=dashed, label="{label.replace(chr(34), chr(39))}"]' if label else ""
        lines.append(f'    "{src}" -> "{dst}"{style};')
    for step in spec.steps:
        if step.fallback:
            lines.append(f'    "{step.name}" -> "{step.name}.fallback" [style=dotted, label="on failure"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _label(step: StepDecl) -> str:
    extras = []
    if step.retry.attempts > 1:
        extras.append(f"retry x{step.retry.attempts}")
    if step.timeout_s:
        extras.append(f"timeout {step.timeout_s:g}s")
    return step.name + (f" ({', '.join(extras)})" if extras else "")
