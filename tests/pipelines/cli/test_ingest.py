"""``kgrag ingest`` and ``kgrag delete`` in a fresh interpreter each: a run with nothing to embed loads no embedder;
with tracing on, a run's spans reach an OTLP/HTTP receiver on 127.0.0.1 before the command exits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import DATA_DIR
from tests.otlp import OtlpReceiver

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


def kgrag(*args: str, env: dict[str, str] | None = None) -> tuple[dict[str, Any], set[str]]:
    """The ``--json`` run report of ``kgrag ARGS`` and the top-level modules the process had imported at its end."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "COLUMNS": "200", **(env or {})}
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
    assert (first["prompt_tokens"], first["completion_tokens"]) == (0, 0), "the offline extractor costs no tokens"
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
    assert "faiss" in modules  # its vectors were removed; its BM25 entries from the term table, without bm25s:
    assert modules.isdisjoint({"bm25s", "scipy"}), sorted(modules & {"bm25s", "scipy"})
    # its graph facts too, from the parsed graph file: no graph is built, so networkx is not even imported
    assert gone["facts_removed"] > 0 and gone["totals"]["graph_documents"] == first["totals"]["graph_documents"] - 1
    assert modules.isdisjoint({"sqlalchemy", "jinja2", "openai", "networkx"})  # no audit store, prompt, model, graph
    assert "answers" not in gone["totals"]  # the totals are the snapshot's


def test_a_traced_run_exports_its_spans_over_otlp_before_exiting(tmp_path: Path) -> None:
    receiver = OtlpReceiver()
    try:
        tracing = {
            "KGRAG_TRACING__EXPORTER": "otlp",
            "KGRAG_TRACING__ENDPOINT": receiver.url,
            "KGRAG_TRACING__SERVICE_NAME": "kgrag-nightly",
        }
        report, modules = kgrag("ingest", str(DATA_DIR), "--store", str(tmp_path / "store"), env=tracing)
        assert "opentelemetry" in modules
        assert receiver.content_types == {"application/x-protobuf"} and receiver.paths[0] == "/v1/traces"
        (run,) = receiver.named("kgrag ingest")
        assert run.parent_span_id == "" and run.resource["service.name"] == "kgrag-nightly"
        a = run.attributes
        assert a["kgrag.ingest.run_id"] == report["run_id"] and a["kgrag.ingest.status"] == report["status"]
        assert a["kgrag.ingest.documents_added"] == report["documents_added"] >= 4
        assert a["kgrag.ingest.chunks_embedded"] == report["chunks_embedded"] > 0
        assert a["kgrag.ingest.snapshot_id"] == report["snapshot_id"]
        stages = {s.name: s for s in receiver.spans if s.parent_span_id == run.span_id}
        assert set(stages) == {f"ingest.{stage}" for stage in report["durations_s"] if stage != "total"}
        for stage, seconds in report["durations_s"].items():
            if stage != "total":
                span = stages[f"ingest.{stage}"]
                assert span.trace_id == run.trace_id and run.start_ns <= span.start_ns <= span.end_ns <= run.end_ns
                assert abs((span.end_ns - span.start_ns) / 1e9 - seconds) < 0.05

        _, modules = kgrag("ingest", str(DATA_DIR), "--store", str(tmp_path / "store"))
        assert "opentelemetry" not in modules, "tracing off: OpenTelemetry is not even imported"
        assert len(receiver.named("kgrag ingest")) == 1
    finally:
        receiver.close()
