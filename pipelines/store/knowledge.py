"""A store directory: the published snapshot (chunks, FAISS vectors, BM25, knowledge graph) and the audit log.

Readers open the snapshot that ``current`` names and see it whole, whatever a running ingestion does. A writer calls
:meth:`KnowledgeStore.begin_update` (a new snapshot, copied from the published one), changes it, and
:meth:`KnowledgeStore.save` publishes it with one atomic rename (see :mod:`pipelines.store.snapshots`). The audit store
sits beside the snapshots at a stable path, so answers survive re-indexing.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ConfigurationError, StoreCorruptError, StoreNotFoundError
from pipelines.store import snapshots
from pipelines.store.ingest_state import IngestState
from pipelines.store.layout import FORMAT_VERSION, MANIFEST, StoreLayout
from retrieval.sqlite_chunk_store import SqliteChunkStore

if TYPE_CHECKING:
    from kg.base import GraphStore
    from pipelines.store.sql_audit import SqliteAuditStore
    from retrieval.bm25_index import Bm25Index
    from retrieval.faiss_index import FaissVectorIndex


@dataclass(frozen=True)
class StoreParts:
    """How a store opens the parts whose libraries are heavy, each from its path in the snapshot (or the store root,
    for the audit store): the FAISS index (path, dimension), the BM25 index, the graph and the SQLite audit store.

    The composition root passes them (``pipelines.compose.stores.store_parts``, through its lazy accessors), so a run
    that touches only the chunk and state files (a no-change ``kgrag ingest``) imports none of FAISS, bm25s,
    networkx or SQLAlchemy.
    """

    vectors: Callable[[Path, int], FaissVectorIndex]
    keywords: Callable[[Path], Bm25Index]
    graph: Callable[[Path], GraphStore]
    audit: Callable[[Path], SqliteAuditStore]


class KnowledgeStore:
    """Everything ingestion writes and answering reads, for one store directory (one snapshot of it at a time).

    Every part is opened on first use, the FAISS index, BM25 index, graph and audit store through ``parts``, so a
    run that finds nothing changed neither loads nor imports them.
    """

    def __init__(
        self,
        root: Path,
        *,
        embedding_model: str,
        dimension: int,
        parts: StoreParts,
        snapshots_retained: int = 2,
    ) -> None:
        self.root = Path(root)
        self.embedding_model = embedding_model
        self.dimension = dimension
        self.parts = parts
        self.snapshots_retained = snapshots_retained
        self.root.mkdir(parents=True, exist_ok=True)
        self._audit: SqliteAuditStore | None = None
        self.snapshot_id = snapshots.current_snapshot_id(self.root)
        self._building = False
        self._directory = snapshots.published_dir(self.root)
        self._reset()

    def _reset(self) -> None:
        self._chunks: SqliteChunkStore | None = None
        self._state: IngestState | None = None
        self._vectors: FaissVectorIndex | None = None
        self._keywords: Bm25Index | None = None
        self._graph: GraphStore | None = None

    # ----- the snapshot's parts (opened on first use) -----

    @property
    def layout(self) -> StoreLayout:
        return StoreLayout(self.root, self._directory)

    @property
    def has_data(self) -> bool:
        """Whether a snapshot is open (a published one, or one being built)."""
        return self._directory is not None

    def _dir(self) -> Path:
        if self._directory is None:
            raise StoreNotFoundError(
                f"no kgrag store at {self.root}",
                hint=f"ingest documents first: `kgrag ingest data/ --store {self.root}`",
            )
        return self._directory

    @property
    def chunks(self) -> SqliteChunkStore:
        if self._chunks is None:
            self._dir()
            self._chunks = SqliteChunkStore(self.layout.chunks, durable=not self._building)
        return self._chunks

    @property
    def state(self) -> IngestState:
        if self._state is None:
            self._dir()
            self._state = IngestState(self.layout.state)
        return self._state

    @property
    def vectors(self) -> FaissVectorIndex:
        if self._vectors is None:
            self._dir()
            self._vectors = self.parts.vectors(self.layout.vectors, self.dimension)
        return self._vectors

    @property
    def keywords(self) -> Bm25Index:
        if self._keywords is None:
            self._dir()
            self._keywords = self.parts.keywords(self.layout.bm25)
        return self._keywords

    @property
    def graph(self) -> GraphStore:
        if self._graph is None:
            self._dir()
            self._graph = self.parts.graph(self.layout.graph)
        return self._graph

    @property
    def audit(self) -> SqliteAuditStore:
        """The answers, beside the snapshots (they survive re-indexing)."""
        if self._audit is None:
            self._audit = self.parts.audit(StoreLayout(self.root).audit)
        return self._audit

    # ----- snapshots -----

    def published_at(self) -> float | None:
        """When the open snapshot was published (Unix time, from its manifest), or None when unknown."""
        return snapshots.published_at(self._directory) if self._directory is not None else None

    @staticmethod
    def current_snapshot_id(root: Path) -> str | None:
        """Id of the published snapshot (one ``readlink``): compare with :attr:`snapshot_id` to notice a newer one."""
        return snapshots.current_snapshot_id(root)

    def begin_update(self) -> None:
        """Switch to a new snapshot copied from the published one; the published one stays as it is for readers.

        Call with the store's ingestion lock held.
        """
        if self._building:
            return
        self._close_snapshot()
        self._directory = snapshots.begin(self.root)
        self._building = True

    def _close_snapshot(self) -> None:
        if self._chunks is not None:
            self._chunks.close()
        if self._state is not None:
            self._state.close()
        self._reset()

    def save(self) -> None:
        """Publish the snapshot being built: write every index, the manifest last, then swap it in atomically.

        Without :meth:`begin_update` there is nothing to publish and this does nothing.
        """
        if not self._building:
            return
        directory = self._dir()
        self.vectors.save()
        self.keywords.save()
        self.graph.save()
        self.chunks.flush_to_disk()
        self.state  # noqa: B018 - creates state.sqlite in a brand-new store
        manifest = {
            "format_version": FORMAT_VERSION,
            "snapshot_id": directory.name,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "embedding_model": self.embedding_model,
            "dimension": self.dimension,
            "documents": self.chunks.document_count(),
            "chunks": self.chunks.chunk_count(),
            "vectors": len(self.vectors),
        }
        tmp = directory / f"{MANIFEST}.tmp"
        with tmp.open("w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest, indent=2))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, directory / MANIFEST)
        snapshots.publish(self.root, directory, retain=self.snapshots_retained)
        self.snapshot_id = directory.name
        self._building = False

    # ----- opening -----

    @staticmethod
    def read_manifest(root: Path) -> dict[str, object]:
        directory = snapshots.published_dir(root)
        path = (directory or root) / MANIFEST
        if directory is None or not path.exists():
            raise StoreNotFoundError(
                f"no kgrag store at {root}",
                hint=f"ingest documents first: `kgrag ingest data/ --store {root}`",
            )
        try:
            manifest = json.loads(path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreCorruptError(f"cannot read {path}: {exc}", hint="re-ingest into a new store directory") from exc
        if not isinstance(manifest, dict):
            raise StoreCorruptError(f"{path} is not a JSON object")
        return manifest

    @classmethod
    def open_existing(
        cls,
        root: Path,
        *,
        embedding_model: str,
        dimension: int,
        parts: StoreParts,
        snapshots_retained: int = 2,
    ) -> KnowledgeStore:
        """Open a store that ingestion has written; a missing one raises StoreNotFoundError with the fix."""
        manifest = cls.read_manifest(root)
        if manifest.get("embedding_model") != embedding_model or manifest.get("dimension") != dimension:
            raise ConfigurationError(
                f"store {root} was built with embedder {manifest.get('embedding_model')!r} "
                f"({manifest.get('dimension')}-d), but {embedding_model!r} ({dimension}-d) is configured",
                hint="use the same embedder, or re-ingest into a new store",
            )
        return cls(
            root,
            embedding_model=embedding_model,
            dimension=dimension,
            parts=parts,
            snapshots_retained=snapshots_retained,
        )

    @classmethod
    def open_or_create(
        cls,
        root: Path,
        *,
        embedding_model: str,
        dimension: int,
        parts: StoreParts,
        snapshots_retained: int = 2,
    ) -> KnowledgeStore:
        if snapshots.published_dir(root) is not None:
            return cls.open_existing(
                root,
                embedding_model=embedding_model,
                dimension=dimension,
                parts=parts,
                snapshots_retained=snapshots_retained,
            )
        return cls(
            root,
            embedding_model=embedding_model,
            dimension=dimension,
            parts=parts,
            snapshots_retained=snapshots_retained,
        )

    def snapshot_counts(self) -> dict[str, int]:
        """Documents, chunks, vectors, BM25 entries and graph counts of the open snapshot (what a run report's
        totals hold; the audit store is not opened)."""
        if not self.has_data:
            return {"documents": 0, "chunks": 0, "vectors": 0, "bm25": 0}
        graph = self.graph.counts()
        return {
            "documents": self.chunks.document_count(),
            "chunks": self.chunks.chunk_count(),
            "vectors": len(self.vectors),
            "bm25": len(self.keywords),
            **{f"graph_{k}": v for k, v in graph.items()},
        }

    def counts(self) -> dict[str, int]:
        """:meth:`snapshot_counts` and the number of recorded answers."""
        return {**self.snapshot_counts(), "answers": self.audit.count()}

    def close(self) -> None:
        """Close the snapshot's files and the audit store."""
        self._close_snapshot()
        if self._audit is not None:
            self._audit.close()
            self._audit = None
