"""Documents over HTTP (role ``admin``): upload (multipart files or JSON texts) and delete as background jobs, list
and read the indexed documents, follow the jobs.

``POST /v1/documents`` checks and stores the upload under ``<store>/uploads/`` before it answers ``202`` with the
job and ``Location: /v1/jobs/{id}``; a worker thread then ingests it with the same code and lock as
``kgrag ingest`` (see :mod:`pipelines.jobs.documents`). ``DELETE /v1/documents/{id}`` is a job too (it publishes a
new snapshot, like ``kgrag delete``). Answers follow the new snapshot from the next request on.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import require
from api.state import AppState, app_state, reopen_if_newer
from core.errors import DocumentNotFoundError, InputError, KgragError, UnsupportedMediaTypeError
from pipelines.compose.jobs import document_jobs
from pipelines.compose.models import load_embedder
from pipelines.jobs.documents import UploadArea, UploadedFile
from pipelines.jobs.records import JobRecord, JobStatus, SqliteJobStore
from pipelines.jobs.runner import JobRunner
from pipelines.store.knowledge import KnowledgeStore
from pipelines.store.layout import StoreLayout

log = logging.getLogger("kgrag.api")
MAX_PAGE = 500
MAX_FILES = 1000


class TextDocument(BaseModel):
    """A document sent as JSON: its id (kept as is), optional title, and text."""

    id: str = Field(min_length=1, max_length=255, examples=["policies/remote-work"])
    title: str = Field(default="", max_length=1000)
    text: str = Field(min_length=1)


class DocumentsBody(BaseModel):
    """``POST /v1/documents`` as JSON: one or more documents."""

    documents: list[TextDocument] = Field(min_length=1, max_length=MAX_FILES)


class JobAccepted(BaseModel):
    """The job that will ingest (or delete) the documents; poll ``location``."""

    job_id: str
    status: JobStatus
    kind: str
    documents: list[str]
    location: str


class DocumentInfo(BaseModel):
    """An indexed document: its version (content hash), size in chunks, and when that version was published."""

    id: str
    title: str
    source: str
    media_type: str
    sha256: str = Field(description="The version: sha256 of title and text.")
    characters: int
    chunks: int
    ingested_at: str | None = Field(description="When the snapshot first holding this version was published.")
    uploaded: bool = Field(description="Whether the document came from an upload (kept under <store>/uploads/).")


class DocumentPage(BaseModel):
    """A page of documents, ordered by id."""

    items: list[DocumentInfo]
    total: int
    limit: int
    offset: int


class JobList(BaseModel):
    """A page of jobs, newest first."""

    items: list[JobRecord]
    total: int
    limit: int
    offset: int


@dataclass
class DocumentServices:
    """The job store, its runner and the upload area of one app."""

    jobs: SqliteJobStore
    runner: JobRunner
    uploads: UploadArea
    opener: Callable[[], None]

    def stop(self) -> None:
        self.runner.stop()
        self.jobs.close()


def start_documents(state: AppState, opener: Callable[[], None]) -> DocumentServices:
    """Open the job store, mark jobs interrupted by a previous stop failed, and start the worker."""

    settings = state.settings

    def embedder() -> Any:
        if state.embedder is None:
            state.embedder = load_embedder(settings)
        return state.embedder

    def finished(job: JobRecord) -> None:
        state.metrics.ingest_run(job.kind, job.status, job.report)
        if state.service is None and KnowledgeStore.current_snapshot_id(settings.store_dir) is not None:
            state.startup_error = None
            opener()  # the first upload created the store
        else:
            reopen_if_newer(state)

    jobs = SqliteJobStore(StoreLayout(settings.store_dir).jobs)
    runner = JobRunner(jobs, document_jobs(settings, embedder, tracing=state.tracing), on_finished=finished)
    runner.start()
    return DocumentServices(jobs=jobs, runner=runner, uploads=UploadArea(settings.store_dir), opener=opener)


class JobsUnavailableError(KgragError):
    """The job runner of this API process is not running (still starting, or its job database failed to open)."""

    http_status = 503
    code = "jobs-unavailable"


def _services(request: Request) -> DocumentServices:
    services: DocumentServices | None = getattr(request.app.state, "documents", None)
    if services is None:
        raise JobsUnavailableError("the job runner is not started", hint="retry in a moment; see the server log")
    return services


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its ``$defs`` inlined (OpenAPI request bodies cannot reference them)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more files (txt, md, html, pdf, jsonl); each file name "
                            "(may contain folders) becomes the document id.",
                        }
                    },
                    "required": ["files"],
                }
            },
            "application/json": {"schema": _inline(DocumentsBody.model_json_schema())},
        },
    }
}


async def _read_upload(request: Request) -> list[UploadedFile] | DocumentsBody:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        form = await request.form(max_files=MAX_FILES, max_fields=MAX_FILES)
        files: list[UploadedFile] = []
        try:
            for field_name, item in form.multi_items():
                if not isinstance(item, UploadFile):
                    raise InputError(
                        f"form field {field_name!r} is not a file", hint="send files as -F files=@path/to/file.md"
                    )
                if not item.filename:
                    raise InputError(f"form field {field_name!r} has no file name", hint="give each file a name")
                files.append(UploadedFile(item.filename, await item.read()))
        finally:
            await form.close()
        return files
    if kind == "application/json" or kind.endswith("+json"):
        raw = await request.body()
        try:
            return DocumentsBody.model_validate_json(raw)
        except ValidationError as exc:
            parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]]
            raise InputError(
                "; ".join(parts), hint='send {"documents": [{"id": "...", "title": "...", "text": "..."}]}'
            ) from exc
    raise UnsupportedMediaTypeError(
        f"cannot upload a {kind or 'body without a content type'}",
        hint="send multipart/form-data files (curl -F files=@doc.md) or application/json documents",
    )


def _accepted(job: JobRecord, response: Response) -> JobAccepted:
    location = f"/v1/jobs/{job.job_id}"
    response.headers["Location"] = location
    return JobAccepted(job_id=job.job_id, status=job.status, kind=job.kind, documents=job.documents, location=location)


def _open_store(request: Request) -> KnowledgeStore | None:
    st = app_state(request)
    if st.store is None and KnowledgeStore.current_snapshot_id(st.settings.store_dir) is not None:
        services: DocumentServices | None = getattr(request.app.state, "documents", None)
        if services is not None:
            st.startup_error = None
            services.opener()
    reopen_if_newer(st)
    return st.store if st.store is not None and st.store.has_data else None


def _info(store: KnowledgeStore, doc_id: str, when: dict[tuple[str, str], str], uploads: UploadArea) -> DocumentInfo:
    doc = store.chunks.get_document(doc_id)
    if doc is None:
        raise DocumentNotFoundError(f"no document {doc_id!r}", hint="list the documents with GET /v1/documents")
    source = doc.source.split("#", 1)[0]
    return DocumentInfo(
        id=doc.id,
        title=doc.title,
        source=doc.source,
        media_type=doc.media_type,
        sha256=doc.sha256,
        characters=len(doc.text),
        chunks=len(store.chunks.chunk_ids_for_document(doc.id)),
        ingested_at=when.get((doc.id, doc.sha256)),
        uploaded=source.startswith(str(uploads.root) + "/"),
    )


def _catalog(services: DocumentServices, store: KnowledgeStore) -> dict[str, str]:
    hashes = store.chunks.document_hashes()
    try:
        created = str(json.loads(store.layout.manifest.read_text("utf-8")).get("created_at", ""))
    except (OSError, ValueError):
        created = ""
    services.jobs.sync_catalog(store.snapshot_id, hashes, created)
    return hashes


def build_router() -> APIRouter:
    """The documents and jobs routes (role ``admin``)."""
    router = APIRouter(tags=["documents"], dependencies=[Depends(require("admin"))])

    @router.post("/v1/documents", status_code=202, response_model=JobAccepted, openapi_extra=UPLOAD_BODY)
    async def upload_documents(request: Request, response: Response) -> JobAccepted:
        """Upload files (multipart field ``files``) or JSON documents; 202 with the ingest job (poll Location)."""
        services = _services(request)
        body = await _read_upload(request)
        if isinstance(body, DocumentsBody):
            texts = [(d.id, d.title, d.text) for d in body.documents]
            ids = await run_in_threadpool(services.uploads.accept_texts, texts)
        else:
            ids = await run_in_threadpool(services.uploads.accept, body)
        return _accepted(services.runner.submit("ingest", ids), response)

    @router.get("/v1/documents", response_model=DocumentPage)
    def list_documents(
        request: Request,
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=10_000_000),
    ) -> DocumentPage:
        """The indexed documents of the published snapshot, ordered by id."""
        services = _services(request)
        store = _open_store(request)
        if store is None:
            return DocumentPage(items=[], total=0, limit=limit, offset=offset)
        hashes = _catalog(services, store)
        page = sorted(hashes)[offset : offset + limit]
        when = services.jobs.ingested_at([(d, hashes[d]) for d in page])
        items = [_info(store, d, when, services.uploads) for d in page]
        return DocumentPage(items=items, total=len(hashes), limit=limit, offset=offset)

    @router.get("/v1/documents/{document_id:path}", response_model=DocumentInfo)
    def get_document(document_id: str, request: Request) -> DocumentInfo:
        """One indexed document (404 if unknown)."""
        services = _services(request)
        store = _open_store(request)
        if store is None:
            raise DocumentNotFoundError(f"no document {document_id!r}: the store is empty", hint="upload documents")
        hashes = _catalog(services, store)
        when = services.jobs.ingested_at([(document_id, hashes.get(document_id, ""))])
        return _info(store, document_id, when, services.uploads)

    @router.delete("/v1/documents/{document_id:path}", status_code=202, response_model=JobAccepted)
    def delete_document(document_id: str, request: Request, response: Response) -> JobAccepted:
        """Delete a document as a job: its upload file, chunks, vectors, BM25 entries and unsupported graph facts.

        While a delete job for the document is queued or running, that job is returned again."""
        services = _services(request)
        store = _open_store(request)
        if store is None or store.chunks.get_document(document_id) is None:
            raise DocumentNotFoundError(
                f"no document {document_id!r}", hint="list the documents with GET /v1/documents"
            )
        pending = services.jobs.pending("delete", [document_id])  # deleting twice: the same job
        return _accepted(pending or services.runner.submit("delete", [document_id]), response)

    @router.get("/v1/jobs", response_model=JobList)
    def list_jobs(
        request: Request,
        limit: int = Query(20, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=10_000_000),
        status: JobStatus | None = Query(None),
    ) -> JobList:
        """Recent jobs, newest first."""
        services = _services(request)
        limit = min(limit, app_state(request).settings.jobs.list_limit)
        items, total = services.jobs.recent(limit=limit, offset=offset, status=status)
        return JobList(items=items, total=total, limit=limit, offset=offset)

    @router.get("/v1/jobs/{job_id}", response_model=JobRecord)
    def get_job(job_id: str, request: Request) -> JobRecord:
        """A job's status, progress by stage, timestamps, run report and errors (404 if unknown)."""
        return _services(request).jobs.get(job_id)

    return router
