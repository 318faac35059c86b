"""Composition root, stores: the knowledge store and the audit store the settings choose."""

from __future__ import annotations

from pathlib import Path

from core.settings import Settings
from pipelines.store.base import AuditStore
from pipelines.store.knowledge import KnowledgeStore
from pipelines.store.sql_audit import SqlAuditStore
from retrieval.base import Embedder
from retrieval.faiss_index import VectorIndexOptions


def open_store(
    settings: Settings, embedder: Embedder, *, create: bool, store_dir: Path | None = None
) -> KnowledgeStore:
    root = store_dir or settings.store_dir
    opener = KnowledgeStore.open_or_create if create else KnowledgeStore.open_existing
    return opener(
        root,
        embedding_model=embedder.model_name,
        dimension=embedder.dimension,
        snapshots_retained=settings.ingest.snapshots_retained,
        graph_settings=settings.graph,
        vector_index=VectorIndexOptions(
            precision=settings.retrieval.vector_precision,
            ivf_min_vectors=settings.retrieval.vector_ivf_min_vectors,
            ivf_nprobe=settings.retrieval.vector_ivf_nprobe,
        ),
    )


def build_audit(settings: Settings, store: KnowledgeStore) -> AuditStore:
    """The audit store: PostgreSQL (or any SQLAlchemy URL) when ``KGRAG_AUDIT__URL`` is set, else the store's own."""
    return SqlAuditStore(settings.audit.url) if settings.audit.url else store.audit
