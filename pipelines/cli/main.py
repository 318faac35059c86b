"""The ``kgrag`` command line: one Typer app over the commands of :data:`COMMANDS`, each imported when it runs.

The table is the one place that names each command's module. ``kgrag --help`` lists the table (names and one-line
help) and imports no command module; ``kgrag prompts list`` imports ``pipelines.cli.prompts`` and what it needs,
nothing of the other commands (``tests/pipelines/cli/test_main.py`` checks the table against the commands).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

from core.console import clear_errors


@dataclass(frozen=True)
class CommandHome:
    """Where ``kgrag NAME`` lives: ``module.attribute``, a Typer app (a command group) or a function (one command,
    its kgrag errors made one red line); ``help`` is what ``kgrag --help`` shows without importing it (the first
    paragraph of the command's own help)."""

    module: str
    attribute: str
    help: str


#: Every command, in the order ``kgrag --help`` lists them.
COMMANDS: MappingProxyType[str, CommandHome] = MappingProxyType(
    {
        "ask": CommandHome(
            "pipelines.cli.answer", "ask", "Answer one question from the store, with citations and provenance."
        ),
        "serve": CommandHome(
            "pipelines.cli.answer", "serve", "Serve the HTTP API (POST /v1/answer, GET /healthz, OpenAPI at /docs)."
        ),
        "ingest": CommandHome(
            "pipelines.cli.ingest",
            "ingest",
            "Ingest documents incrementally: only new or changed chunks are embedded and extracted; a new snapshot is "
            "published atomically when anything changed (the embedding model is loaded only when there is something "
            "to embed).",
        ),
        "delete": CommandHome(
            "pipelines.cli.ingest",
            "delete",
            "Delete documents with their chunks, vectors, BM25 entries and every graph fact only they support.",
        ),
        "bench": CommandHome(
            "pipelines.cli.bench",
            "bench",
            "Benchmark retrieval modes on a dataset: recall@2/5, all-gold@8 with 95% CIs, latency, ingestion time.",
        ),
        "graph": CommandHome("pipelines.cli.graph", "app", "Export the embedded knowledge graph, or push it to Neo4j."),
        "model": CommandHome("pipelines.cli.model", "app", "Prepare, serve and check the local model."),
        "workflow": CommandHome(
            "pipelines.cli.workflow",
            "app",
            "Show and draw the declared workflows (pipelines/workflow/definitions/*.yaml).",
        ),
        "prompts": CommandHome(
            "pipelines.cli.prompts", "app", "List, compare, test, promote and roll back prompt versions."
        ),
        "report": CommandHome(
            "pipelines.cli.report",
            "report",
            "KPIs of the answers (and ingestion runs) of a period: decision rates, latency by step, tokens, review "
            "turnaround, the most often abstained questions and drift.",
        ),
        "api": CommandHome("pipelines.cli.api_keys", "app", "HTTP API helpers: create API keys for KGRAG_API__KEYS."),
    }
)


def load_command(name: str) -> Any:
    """The command ``kgrag NAME`` runs, built from its module (imported now) exactly as if registered up front."""
    home = COMMANDS[name]
    target = getattr(importlib.import_module(home.module), home.attribute)
    holder = typer.Typer(add_completion=False)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=name)
        return typer.main.get_command(holder).commands[name]  # type: ignore[attr-defined]
    holder.command(name)(clear_errors(target))
    return typer.main.get_command(holder)


class LazyCommands(TyperGroup):
    """The ``kgrag`` group: lists every command of :data:`COMMANDS` (help, "did you mean") through a placeholder
    that carries its one-line help, and imports a command's module only when the command is resolved to run."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.placeholders = {name: TyperCommand(name=name, help=home.help) for name, home in COMMANDS.items()}
        self.commands.update(self.placeholders)

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and command is self.placeholders.get(name):
            command = self.commands[name] = load_command(name)
        return name, command, rest


app = typer.Typer(
    cls=LazyCommands,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="kgrag: answers from your documents, grounded in a knowledge graph, with provenance.",
)


@app.callback()
def _options() -> None:
    # kgrag has no options of its own; the callback makes the app a group while no command is registered up front.
    pass


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
