"""Store snapshots: every ingestion run builds a new snapshot directory and swaps it in atomically.

Layout of a store directory::

    store/
      current -> snapshots/<id>      the published snapshot (a symbolic link, replaced with one rename)
      snapshots/<id>/                chunks.sqlite, state.sqlite, vectors.faiss, bm25/, graph.json, manifest.json
      chunks.sqlite -> current/chunks.sqlite   (and the other index files: stable paths for tools)
      audit.sqlite                   answers: not part of any snapshot, they survive re-indexing
      cache/extractions.sqlite       extraction results keyed by (chunk hash, extractor); content-addressed
      reports/<run id>.json          run reports; reports/latest.json is the last one
      ingest.lock                    held by the running ingestion (pid inside)

A reader resolves ``current`` once and opens every file of that one snapshot, so it never mixes two runs. A run
that dies before the swap leaves ``current`` untouched; its half-built directory is removed by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from datetime import datetime
from pathlib import Path

from pipelines.store.layout import BM25, CHUNKS, CURRENT, GRAPH, MANIFEST, SNAPSHOTS, STATE, VECTORS

#: SQLite files of a snapshot: copied with SQLite's online backup (a consistent copy) when a run starts.
SQLITE_FILES = (CHUNKS, STATE)
#: Files that are only ever replaced whole (write a temp file, then rename): hard-linked into a new snapshot.
REPLACED_FILES = (VECTORS, GRAPH)
REPLACED_DIRS = (BM25,)
#: Paths in the store root that link into the current snapshot, for tools that open one file.
ROOT_LINKS = (CHUNKS, VECTORS, BM25, GRAPH, MANIFEST)
LEGACY_MANIFEST = MANIFEST


def current_snapshot_id(root: Path) -> str | None:
    """Id of the published snapshot of the store at ``root`` (one ``readlink``), or None if there is none yet.

    Cheap enough to call on every API request: a different id than the one a reader opened means a newer
    snapshot was published and the reader may reopen the store.
    """
    try:
        return Path(os.readlink(Path(root) / CURRENT)).name
    except OSError:
        return None


def snapshot_path(root: Path, snapshot_id: str) -> Path:
    """Directory of one snapshot."""
    return Path(root) / SNAPSHOTS / snapshot_id


def published_dir(root: Path) -> Path | None:
    """Directory of the published snapshot; the store root itself for a store written before snapshots; or None."""
    snapshot_id = current_snapshot_id(root)
    if snapshot_id is not None:
        return snapshot_path(root, snapshot_id)
    legacy = Path(root) / LEGACY_MANIFEST
    if legacy.is_file() and not legacy.is_symlink():
        return Path(root)
    return None


def published_at(directory: Path) -> float | None:
    """When the snapshot in ``directory`` was published, as a Unix time: its manifest's ``created_at`` (written just
    before the swap), else the manifest file's modification time; None when there is no readable manifest."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text("utf-8"))
        stamp = manifest.get("created_at") if isinstance(manifest, dict) else None
        if isinstance(stamp, str):
            return datetime.fromisoformat(stamp).timestamp()
        return path.stat().st_mtime
    except (OSError, ValueError):
        return None


def new_snapshot_id() -> str:
    """A new id that sorts after every earlier one: UTC time to the microsecond, then random hex."""
    now = time.time_ns()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now // 1_000_000_000))
    return f"{stamp}{(now // 1000) % 1_000_000:06d}Z-{secrets.token_hex(3)}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(str(source))
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def discard_abandoned(root: Path) -> list[str]:
    """Remove snapshot directories newer than the published one: half-built by a run that died. Call under the lock."""
    folder = Path(root) / SNAPSHOTS
    if not folder.is_dir():
        return []
    current = current_snapshot_id(root)
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.name != current and (current is None or entry.name > current):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def begin(root: Path) -> Path:
    """Create a new snapshot directory holding a copy of the published snapshot (if any). Call under the lock."""
    root = Path(root)
    discard_abandoned(root)
    base = published_dir(root)
    target = snapshot_path(root, new_snapshot_id())
    target.mkdir(parents=True)
    if base is None:
        return target
    for name in SQLITE_FILES:
        if (base / name).exists():
            _sqlite_copy(base / name, target / name)
    for name in REPLACED_FILES:
        if (base / name).exists():
            _link_or_copy(base / name, target / name)
    for name in REPLACED_DIRS:
        if (base / name).is_dir():
            shutil.copytree(base / name, target / name, copy_function=_link_or_copy)
    return target


def publish(root: Path, snapshot_dir: Path, *, retain: int) -> None:
    """Make ``snapshot_dir`` the published snapshot with one atomic rename, then prune old snapshots.

    Everything in ``snapshot_dir`` must be written (and its manifest last) before this is called.
    """
    root = Path(root)
    _fsync_dir(snapshot_dir)
    tmp = root / f".{CURRENT}.{snapshot_dir.name}.tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(f"{SNAPSHOTS}/{snapshot_dir.name}", tmp)
    os.replace(tmp, root / CURRENT)
    _fsync_dir(root)
    _link_root_files(root)
    prune(root, retain=retain)


def _link_root_files(root: Path) -> None:
    for name in ROOT_LINKS:
        path = root / name
        if path.is_symlink():
            continue
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():  # a store written before snapshots: its files now live in the first snapshot
            path.unlink()
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    (root / f"{name}{suffix}").unlink()
        os.symlink(f"{CURRENT}/{name}", path)


def prune(root: Path, *, retain: int) -> list[str]:
    """Delete published snapshots beyond the ``retain`` newest (the current one is always kept)."""
    folder = Path(root) / SNAPSHOTS
    current = current_snapshot_id(root)
    if current is None or not folder.is_dir():
        return []
    older = sorted((e.name for e in folder.iterdir() if e.name <= current), reverse=True)
    doomed = [name for name in older[max(retain, 1) :] if name != current]
    for name in doomed:
        shutil.rmtree(folder / name, ignore_errors=True)
    return doomed


def list_snapshots(root: Path) -> list[str]:
    """Ids of the snapshot directories present, oldest first."""
    folder = Path(root) / SNAPSHOTS
    return sorted(e.name for e in folder.iterdir()) if folder.is_dir() else []
