"""Documents uploaded over HTTP: kept under ``<store>/uploads/`` and ingested (or deleted) by background jobs.

An uploaded file is staged in a hidden folder, parsed with the ingestion parsers (so a file the ingestion would
skip is refused at upload time, with the reason), then moved into ``uploads/`` with one rename. Its document id is
its path relative to ``uploads/`` (a JSONL file's documents keep their record ids; a JSON upload is stored as a
one-record JSONL file so its given id is kept). An ingest job runs the same
:class:`~pipelines.ingest.ingestor.Ingestor` as
``kgrag ingest`` over the whole ``uploads/`` folder: files unchanged since the last run are skipped by hash, so a job
ingests what was uploaded since. A delete job removes the documents' upload files first, then runs the same
cascade as ``kgrag delete``. Both take the store's ingestion lock; while another run (the CLI, a cron job) holds it,
the job waits up to ``KGRAG_JOBS__LOCK_WAIT_S`` and then fails with the holder named.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import DocumentNotFoundError, InputError, StoreBusyError, UnsupportedMediaTypeError
from core.settings import Settings
from pipelines.ingest.ingestor import Ingestor
from pipelines.ingest.parsers import SUPPORTED_SUFFIXES, parse_file
from pipelines.ingest.progress import ProgressReporter
from pipelines.ingest.report import IngestReport
from pipelines.jobs.records import JobRecord
from pipelines.jobs.runner import JobProgressReporter
from pipelines.store.knowledge import KnowledgeStore
from pipelines.store.layout import STAGING, UPLOADS
from retrieval.base import Embedder

_SEGMENT = re.compile(r"\w[\w. +-]*")
MAX_NAME_CHARS = 255


def check_name(name: str, *, what: str = "file name", need_suffix: bool = True) -> str:
    """A safe relative path under ``uploads/`` (what becomes the document id), or an error naming the fix."""
    cleaned = name.replace("\\", "/").strip().strip("/")
    parts = cleaned.split("/")
    if (
        not cleaned
        or len(cleaned) > MAX_NAME_CHARS
        or any(not _SEGMENT.fullmatch(p) or p.endswith((".", " ")) for p in parts)
    ):
        raise InputError(
            f"{what} {name!r} cannot be used as a document id",
            hint="use letters, digits, '.', '_', '-', '+' and spaces, '/' between folders; no leading dot or '..'; "
            f"at most {MAX_NAME_CHARS} characters",
        )
    if need_suffix and Path(cleaned).suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedMediaTypeError(
            f"{what} {name!r} is of an unsupported type {Path(cleaned).suffix or '(no extension)'!r}",
            hint=f"upload one of: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
        )
    return cleaned


@dataclass(frozen=True)
class UploadedFile:
    """A file as received: its name (the document id to be) and its bytes."""

    name: str
    data: bytes


def _check_bytes(name: str, data: bytes) -> None:
    if not data.strip():
        raise InputError(f"{name!r} is empty", hint="upload a file with text in it")
    if Path(name).suffix.lower() == ".pdf":
        if not data.startswith(b"%PDF-"):
            raise InputError(f"{name!r} is not a PDF (it does not start with %PDF-)", hint="upload a valid PDF")
        return
    if b"\x00" in data[:8192]:
        raise InputError(f"{name!r} is binary, not text", hint="upload text files as UTF-8")
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{name!r} is not valid UTF-8 (byte {exc.start})", hint="convert the file to UTF-8 and upload it again"
        ) from exc


class UploadArea:
    """The folder of a store that holds uploaded documents."""

    def __init__(self, store_root: Path) -> None:
        self.root = Path(store_root) / UPLOADS

    def path_of(self, file_id: str) -> Path:
        return self.root / file_id

    def accept(self, files: list[UploadedFile]) -> list[str]:
        """Check, stage, parse and commit ``files`` (all or none); return the document ids they hold."""
        if not files:
            raise InputError("no files in the upload", hint="send files as multipart form field 'files'")
        names = [check_name(f.name) for f in files]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise InputError(f"the upload names {sorted(dupes)[0]!r} twice", hint="upload each file once")
        for name, upload in zip(names, files, strict=True):
            _check_bytes(name, upload.data)
        staging = self.root / STAGING / secrets.token_hex(8)
        try:
            document_ids: list[str] = []
            for name, upload in zip(names, files, strict=True):
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as handle:
                    handle.write(upload.data)
                    handle.flush()
                    os.fsync(handle.fileno())
                parsed = parse_file(target, name)
                if not parsed.documents:
                    reason = parsed.skipped[0].reason if parsed.skipped else "no documents"
                    raise InputError(
                        f"{name!r} cannot be ingested: {reason.replace(str(target), name)}",
                        hint="fix the file and upload it again",
                    )
                if parsed.skipped:
                    raise InputError(
                        f"{name!r}: {len(parsed.skipped)} record(s) cannot be ingested, e.g. "
                        f"{parsed.skipped[0].source.replace(str(target), name)}: {parsed.skipped[0].reason}",
                        hint="fix those lines and upload the file again",
                    )
                document_ids += [d.id for d in parsed.documents]
            for name in names:
                final = self.root / name
                if final.is_dir():
                    raise InputError(f"{name!r} is a folder of uploads", hint="choose another file name")
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / name, final)
            return document_ids
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def accept_texts(self, documents: list[tuple[str, str, str]]) -> list[str]:
        """Store (id, title, text) documents as one-record JSONL files, keeping their ids; see :meth:`accept`."""
        files = []
        for doc_id, title, text in documents:
            check_name(doc_id, what="document id", need_suffix=False)
            line = json.dumps({"id": doc_id, "title": title, "text": text}, ensure_ascii=False)
            files.append(UploadedFile(f"{doc_id}.jsonl", (line + "\n").encode("utf-8")))
        return self.accept(files)

    def forget(self, file_ids: dict[str, list[str]], doomed: set[str]) -> list[str]:
        """Remove the upload files whose documents are all ``doomed``; drop doomed records from JSONL files."""
        touched = []
        for file_id, doc_ids in file_ids.items():
            path = self.path_of(file_id)
            if not doc_ids or not set(doc_ids) & doomed or not path.is_file():
                continue
            if set(doc_ids) <= doomed:
                path.unlink()
            elif path.suffix.lower() == ".jsonl":
                kept = []
                for line in path.read_text("utf-8-sig").splitlines():
                    with contextlib.suppress(ValueError, AttributeError):
                        if str(json.loads(line).get("id")) in doomed:
                            continue
                    kept.append(line)
                tmp = path.with_name(f".{path.name}.tmp")
                tmp.write_text("\n".join(kept) + "\n", "utf-8")
                os.replace(tmp, path)
            touched.append(file_id)
        return touched


class DocumentJobs:
    """Runs upload and delete jobs through the ingestion code (same Ingestor, same lock as the CLI).

    ``open_store`` and ``build_ingestor`` come from the composition root (:func:`pipelines.compose.jobs.document_jobs`).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Callable[[], Embedder],
        *,
        open_store: Callable[[Embedder], KnowledgeStore],
        build_ingestor: Callable[[KnowledgeStore, Embedder, ProgressReporter], Ingestor],
        poll_s: float = 0.5,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.open_store = open_store
        self.build_ingestor = build_ingestor
        self.uploads = UploadArea(settings.store_dir)
        self.poll_s = poll_s

    def __call__(self, job: JobRecord, progress: JobProgressReporter) -> IngestReport:
        deadline = time.monotonic() + self.settings.jobs.lock_wait_s
        embedder = self.embedder()
        while True:
            store = self.open_store(embedder)  # fresh: another run may have published
            try:
                ingestor = self.build_ingestor(store, embedder, progress)
                if job.kind == "ingest":
                    self.uploads.root.mkdir(parents=True, exist_ok=True)
                    return ingestor.ingest([self.uploads.root])
                known = store.chunks.document_hashes() if store.has_data else {}
                missing = [d for d in job.documents if d not in known]
                if missing:
                    raise DocumentNotFoundError(f"no document {missing[0]!r} in the store (deleted meanwhile?)")
                sources = {f: list(r.document_ids) for f, r in store.state.sources().items()}
                self.uploads.forget(sources, set(job.documents))
                return ingestor.delete(job.documents)
            except StoreBusyError as exc:
                if time.monotonic() >= deadline:
                    raise StoreBusyError(
                        f"gave up after waiting {self.settings.jobs.lock_wait_s:g} s for the store lock: {exc.message}",
                        hint="submit the job again once that run has finished (or raise KGRAG_JOBS__LOCK_WAIT_S)",
                    ) from exc
                progress.waiting(exc.message)
                time.sleep(max(0.0, min(self.poll_s, deadline - time.monotonic())))
            finally:
                store.close()
