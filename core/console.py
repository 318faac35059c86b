"""Terminal output shared by every command-line entry point: consoles, exit codes, and kgrag errors as one red
line with the fix (never a traceback). Used by the ``kgrag`` CLI and by the benchmark scripts."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from core.errors import InputError, KgragError

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_PARTIAL = 0, 1, 2, 3

F = TypeVar("F", bound=Callable[..., Any])


def console(stderr: bool = False) -> Console:
    """A rich console without syntax highlighting (stdout, or stderr for progress and errors)."""
    return Console(stderr=stderr, highlight=False)


def clear_errors(func: F) -> F:
    """Turn kgrag errors into one red line with the fix, and a non-zero exit code; never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KgragError as exc:
            err = console(stderr=True)
            err.print(f"[bold red]error:[/] {exc.message}")
            if exc.hint:
                err.print(f"  [yellow]fix:[/] {exc.hint}")
            raise typer.Exit(EXIT_BAD_INPUT if isinstance(exc, InputError) else EXIT_FAILURE) from None
        except KeyboardInterrupt:
            console(stderr=True).print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
