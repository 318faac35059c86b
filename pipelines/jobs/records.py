"""Background job records and their SQLite store (<store>/jobs.sqlite): they survive restarts."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from core.errors import JobNotFoundError
from core.sqlite import open_sqlite
from pipelines.ingest.report import IngestReport, SkippedItem

JobKind = Literal["ingest", "delete"]
JobStatus = Literal["queued", "running", "succeeded", "partial", "failed"]


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_by_time ON jobs(created_at);
CREATE TABLE IF NOT EXISTS document_catalog (
    document_id TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    PRIMARY KEY (document_id, sha256)
);
CREATE TABLE IF NOT EXISTS catalog_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class StageProgress(BaseModel):
    """Items done of the stage's total (files, chunks, embeddings, extraction, publish)."""

    done: int = 0
    total: int = 0


class JobProgress(BaseModel):
    """Where a job is: its current stage, and done/total of every stage it has started."""

    stage: str = Field(default="queued", description="queued, waiting_for_lock, files, chunks, embeddings, ...")
    stages: dict[str, StageProgress] = Field(default_factory=dict)
    detail: str = ""


class JobRecord(BaseModel):
    """One background job as stored (and returned by ``GET /v1/jobs/{id}``)."""

    job_id: str
    kind: JobKind
    status: JobStatus = "queued"
    documents: list[str] = Field(default_factory=list, description="The document ids the job ingests or deletes.")
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    progress: JobProgress = Field(default_factory=JobProgress)
    report: IngestReport | None = Field(default=None, description="The ingestion run report, once the run ended.")
    errors: list[SkippedItem] = Field(default_factory=list, description="Inputs skipped or failed, with reasons.")
    error: str | None = Field(default=None, description="Why the job failed.")


class SqliteJobStore:
    """Job records (and the catalog of when each document version was first published) in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = open_sqlite(
            self.path,
            schema=_SCHEMA,
            autocommit=True,
            error="the job database {path} is not readable: {exc}",
            hint="move it aside; a new one is created",
        )

    def put(self, record: JobRecord) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO jobs (job_id, created_at, status, record) VALUES (?, ?, ?, ?)",
                (record.job_id, record.created_at, record.status, record.model_dump_json()),
            )

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            row = self._conn.execute("SELECT record FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id!r}", hint="list recent jobs with GET /v1/jobs")
        return JobRecord.model_validate_json(row[0])

    def recent(self, *, limit: int = 100, offset: int = 0, status: str | None = None) -> tuple[list[JobRecord], int]:
        """Newest first, and the total matching."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        with self._lock:
            total = int(self._conn.execute(f"SELECT COUNT(*) FROM jobs {where}", args).fetchone()[0])
            rows = self._conn.execute(
                f"SELECT record FROM jobs {where} ORDER BY created_at DESC, job_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [JobRecord.model_validate_json(r[0]) for r in rows], total

    def pending(self, kind: JobKind, documents: list[str]) -> JobRecord | None:
        """A queued or running job of ``kind`` for exactly these documents, if there is one."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT record FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at"
            ).fetchall()
        for (text,) in rows:
            record = JobRecord.model_validate_json(text)
            if record.kind == kind and record.documents == documents:
                return record
        return None

    def fail_unfinished(self, reason: str) -> list[str]:
        """Mark every queued or running job failed (their process is gone); return their ids."""
        with self._lock:
            rows = self._conn.execute("SELECT record FROM jobs WHERE status IN ('queued', 'running')").fetchall()
        failed = []
        for (text,) in rows:
            record = JobRecord.model_validate_json(text)
            was = record.status
            record.status, record.finished_at = "failed", now_iso()
            record.error = f"{reason} (the job was {was})"
            self.put(record)
            failed.append(record.job_id)
        return failed

    # ----- when each document version was first published -----

    def sync_catalog(self, snapshot_id: str | None, hashes: dict[str, str], published_at: str) -> None:
        """Record ``published_at`` for every (document id, sha256) not seen before; once per snapshot."""
        if snapshot_id is None:
            return
        with self._lock:
            row = self._conn.execute("SELECT value FROM catalog_meta WHERE key = 'snapshot'").fetchone()
            if row is not None and row[0] == snapshot_id:
                return
            self._conn.execute("BEGIN")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO document_catalog (document_id, sha256, ingested_at) VALUES (?, ?, ?)",
                    [(d, h, published_at) for d, h in hashes.items()],
                )
                self._conn.execute(
                    "INSERT OR REPLACE INTO catalog_meta (key, value) VALUES ('snapshot', ?)", (snapshot_id,)
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def ingested_at(self, versions: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        with self._lock:
            for doc_id, sha in versions:
                row = self._conn.execute(
                    "SELECT ingested_at FROM document_catalog WHERE document_id = ? AND sha256 = ?", (doc_id, sha)
                ).fetchone()
                if row is not None:
                    out[(doc_id, sha)] = str(row[0])
        return out

    def close(self) -> None:
        with self._lock:
            self._conn.close()
