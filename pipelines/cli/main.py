"""The ``kgrag`` command line: one Typer app, every command group imported here statically and registered once."""

from __future__ import annotations

import typer

from core.console import clear_errors
from pipelines.cli import answer, api_keys, bench, graph, ingest, model, prompts, report, workflow

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="kgrag: answers from your documents, grounded in a knowledge graph, with provenance.",
)
answer.register(app)
ingest.register(app)
graph.register(app)
app.add_typer(model.app, name="model")
app.command("bench")(clear_errors(bench.bench))
app.command("report")(clear_errors(report.report))
app.add_typer(workflow.app, name="workflow")
app.add_typer(prompts.app, name="prompts")
app.add_typer(api_keys.app, name="api")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
