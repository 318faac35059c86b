"""``kgrag workflow list|show|graph``: the declared workflows, their steps, edges and branches."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.console import clear_errors, console
from pipelines.workflow.draw import to_dot, to_mermaid
from pipelines.workflow.spec import find_workflow, list_workflows

app = typer.Typer(
    no_args_is_help=True, help="Show and draw the declared workflows (pipelines/workflow/definitions/*.yaml)."
)
DirOption = Annotated[
    Path | None, typer.Option("--dir", help="Folder of workflow declarations (default: the packaged ones).")
]


class GraphFormat(StrEnum):
    """Output formats of ``kgrag workflow graph``."""

    mermaid = "mermaid"
    dot = "dot"


@app.command("list")
@clear_errors
def list_command(directory: DirOption = None) -> None:
    """List the declared workflows."""
    table = Table("name", "version", "steps", "description")
    for spec in list_workflows(directory):
        table.add_row(spec.name, spec.version, str(len(spec.steps)), escape(spec.description))
    console().print(table)


@app.command("show")
@clear_errors
def show(name: Annotated[str, typer.Argument(help="Workflow name, e.g. answer.")], directory: DirOption = None) -> None:
    """Print a workflow's steps (bindings, branch conditions, retries, timeouts, fallbacks) and its edges."""
    spec = find_workflow(name, directory)
    out = Console(highlight=False, width=200)
    out.print(f"[bold]{spec.name}[/] version {spec.version}")
    if spec.description:
        out.print(spec.description, markup=False)
    out.print("inputs: " + ", ".join(f"{k}: {v}" for k, v in spec.inputs.items()))
    table = Table("step", "component", "inputs", "when", "retry", "timeout", "fallback")
    for step in spec.steps:
        binds = "\n".join(f"{k} <- {v if isinstance(v, str) else ' | '.join(v)}" for k, v in step.bind.items())
        table.add_row(
            step.name,
            step.component,
            binds,
            escape(step.when.describe()) if step.when else "",
            f"x{step.retry.attempts}" + (f" wait {step.retry.wait_s:g}s" if step.retry.wait_s else ""),
            f"{step.timeout_s:g}s" if step.timeout_s else "",
            step.fallback or "",
        )
    out.print(table)
    out.print("edges:")
    for src, dst, label in spec.edges():
        out.print(f"  {src} -> {dst}" + (f"  [{label}]" if label else ""), markup=False)


@app.command("graph")
@clear_errors
def graph(
    name: Annotated[str, typer.Argument(help="Workflow name, e.g. answer.")],
    fmt: Annotated[GraphFormat, typer.Option("--format", help="mermaid or dot.")] = GraphFormat.mermaid,
    directory: DirOption = None,
) -> None:
    """Draw a workflow as a Mermaid flowchart or a Graphviz digraph (printed to stdout)."""
    spec = find_workflow(name, directory)
    typer.echo(to_mermaid(spec) if fmt == GraphFormat.mermaid else to_dot(spec), nl=False)
