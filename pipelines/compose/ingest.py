"""Composition root, ingestion: the extractor, the engine and the ingestor the settings choose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.settings import Settings
from kg.base import Extractor
from kg.offline_extractor import OfflineExtractor
from pipelines.compose import lazy
from pipelines.compose.models import prompt_registry
from pipelines.compose.tracing import model_tracer, tracer_of
from pipelines.ingest.engines.base import IngestEngine
from pipelines.ingest.progress import ProgressReporter
from retrieval.base import Embedder

if TYPE_CHECKING:
    from core.tracing import Tracing
    from pipelines.ingest.ingestor import Ingestor
    from pipelines.store.knowledge import KnowledgeStore


def build_extractor(settings: Settings, tracing: Tracing | None = None) -> Extractor:
    if settings.extraction.extractor == "offline":
        return OfflineExtractor()
    client = lazy.ModelClient.from_settings(settings, traced=model_tracer(tracing))
    client.served_models()  # fail now, with the fix, rather than on the first chunk
    registry = prompt_registry(settings)
    template = registry.resolve("extraction", settings.extraction.prompt_label)
    return lazy.LLMExtractor(
        client,
        template,
        registry.render,
        max_retries=settings.extraction.max_retries,
        max_tokens=settings.extraction.max_tokens,
    )


def build_ingestor(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    progress: ProgressReporter | None = None,
    tracing: Tracing | None = None,
) -> Ingestor:
    """The ingestor of the settings' extractor and engine; with ``tracing``, its runs, stages and the extractor's
    model calls are spans."""
    return lazy.Ingestor(
        store,
        embedder,
        build_extractor(settings, tracing),
        settings.chunking,
        progress,
        max_file_bytes=settings.ingest.max_file_bytes,
        engine=build_ingest_engine(settings, embedder),
        tracer=tracer_of(tracing),
    )


def build_ingest_engine(settings: Settings, embedder: Embedder) -> IngestEngine:
    """The engine of ``settings.ingest.engine``: in this process (``local``) or on Ray Data (``ray``)."""
    if settings.ingest.engine == "ray":
        return lazy.RayEngine(settings.ingest.ray, settings.embedding, embedder.dimension)
    return lazy.LocalEngine(embedder)
