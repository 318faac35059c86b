"""Background jobs: durable records in SQLite (``<store>/jobs.sqlite``) and one worker thread that runs them in order.

A job is queued, then running, then ``succeeded``, ``partial`` (the run skipped some input) or ``failed``. Its record
(progress by stage, timestamps, the run report and its errors) is written as it changes, so any process can read it,
and a restarted API still answers for old jobs. Jobs that were queued or running when their process stopped are
marked failed when the next runner starts (:meth:`SqliteJobStore.fail_unfinished`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable

from core.errors import KgragError
from pipelines.ingest.report import IngestReport
from pipelines.jobs.records import JobKind, JobProgress, JobRecord, SqliteJobStore, StageProgress, now_iso

log = logging.getLogger("kgrag.jobs")

FINISHED: frozenset[str] = frozenset({"succeeded", "partial", "failed"})


class JobProgressReporter:
    """An ingestion :class:`~pipelines.ingest.progress.ProgressReporter` that writes progress into the job's record
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
