"""Crash safety for real: an ingestion subprocess is killed with SIGKILL at several points; the published snapshot
stays whole and queryable, and the next run gives exactly what a clean run gives. Plus the run lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import StoreBusyError
from pipelines.ingest.locking import IngestLock
from pipelines.store import snapshots
from pipelines.store.knowledge import KnowledgeStore
from tests.pipelines.ingest.reindex_helpers import fingerprint, open_reader, run_ingest, write_v1, write_v2

REPO = Path(__file__).resolve().parents[3]


def child(store: Path, src: Path, stage: str, count: int = 1) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.ingest.reindex_child", str(store), str(src), stage, str(count)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def clean_v2(tmp_path_factory: pytest.TempPathFactory, embedder) -> dict[str, object]:  # type: ignore[no-untyped-def]
    src = tmp_path_factory.mktemp("clean-src")
    write_v1(src)
    write_v2(src)
    store, _ = run_ingest(tmp_path_factory.mktemp("clean") / "store", embedder, [src])
    return fingerprint(store)


@pytest.mark.parametrize(
    ("stage", "count"),
    [("files", 2), ("extraction", 2), ("publish", 0), ("publish", 1)],
    ids=["parsing", "mid-extraction", "before-swap", "after-swap"],
)
def test_kill_9_then_rerun_equals_a_clean_run(
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
    clean_v2: dict[str, object],
    stage: str,
    count: int,
) -> None:
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    _, first = run_ingest(root, embedder, [src])
    v1 = fingerprint(open_reader(root, embedder))
    write_v2(src)
    proc = child(root, src, stage, count)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, out, err[-2000:])
    assert f"stage {stage}" in out
    reader = open_reader(root, embedder)
    if stage == "publish" and count == 1:
        assert reader.snapshot_id != first.snapshot_id, "killed after the swap: the new snapshot is published"
    else:
        assert reader.snapshot_id == first.snapshot_id
        assert fingerprint(reader) == v1, "the previous snapshot stays whole and queryable after the crash"
        built = 1 if stage == "files" else 2  # killed while parsing: no snapshot was begun yet
        assert len(snapshots.list_snapshots(root)) == built, "a half-built snapshot is left behind"
    store, report = run_ingest(root, embedder, [src], sync=True)
    assert report.status == "ok"
    assert fingerprint(store) == clean_v2
    assert len(snapshots.list_snapshots(root)) <= 2, "abandoned and old snapshots are cleaned up"


def test_kill_9_from_outside_at_the_first_embedding(tmp_path: Path, embedder, clean_v2: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    _, first = run_ingest(root, embedder, [src])
    write_v2(src)
    proc = child(root, src, "never")
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("stage embeddings"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert KnowledgeStore.current_snapshot_id(root) == first.snapshot_id
    store, _ = run_ingest(root, embedder, [src], sync=True)
    assert fingerprint(store) == clean_v2


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from pipelines.ingest.locking import IngestLock
lock = IngestLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_run_is_refused_and_a_stale_lock_is_taken_over(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    root.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(root / "ingest.lock")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match=f"pid {holder.pid}"):
            run_ingest(root, embedder, [src])
        assert time.monotonic() - started < 30, "a second run fails at once, it does not wait"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The dead holder's pid is still written in the lock file: its lock is stale and is taken over.
    assert str(holder.pid) in (root / "ingest.lock").read_text("utf-8")
    _, report = run_ingest(root, embedder, [src])
    assert report.lock_taken_over_from == holder.pid and report.documents_added == 3
    assert (root / "ingest.lock").read_text("utf-8") == "", "a finished run releases the lock"
    with IngestLock(root / "ingest.lock"), pytest.raises(StoreBusyError, match="wait for it to finish"):
        IngestLock(root / "ingest.lock").acquire()
