"""The Ray ingestion engine with real parts: a real local Ray instance on 127.0.0.1 (Ray Data tasks and an actor pool
running the real MiniLM), compared with the local engine on the same sources."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from core.errors import IngestEngineError
from core.settings import load_settings
from pipelines.compose.ingest import build_ingest_engine, build_ingestor
from pipelines.compose.stores import open_store
from pipelines.ingest.engines.local import LocalEngine
from pipelines.ingest.engines.ray_engine import RayEngine
from pipelines.ingest.engines.ray_runtime import LOOPBACK, RayRuntime
from pipelines.ingest.report import IngestReport
from pipelines.store.knowledge import KnowledgeStore
from tests.pipelines.ingest.reindex_helpers import fingerprint

DATA_DIR = Path(__file__).resolve().parents[3] / "data"
KGRAG = str(Path(sys.executable).with_name("kgrag"))


@pytest.fixture(scope="module")
def ray_session() -> Iterator[object]:
    """One local Ray instance for this module, started the way the engine starts one (loopback, 2 CPUs)."""
    runtime = RayRuntime(num_cpus=2)
    ray = runtime.start()
    assert runtime.started_here
    yield ray
    runtime.shutdown()


def _sources(root: Path) -> Path:
    """The sample corpus plus a binary file and a Latin-1 file, which every engine must report and skip."""
    src = root / "src"
    shutil.copytree(DATA_DIR, src)
    (src / "blob.txt").write_bytes(b"\x00\x01\x02 binary")
    (src / "latin1.md").write_bytes("# Caf\xe9\n\nR\xe9sum\xe9 of the caf\xe9 policy.".encode("latin-1"))
    return src


def _ingest(root: Path, src: Path, engine: str, embedder) -> tuple[KnowledgeStore, IngestReport]:  # type: ignore[no-untyped-def]
    settings = load_settings(store_dir=root, chunking={"max_chars": 300, "min_chars": 80}, ingest={"engine": engine})
    store = open_store(settings, embedder, create=True)
    return store, build_ingestor(settings, store, embedder).ingest([src], sync=True)


def _vectors(store: KnowledgeStore) -> dict[str, np.ndarray]:
    chunks = store.chunks.chunks_by_vector_ids(sorted(store.vectors.ids()))
    index = store.vectors._index
    return {chunk.id: index.reconstruct(int(vid)) for vid, chunk in chunks.items()}


def _assert_same_store(a: KnowledgeStore, b: KnowledgeStore) -> None:
    assert fingerprint(a) == fingerprint(b)
    va, vb = _vectors(a), _vectors(b)
    assert sorted(va) == sorted(vb) and va
    for chunk_id, vector in va.items():
        np.testing.assert_allclose(vb[chunk_id], vector, atol=1e-5, err_msg=chunk_id)


def _skips(report: IngestReport) -> list[tuple[str, str]]:
    return sorted((Path(s.source).name, s.reason) for s in report.skipped)


@pytest.mark.integration
def test_ray_run_equals_local_run_with_bad_files_and_reruns(tmp_path: Path, ray_session, embedder) -> None:  # type: ignore[no-untyped-def]
    src = _sources(tmp_path)
    local, local_report = _ingest(tmp_path / "local", src, "local", embedder)
    ray_store, ray_report = _ingest(tmp_path / "ray", src, "ray", embedder)
    assert (local_report.engine, ray_report.engine) == ("local", "ray")
    for field in ("documents_added", "chunks_embedded", "chunks_extracted", "facts_added", "status", "totals"):
        assert getattr(ray_report, field) == getattr(local_report, field), field
    assert ray_report.documents_added >= 6 and ray_report.chunks_embedded >= 8
    # the bad files are reported, with their reasons, under Ray too
    assert _skips(ray_report) == _skips(local_report)
    reasons = dict(_skips(ray_report))
    assert "binary" in reasons["blob.txt"] and "UTF-8" in reasons["latin1.md"] and ray_report.status == "partial"
    _assert_same_store(local, ray_store)

    # nothing changed: Ray embeds and extracts nothing and publishes nothing
    ray_store, again = _ingest(tmp_path / "ray", src, "ray", embedder)
    assert (again.chunks_embedded, again.chunks_extracted, again.documents_ingested) == (0, 0, 0)
    assert not again.changed_anything and again.snapshot_id == ray_report.snapshot_id
    assert ray_session.is_initialized()  # the engine leaves a Ray session it did not start running

    # one document changed, one deleted: Ray re-embeds exactly what the local engine re-embeds
    policy = src / "security-policy.txt"
    policy.write_text(policy.read_text("utf-8") + "\n\nVisitors sign in at the Utrecht front desk.", "utf-8")
    (src / "onboarding.html").unlink()
    local, local_change = _ingest(tmp_path / "local", src, "local", embedder)
    ray_store, ray_change = _ingest(tmp_path / "ray", src, "ray", embedder)
    assert 1 <= ray_change.chunks_embedded == local_change.chunks_embedded < ray_report.chunks_embedded
    assert (ray_change.documents_changed, ray_change.documents_deleted) == (1, 1)
    assert ray_change.chunks_reused == local_change.chunks_reused
    _assert_same_store(local, ray_store)


def _listening_inodes() -> dict[str, str]:
    """Socket inode -> local address (hex, as in /proc/net) of every listening TCP socket on the machine."""
    found: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    found[fields[9]] = fields[1].rsplit(":", 1)[0]
    return found


def _descendants(root_pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    seen, todo = set(), [root_pid]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += children.get(pid, [])
    return seen


def _is_loopback(hex_address: str) -> bool:
    return hex_address in ("0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F")


@pytest.mark.integration
def test_local_ray_instance_listens_on_loopback_only(ray_session) -> None:  # type: ignore[no-untyped-def]
    ray = ray_session
    assert ray.util.get_node_ip_address() == LOOPBACK
    assert ray.get_runtime_context().gcs_address.startswith(f"{LOOPBACK}:")
    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {LOOPBACK}
    listening = _listening_inodes()
    ours: dict[str, str] = {}
    for pid in _descendants(os.getpid()):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            inode = link[len("socket:[") : -1] if link.startswith("socket:[") else None
            if inode in listening:
                ours[inode] = listening[inode]
    gcs_port = int(ray.get_runtime_context().gcs_address.rsplit(":", 1)[1])
    assert any(int(addr_port.split(":")[1], 16) == gcs_port for addr_port in _ports(ours)), "GCS socket not found"
    assert len(ours) >= 3 and all(_is_loopback(a) for a in ours.values()), ours


def _ports(ours: dict[str, str]) -> list[str]:
    """``address:port`` (hex) of our listening sockets, re-read from /proc with their ports."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table, encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[9] in ours:
                    out.append(fields[1])
    return out


CLI_THEN_REPORT_RAY = """
import sys
from pipelines.cli.main import app
code = 0
try:
    app(sys.argv[1:])
except SystemExit as done:
    code = done.code
import ray  # imported by the engine already; is it still up?
sys.stderr.write(f"\\nRAY_STILL_UP={ray.is_initialized()}\\n")
sys.exit(code)
"""


@pytest.mark.integration
def test_cli_engine_ray_starts_its_own_local_instance_and_shuts_it_down(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(DATA_DIR, src)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    args = ["ingest", str(src), "--store", str(tmp_path / "store"), "--engine", "ray", "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", CLI_THEN_REPORT_RAY, *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is the report alone: no Ray log lines
    assert report["engine"] == "ray" and report["documents_added"] == 6 and report["chunks_embedded"] >= 8
    assert "RAY_STILL_UP=False" in proc.stderr


def test_bad_engine_and_unreachable_cluster_are_clear_errors(tmp_path: Path) -> None:
    bad = subprocess.run(
        [KGRAG, "ingest", str(DATA_DIR), "--store", str(tmp_path / "s"), "--engine", "spark"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "unknown engine 'spark'" in bad.stderr and "--engine ray" in bad.stderr
    assert "Traceback" not in bad.stderr
    with pytest.raises(IngestEngineError, match="does not answer") as caught:
        RayRuntime(address="127.0.0.1:1").start()
    assert "RAY_ADDRESS" in str(caught.value.hint)


def test_engine_is_chosen_by_typed_settings(monkeypatch: pytest.MonkeyPatch, embedder) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(build_ingest_engine(load_settings(), embedder), LocalEngine)
    monkeypatch.setenv("KGRAG_INGEST__ENGINE", "ray")
    monkeypatch.setenv("KGRAG_INGEST__RAY__ADDRESS", "ray://head.example:10001")
    monkeypatch.setenv("KGRAG_INGEST__RAY__EMBED_ACTORS", "4")
    engine = build_ingest_engine(load_settings(), embedder)
    assert isinstance(engine, RayEngine) and engine.settings.embed_actors == 4
    assert engine.runtime.resolved_address() == "ray://head.example:10001"
    monkeypatch.delenv("KGRAG_INGEST__RAY__ADDRESS")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    assert build_ingest_engine(load_settings(), embedder).runtime.resolved_address() == "10.0.0.5:6379"  # type: ignore[attr-defined]
    monkeypatch.setenv("KGRAG_INGEST__ENGINE", "spark")
    with pytest.raises(ValueError, match="engine"):
        load_settings()
