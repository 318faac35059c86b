"""The store directory's layout: the one place that names its files.

A store root holds the published snapshot (``current`` -> ``snapshots/<id>/``, with the chunk, state, vector, BM25
and graph files and the manifest), links to those files for tools that open one path, and the files that live
beside the snapshots: the audit store, the ingest lock, the extraction cache, run reports, job records and uploads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Files and folders of one snapshot.
CHUNKS = "chunks.sqlite"
STATE = "state.sqlite"
VECTORS = "vectors.faiss"
BM25 = "bm25"
GRAPH = "graph.json"
MANIFEST = "manifest.json"
#: The link to the published snapshot, and the folder of snapshots.
CURRENT = "current"
SNAPSHOTS = "snapshots"
#: Files and folders beside the snapshots, in the store root.
AUDIT = "audit.sqlite"
LOCK = "ingest.lock"
EXTRACTION_CACHE = "cache/extractions.sqlite"
REPORTS = "reports"
LATEST_REPORT = "latest.json"
JOBS = "jobs.sqlite"
UPLOADS = "uploads"
STAGING = ".staging"

FORMAT_VERSION = 2


@dataclass(frozen=True)
class StoreLayout:
    """Paths of a store: the snapshot's files under ``snapshot`` (default: the root), the rest under ``root``."""

    root: Path
    snapshot: Path | None = None

    @property
    def data(self) -> Path:
        return self.snapshot or self.root

    @property
    def manifest(self) -> Path:
        return self.data / MANIFEST

    @property
    def chunks(self) -> Path:
        return self.data / CHUNKS

    @property
    def state(self) -> Path:
        return self.data / STATE

    @property
    def vectors(self) -> Path:
        return self.data / VECTORS

    @property
    def bm25(self) -> Path:
        return self.data / BM25

    @property
    def graph(self) -> Path:
        return self.data / GRAPH

    @property
    def audit(self) -> Path:
        return self.root / AUDIT

    @property
    def lock(self) -> Path:
        return self.root / LOCK

    @property
    def extraction_cache(self) -> Path:
        return self.root / EXTRACTION_CACHE

    @property
    def reports(self) -> Path:
        return self.root / REPORTS

    @property
    def jobs(self) -> Path:
        return self.root / JOBS

    @property
    def uploads(self) -> Path:
        return self.root / UPLOADS
