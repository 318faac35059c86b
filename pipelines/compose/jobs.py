"""Composition root, jobs: the document jobs behind ``POST /v1/documents``, wired to the store and ingestor."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.settings import Settings
from pipelines.compose import lazy
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.stores import open_store
from retrieval.base import Embedder

if TYPE_CHECKING:
    from core.tracing import Tracing
    from pipelines.jobs.documents import DocumentJobs


def document_jobs(
    settings: Settings, embedder: Callable[[], Embedder], *, poll_s: float = 0.5, tracing: Tracing | None = None
) -> DocumentJobs:
    """Upload and delete jobs that open a fresh store per run and ingest with the configured ingestor (traced
    like ``kgrag ingest`` with ``tracing``)."""
    return lazy.DocumentJobs(
        settings,
        embedder,
        open_store=lambda emb: open_store(settings, emb, create=True),
        build_ingestor=lambda store, emb, progress: build_ingestor(settings, store, emb, progress, tracing),
        poll_s=poll_s,
    )
