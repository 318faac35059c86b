"""Composition root, stores: the knowledge store and the audit store the settings choose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StoreNotFoundError
from core.settings import GraphSettings, Settings
from pipelines.compose import lazy
from pipelines.store.layout import StoreLayout
from retrieval.base import Embedder

if TYPE_CHECKING:
    from kg.base import GraphStore
    from pipelines.store.base import AuditStore
    from pipelines.store.knowledge import KnowledgeStore


def open_store(
    settings: Settings, embedder: Embedder, *, create: bool, store_dir: Path | None = None
) -> KnowledgeStore:
    root = store_dir or settings.store_dir
    opener = lazy.KnowledgeStore.open_or_create if create else lazy.KnowledgeStore.open_existing
    return opener(
        root,
        embedding_model=embedder.model_name,
        dimension=embedder.dimension,
        snapshots_retained=settings.ingest.snapshots_retained,
        open_graph=graph_opener(settings.graph),
        vector_index=lazy.VectorIndexOptions(
            precision=settings.retrieval.vector_precision,
            ivf_min_vectors=settings.retrieval.vector_ivf_min_vectors,
            ivf_nprobe=settings.retrieval.vector_ivf_nprobe,
        ),
    )


def graph_opener(settings: GraphSettings) -> Callable[[Path], GraphStore] | None:
    """How the store opens its graph: ``None`` (the embedded networkx store) unless ``backend=neo4j``, whose driver
    is imported only then."""
    if settings.backend == "networkx":
        return None
    return lambda path: lazy.open_graph_store(settings, path)


def build_audit(settings: Settings, store: KnowledgeStore) -> AuditStore:
    """The audit store: PostgreSQL (or any SQLAlchemy URL) when ``KGRAG_AUDIT__URL`` is set, else the store's own."""
    return lazy.SqlAuditStore(settings.audit.url) if settings.audit.url else store.audit


def open_audit(settings: Settings) -> AuditStore:
    """The audit store alone (for reports, without opening the snapshot): ``KGRAG_AUDIT__URL``, else the store's
    ``audit.sqlite``, which must exist (a mistyped ``--store`` is an error, not an empty report)."""
    if settings.audit.url:
        return lazy.SqlAuditStore(settings.audit.url)
    path = StoreLayout(settings.store_dir).audit
    if not path.is_file():
        raise StoreNotFoundError(
            f"no answers recorded in {settings.store_dir} ({path.name} does not exist)",
            hint="pass the store the API answers from (--store DIR), or set KGRAG_AUDIT__URL",
        )
    return lazy.open_audit_store(None, path)
