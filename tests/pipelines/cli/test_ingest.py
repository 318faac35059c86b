"""``kgrag ingest`` and ``kgrag delete`` in a fresh interpreter each: a run with nothing to embed loads no embedder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import DATA_DIR

ROOT = Path(__file__).resolve().parents[3]
#: The embedder's libraries: loading the model imports them.
EMBEDDER = ("torch", "onnxruntime", "sentence_transformers", "transformers")
#: What the snapshot's heavy parts (FAISS index, BM25 index, graph, audit store), the prompt registry and the model
#: client import: a no-change run decides from the chunk and state files alone, so it imports none of them.
UNTOUCHED_BY_NO_CHANGE = ("faiss", "bm25s", "scipy", "networkx", "sqlalchemy", "jinja2", "openai")
SCRIPT = """
import json, sys
from pipelines.cli.main import app
try:
    app(sys.argv[1:], standalone_mode=False)
    code = 0
except SystemExit as exc:
    code = exc.code
print(json.dumps({"exit": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def kgrag(*args: str) -> tuple[dict[str, Any], set[str]]:
    """The ``--json`` run report of ``kgrag ARGS`` and the top-level modules the process had imported at its end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args, "--json"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    report_text, _, last = proc.stdout.rstrip().rpartition("\n")
    end = json.loads(last)
    assert end["exit"] in (0, None), (end, proc.stderr)
    return json.loads(report_text), set(end["modules"])


def test_no_change_sync_and_delete_load_no_embedder(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    first, modules = kgrag("ingest", str(DATA_DIR), "--store", store)
    assert first["documents_added"] >= 4 and first["chunks_embedded"] > 0
    assert modules & set(EMBEDDER)  # embedding loads the model: what the next checks would see

    same, modules = kgrag("ingest", str(DATA_DIR), "--store", store, "--sync")
    assert (same["documents_added"], same["documents_changed"], same["documents_deleted"]) == (0, 0, 0)
    assert same["documents_unchanged"] == first["documents_added"]
    assert same["snapshot_id"] == same["previous_snapshot_id"] == first["snapshot_id"]  # nothing published
    assert "nothing changed: the published snapshot is kept" in same["notes"]
    assert modules.isdisjoint(EMBEDDER), sorted(modules & set(EMBEDDER))
    assert modules.isdisjoint(UNTOUCHED_BY_NO_CHANGE), sorted(modules & set(UNTOUCHED_BY_NO_CHANGE))

    gone, modules = kgrag("delete", "security-policy.txt", "--store", store)
    assert gone["deleted_documents"] == ["security-policy.txt"] and gone["chunks_removed"] > 0
    assert gone["totals"]["documents"] == first["totals"]["documents"] - 1
    assert gone["totals"]["vectors"] == first["totals"]["vectors"] - gone["chunks_removed"]
    assert gone["snapshot_id"] != first["snapshot_id"]
    assert modules.isdisjoint(EMBEDDER), sorted(modules & set(EMBEDDER))
    assert {"faiss", "bm25s", "networkx"} <= modules  # its vectors, BM25 entries and graph facts were removed
    assert modules.isdisjoint({"sqlalchemy", "jinja2", "openai"})  # no audit store, prompt or model client
    assert "answers" not in gone["totals"]  # the totals are the snapshot's
