"""A store directory: the chunk store, FAISS vectors, BM25 index, knowledge graph and audit log, opened together."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigurationError, StoreCorruptError, StoreNotFoundError
from kg.networkx_store import NetworkxGraphStore
from pipelines.audit_store import SqliteAuditStore
from retrieval.bm25_index import Bm25Index
from retrieval.faiss_index import FaissVectorIndex
from retrieval.sqlite_chunk_store import SqliteChunkStore

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class StoreLayout:
    """File names inside a store directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def chunks(self) -> Path:
        return self.root / "chunks.sqlite"

    @property
    def vectors(self) -> Path:
        return self.root / "vectors.faiss"

    @property
    def bm25(self) -> Path:
        return self.root / "bm25"

    @property
    def graph(self) -> Path:
        return self.root / "graph.json"

    @property
    def audit(self) -> Path:
        return self.root / "audit.sqlite"


class KnowledgeStore:
    """Everything ingestion writes and answering reads, for one store directory."""

    def __init__(self, root: Path, *, embedding_model: str, dimension: int) -> None:
        self.layout = StoreLayout(root)
        self.embedding_model = embedding_model
        self.dimension = dimension
        root.mkdir(parents=True, exist_ok=True)
        self.chunks = SqliteChunkStore(self.layout.chunks)
        self.vectors = FaissVectorIndex(self.layout.vectors, dimension)
        self.keywords = Bm25Index(self.layout.bm25)
        self.graph = NetworkxGraphStore(self.layout.graph)
        self.audit = SqliteAuditStore(self.layout.audit)

    @staticmethod
    def read_manifest(root: Path) -> dict[str, object]:
        layout = StoreLayout(root)
        if not layout.manifest.exists():
            raise StoreNotFoundError(
                f"no kgrag store at {root}",
                hint=f"ingest documents first: `kgrag ingest data/ --store {root}`",
            )
        try:
            manifest = json.loads(layout.manifest.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreCorruptError(
                f"cannot read {layout.manifest}: {exc}", hint="re-ingest into a new store directory"
            ) from exc
        if not isinstance(manifest, dict):
            raise StoreCorruptError(f"{layout.manifest} is not a JSON object")
        return manifest

    @classmethod
    def open_existing(cls, root: Path, *, embedding_model: str, dimension: int) -> KnowledgeStore:
        """Open a store that ingestion has written; a missing one raises StoreNotFoundError with the fix."""
        manifest = cls.read_manifest(root)
        if manifest.get("embedding_model") != embedding_model or manifest.get("dimension") != dimension:
            raise ConfigurationError(
                f"store {root} was built with embedder {manifest.get('embedding_model')!r} "
                f"({manifest.get('dimension')}-d), but {embedding_model!r} ({dimension}-d) is configured",
                hint="use the same embedder, or re-ingest into a new store",
            )
        return cls(root, embedding_model=embedding_model, dimension=dimension)

    @classmethod
    def open_or_create(cls, root: Path, *, embedding_model: str, dimension: int) -> KnowledgeStore:
        if StoreLayout(root).manifest.exists():
            return cls.open_existing(root, embedding_model=embedding_model, dimension=dimension)
        return cls(root, embedding_model=embedding_model, dimension=dimension)

    def save(self) -> None:
        """Persist every index, then the manifest last (its presence marks a usable store)."""
        self.vectors.save()
        self.keywords.save()
        self.graph.save()
        manifest = {
            "format_version": FORMAT_VERSION,
            "embedding_model": self.embedding_model,
            "dimension": self.dimension,
            "documents": self.chunks.document_count(),
            "chunks": self.chunks.chunk_count(),
            "vectors": len(self.vectors),
        }
        tmp = self.layout.manifest.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=2), "utf-8")
        os.replace(tmp, self.layout.manifest)

    def counts(self) -> dict[str, int]:
        graph = self.graph.counts()
        return {
            "documents": self.chunks.document_count(),
            "chunks": self.chunks.chunk_count(),
            "vectors": len(self.vectors),
            "bm25": len(self.keywords),
            **{f"graph_{k}": v for k, v in graph.items()},
            "answers": self.audit.count(),
        }
