"""The lazy accessors: each name is the real object of its home module, and starting the CLI loads no heavy library."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.compose import lazy

ROOT = Path(__file__).resolve().parents[3]
#: What ``import pipelines.cli.main`` (every ``kgrag`` command, ``--help`` included) must not import.
HEAVY = (
    "torch",
    "onnxruntime",
    "sentence_transformers",
    "transformers",
    "ragas",
    "neo4j",
    "faiss",
    "ray",
    "opentelemetry",  # imported only when tracing is on (core.tracing)
)


def imported_by(statement: str) -> set[str]:
    """Top-level modules that ``statement`` leaves imported, in a fresh interpreter running this checkout's code."""
    script = f"import json, sys\n{statement}\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=True
    )
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_starting_the_cli_imports_no_heavy_library() -> None:
    loaded = imported_by("import pipelines.cli.main")
    assert "pipelines" in loaded  # the check runs where the CLI was imported
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_check_sees_a_heavy_import() -> None:
    assert "faiss" in imported_by("from pipelines.compose import lazy\nlazy.FaissVectorIndex")


@pytest.mark.parametrize("name", sorted(lazy.HOMES))
def test_each_name_is_the_object_its_home_module_defines(name: str) -> None:
    assert getattr(lazy, name) is getattr(importlib.import_module(lazy.HOMES[name]), name)


def test_every_name_is_exported_and_an_unknown_one_is_an_attribute_error() -> None:
    assert lazy.__all__ == sorted(lazy.HOMES)
    with pytest.raises(AttributeError, match="no attribute 'Nothing'"):
        lazy.Nothing  # noqa: B018
