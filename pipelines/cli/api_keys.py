"""``kgrag api``: helpers for the HTTP API's settings (API keys are configured as hashes, never in clear)."""

from __future__ import annotations

import json
import secrets
from typing import Annotated

import typer
from rich.console import Console

from core.apikeys import hash_key

app = typer.Typer(help="HTTP API helpers: create API keys for KGRAG_API__KEYS.", no_args_is_help=True)
_ROLES = {"chat", "compliance", "admin"}


@app.command("new-key")
def new_key(
    name: Annotated[str, typer.Argument(help="who or what the key is for")],
    roles: Annotated[list[str], typer.Option("--role", help="chat, compliance or admin (repeatable)")],
) -> None:
    """Print a new random key (give it to the caller) and its KGRAG_API__KEYS entry (store only that)."""
    bad = sorted(set(roles) - _ROLES)
    if bad or not roles:
        raise typer.BadParameter(f"unknown role(s) {', '.join(bad) or '(none given)'}; use chat, compliance or admin")
    key = secrets.token_urlsafe(32)
    console = Console()
    console.print(f"key (shown once): [bold]{key}[/bold]")
    console.print("settings entry (add to the KGRAG_API__KEYS JSON list):")
    print(json.dumps({"name": name, "sha256": hash_key(key), "roles": sorted(set(roles))}))


@app.command("hash-key")
def hash_existing(key: Annotated[str, typer.Argument(help="an existing key")]) -> None:
    """Print the sha256 to configure for an existing key."""
    print(hash_key(key))
