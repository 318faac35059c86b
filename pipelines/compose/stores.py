"""Composition root, stores: the knowledge store (with the parts it opens on first use) and the audit store the
settings choose."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import StoreNotFoundError
from core.settings import GraphSettings, Settings
from pipelines.compose import lazy
from pipelines.store.knowledge import KnowledgeStore, StoreParts
from pipelines.store.layout import StoreLayout
from retrieval.base import Embedder

if TYPE_CHECKING:
    from kg.base import GraphStore
    from pipelines.store.base import AuditStore
    from retrieval.faiss_index import FaissVectorIndex


def open_store(
    settings: Settings, embedder: Embedder, *, create: bool, store_dir: Path | None = None
) -> KnowledgeStore:
    root = store_dir or settings.store_dir
    opener = KnowledgeStore.open_or_create if create else KnowledgeStore.open_existing
    return opener(
        root,
        embedding_model=embedder.model_name,
        dimension=embedder.dimension,
        parts=store_parts(settings),
        snapshots_retained=settings.ingest.snapshots_retained,
    )


def store_parts(settings: Settings) -> StoreParts:
    """The store's FAISS index (with the configured precision and partitioning), BM25 index, graph (embedded, or
    Neo4j for ``backend=neo4j``) and SQLite audit store; each library is imported when its part is first opened."""
    r = settings.retrieval

    def vectors(path: Path, dimension: int) -> FaissVectorIndex:
        return lazy.FaissVectorIndex(
            path,
            dimension,
            precision=r.vector_precision,
            ivf_min_vectors=r.vector_ivf_min_vectors,
            ivf_nprobe=r.vector_ivf_nprobe,
        )

    return StoreParts(
        vectors=vectors,
        keywords=lambda path: lazy.Bm25Index(path),
        graph=graph_opener(settings.graph),
        audit=lambda path: lazy.SqliteAuditStore(path),
    )


def graph_opener(settings: GraphSettings) -> Callable[[Path], GraphStore]:
    """How the store opens its graph: the embedded networkx store, or for ``backend=neo4j`` the Bolt store, whose
    driver is imported only then."""
    if settings.backend == "networkx":
        return lambda path: lazy.NetworkxGraphStore(path)
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
