"""``kgrag api new-key``: the printed settings entry, loaded from KGRAG_API__KEYS, authenticates the printed key."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from api.auth import KeyRing
from core.errors import AuthenticationError
from core.settings import load_settings
from pipelines.cli.main import app


def test_new_key_round_trips_through_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(app, ["api", "new-key", "alice", "--role", "compliance", "--role", "chat"])
    assert result.exit_code == 0, result.output
    key = re.search(r"key \(shown once\): (\S+)", result.output).group(1)  # type: ignore[union-attr]
    entry = result.output.strip().splitlines()[-1]
    assert key not in entry
    monkeypatch.setenv("KGRAG_API__KEYS", f"[{entry}]")
    ring = KeyRing(load_settings().api.keys)
    assert ring.identify(key).roles == ["chat", "compliance"]
    with pytest.raises(AuthenticationError):
        ring.identify(key + "x")
    bad = CliRunner().invoke(app, ["api", "new-key", "bob", "--role", "wizard"])
    assert bad.exit_code != 0 and "unknown role(s) wizard" in bad.output
