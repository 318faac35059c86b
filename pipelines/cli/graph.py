"""``kgrag graph export`` and ``kgrag graph push``: take an embedded graph out, or up into a Neo4j-compatible database.

``push`` copies the store's embedded (networkx) graph into a Bolt database, so a team can start embedded and move
up without re-ingesting. Tested against ArcadeDB's Bolt server (Neo4j-compatible), not against Neo4j.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from core.console import clear_errors
from core.errors import InputError, StoreNotFoundError
from core.settings import load_settings
from pipelines.compose import lazy
from pipelines.store import snapshots
from pipelines.store.layout import GRAPH

if TYPE_CHECKING:
    from kg.networkx_store import NetworkxGraphStore

app = typer.Typer(no_args_is_help=True, help="Export the embedded knowledge graph, or push it to Neo4j.")

ExportFormat = Literal["graphml", "cypher", "json"]


def embedded_graph(store: Path | None) -> NetworkxGraphStore:
    """The published embedded graph of a store directory (default: KGRAG_STORE_DIR)."""
    root = store or load_settings().store_dir
    directory = snapshots.published_dir(root)
    if directory is None or not (directory / GRAPH).is_file():
        raise StoreNotFoundError(
            f"no embedded graph in store {root}", hint=f"ingest documents first: `kgrag ingest data/ --store {root}`"
        )
    return lazy.NetworkxGraphStore(directory / GRAPH)


@app.command("export")
@clear_errors
def export(
    format: Annotated[str, typer.Option("--format", "-f", help="graphml, cypher or json.")] = "json",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: standard output; not graphml).")
    ] = None,
    store: Annotated[Path | None, typer.Option("--store", help="Store directory (default: KGRAG_STORE_DIR).")] = None,
) -> None:
    """Write the store's embedded graph as GraphML, Cypher statements or JSON rows."""
    if format not in ("graphml", "cypher", "json"):
        raise InputError(f"unknown export format {format!r}", hint="use --format graphml, cypher or json")
    if format == "graphml" and output is None:
        raise InputError("GraphML export needs a file", hint="add --output graph.graphml")
    graph = embedded_graph(store)
    if format == "graphml":
        assert output is not None
        lazy.write_graphml(graph, output)
    else:
        text = lazy.to_json(lazy.graph_rows(graph)) if format == "json" else lazy.to_cypher(lazy.graph_rows(graph))
        if output is None:
            sys.stdout.write(text)
        else:
            output.write_text(text, encoding="utf-8")
    if output is not None:
        counts = graph.counts()
        Console(stderr=True).print(
            f"wrote {output} ({format}): {counts['entities']} entities, {counts['facts']} facts, "
            f"{counts['chunks']} chunks, {counts['documents']} documents"
        )


@app.command("push")
@clear_errors
def push_command(
    to: Annotated[str, typer.Option("--to", help="Bolt URI of the target, e.g. bolt://127.0.0.1:7687.")],
    store: Annotated[Path | None, typer.Option("--store", help="Store directory (default: KGRAG_STORE_DIR).")] = None,
    user: Annotated[str | None, typer.Option("--user", help="Default: KGRAG_GRAPH__USER.")] = None,
    database: Annotated[str | None, typer.Option("--database", help="Default: KGRAG_GRAPH__DATABASE.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per UNWIND batch.")] = 1000,
) -> None:
    """Copy the store's embedded graph into a Neo4j-compatible database (password: KGRAG_GRAPH__PASSWORD)."""
    settings = load_settings().graph
    graph = embedded_graph(store)
    rows = lazy.graph_rows(graph)
    target = lazy.Neo4jGraphStore(
        to,
        user or settings.user,
        settings.password.get_secret_value(),
        database or settings.database,
        batch_size=batch_size,
    )
    started = time.perf_counter()
    with target:
        target.dialect  # noqa: B018 -- connect (and fail with the fix) before drawing progress bars
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=Console(stderr=True)) as progress:
            tasks: dict[str, TaskID] = {
                kind: progress.add_task(kind, total=count) for kind, count in rows.counts().items()
            }
            lazy.push(rows, target, progress=lambda kind, n: progress.advance(tasks[kind], n))
        counts = target.counts()
    Console(stderr=True).print(
        f"pushed to {to} ({target.dialect.name}) in {time.perf_counter() - started:.1f}s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
