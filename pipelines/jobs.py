"""Background jobs: durable records in SQLite (``<store>/jobs.sqlite``) and one worker thread that runs them in order.

A job is queued, then running, then ``succeeded``, ``partial`` (the run skipped some input) or ``failed``. Its record
(progress by stage, timestamps, the run report and its errors) is written as it changes, so any process can read it,
and a restarted API still answers for old jobs. Jobs that were queued or running when their process stopped are
marked failed when the next runner starts (:meth:`SqliteJobStore.fail_unfinished`).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from core.errors import JobNotFoundError, KgragError, StoreCorruptError
from pipelines.ingest_report import IngestReport, SkippedItem

log = logging.getLogger("kgrag.jobs")

JobKind = Literal["ingest", "delete"]
JobStatus = Literal["queued", "running", "succeeded", "partial", "failed"]
FINISHED: frozenset[str] = frozenset({"succeeded", "partial", "failed"})

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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StoreCorruptError(
                f"the job database {self.path} is not readable: {exc}", hint="move it aside; a new one is created"
            ) from exc

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


class JobProgressReporter:
    """An ingestion :class:`~pipelines.ingest.ProgressReporter` that writes progress into the job's record
    (at each stage start, and at most every ``interval_s`` while a stage advances)."""

    def __init__(self, store: SqliteJobStore, record: JobRecord, interval_s: float = 0.5) -> None:
        self.store = store
        self.record = record
        self.interval_s = interval_s
        self._last = 0.0

    def _save(self, force: bool) -> None:
        now = time.monotonic()
        if force or now - self._last >= self.interval_s:
            self._last = now
            self.store.put(self.record)

    def start(self, stage: str, total: int) -> None:
        self.record.progress.stage = stage
        self.record.progress.detail = ""
        self.record.progress.stages[stage] = StageProgress(done=0, total=total)
        self._save(True)

    def advance(self, stage: str, amount: int = 1) -> None:
        entry = self.record.progress.stages.setdefault(stage, StageProgress())
        entry.done += amount
        self._save(entry.done >= entry.total)

    def waiting(self, detail: str) -> None:
        """The job waits for the store lock held by another run."""
        self.record.progress.stage = "waiting_for_lock"
        self.record.progress.detail = detail
        self._save(True)


#: Runs one job: given its record and a progress reporter, returns the ingestion run report (or raises).
JobExecutor = Callable[[JobRecord, JobProgressReporter], IngestReport]


class JobRunner:
    """Runs jobs one at a time in a worker thread, in submission order, recording each step in the job store."""

    def __init__(
        self,
        store: SqliteJobStore,
        executor: JobExecutor,
        on_finished: Callable[[JobRecord], None] | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.on_finished = on_finished
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        failed = self.store.fail_unfinished("interrupted: the API stopped before the job finished; submit it again")
        if failed:
            log.warning("marked %d interrupted job(s) failed: %s", len(failed), ", ".join(failed))
        self._thread = threading.Thread(target=self._work, name="kgrag-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to stop after the job it runs (a job still running then is failed at the next start)."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def submit(self, kind: JobKind, documents: list[str]) -> JobRecord:
        record = JobRecord(job_id=uuid.uuid4().hex, kind=kind, documents=documents, created_at=now_iso())
        self.store.put(record)
        self._queue.put(record.job_id)
        return record

    def _work(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                return
            try:
                self._run(self.store.get(job_id))
            except Exception:  # never let one job kill the worker
                log.exception("job %s could not be run", job_id)

    def _run(self, record: JobRecord) -> None:
        record.status, record.started_at = "running", now_iso()
        record.progress = JobProgress(stage="starting")
        reporter = JobProgressReporter(self.store, record)
        self.store.put(record)
        try:
            report = self.executor(record, reporter)
        except KgragError as exc:
            record.status, record.error = "failed", str(exc)
        except Exception as exc:
            log.exception("job %s failed", record.job_id)
            record.status, record.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            record.report = report
            record.errors = [*report.skipped, *report.extraction_errors]
            record.status = "partial" if report.status == "partial" else "succeeded"
        if self.on_finished is not None:  # before the record says finished: then readers already see the result
            try:
                self.on_finished(record)
            except Exception:
                log.exception("after job %s", record.job_id)
        record.finished_at = now_iso()
        record.progress.stage = "done" if record.status != "failed" else "failed"
        self.store.put(record)
