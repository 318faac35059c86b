"""``kgrag ingest`` (incremental, ``--sync``) and ``kgrag delete``: the nightly re-indexing commands.

Exit codes: 0 success, 3 partial success (files skipped or extractions failed), 1 failure (nothing ingested, the
store is locked by another run, or an error), 2 bad input. The run report is printed (``--json``) or summarised,
and saved in the store under ``reports/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from core.console import EXIT_FAILURE, EXIT_PARTIAL, console
from core.errors import InputError
from pipelines.cli.common import RichProgress, StoreOption, settings_for
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import deferred_embedder
from pipelines.compose.stores import open_store
from pipelines.compose.tracing import tracing_for
from pipelines.ingest.report import IngestReport

JsonOption = Annotated[bool, typer.Option("--json", help="Print the run report as JSON.")]


def _finish(report: IngestReport, json_out: bool, *, fail_if_empty: bool) -> None:
    if json_out:
        print(report.model_dump_json(indent=2))
    else:
        out = console()
        for line in report.summary_lines():
            out.print(line)
    if fail_if_empty and report.documents_ingested == 0 and report.documents_unchanged == 0:
        raise typer.Exit(EXIT_FAILURE)
    if report.status == "partial":
        raise typer.Exit(EXIT_PARTIAL)


def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders: txt, md, html, pdf, jsonl (id/title/text).")],
    store: StoreOption = None,
    extractor: Annotated[str | None, typer.Option(help="Entity extractor: offline (default) or llm.")] = None,
    sync: Annotated[
        bool, typer.Option("--sync", help="Also delete stored documents that are no longer in PATHS.")
    ] = False,
    json_out: JsonOption = False,
    engine: Annotated[
        str | None,
        typer.Option(
            help="Where parsing, chunking and embedding run: local (default, this process) or ray (Ray Data; joins "
            "RAY_ADDRESS if set, else starts a local instance on 127.0.0.1)."
        ),
    ] = None,
) -> None:
    """Ingest documents incrementally: only new or changed chunks are embedded and extracted; a new snapshot is
    published atomically when anything changed (the embedding model is loaded only when there is something to
    embed)."""
    settings = settings_for(store)
    if extractor is not None:
        if extractor not in ("offline", "llm"):
            raise InputError(f"unknown extractor {extractor!r}", hint="use --extractor offline or --extractor llm")
        settings = settings.model_copy(
            update={"extraction": settings.extraction.model_copy(update={"extractor": extractor})}
        )
    if engine is not None:
        if engine not in ("local", "ray"):
            raise InputError(f"unknown engine {engine!r}", hint="use --engine local or --engine ray")
        settings = settings.model_copy(update={"ingest": settings.ingest.model_copy(update={"engine": engine})})
    err = console(stderr=True)
    embedder = deferred_embedder(settings)
    knowledge = open_store(settings, embedder, create=True)
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with tracing_for(settings) as tracing, Progress(*columns, console=err, transient=json_out) as progress:
        ingestor = build_ingestor(settings, knowledge, embedder, RichProgress(progress), tracing)
        report = ingestor.ingest(paths, sync=sync)
    _finish(report, json_out, fail_if_empty=True)


def delete(
    document_ids: Annotated[list[str], typer.Argument(help="Ids of the documents to delete.")],
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Delete documents with their chunks, vectors, BM25 entries and every graph fact only they support."""
    settings = settings_for(store)
    embedder = deferred_embedder(settings)  # a delete embeds nothing: the model is never loaded
    knowledge = open_store(settings, embedder, create=False)
    with tracing_for(settings) as tracing:
        report = build_ingestor(settings, knowledge, embedder, tracing=tracing).delete(document_ids)
    _finish(report, json_out, fail_if_empty=False)
