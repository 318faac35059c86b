"""Ingestion: discover files, parse, chunk, embed into FAISS, index with BM25, extract into the knowledge graph.

Unreadable files are reported and skipped; the rest of the run completes. Documents whose content hash is unchanged
are not re-processed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import numpy as np
from pydantic import BaseModel, Field

from core.settings import ChunkingSettings
from core.types import Chunk, Document
from kg.base import Extractor
from pipelines.chunking import chunk_document
from pipelines.parsers import SkippedSource, parse_file
from pipelines.store import KnowledgeStore
from retrieval.base import Embedder


class ProgressReporter(Protocol):
    """Receives progress of the long stages (the CLI shows them as rich progress bars)."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None: ...


class NoProgress:
    """A reporter that shows nothing (library use, tests, the API's background jobs)."""

    def start(self, stage: str, total: int) -> None:
        return None

    def advance(self, stage: str, amount: int = 1) -> None:
        return None


class SkippedItem(BaseModel):
    """A source that was not ingested, with the reason."""

    source: str
    reason: str


class IngestReport(BaseModel):
    """What one ingestion run did."""

    documents_added: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    chunks_embedded: int = 0
    extraction_failures: int = 0
    extraction_errors: list[SkippedItem] = Field(default_factory=list)
    skipped: list[SkippedItem] = Field(default_factory=list)
    durations_s: dict[str, float] = Field(default_factory=dict)
    totals: dict[str, int] = Field(default_factory=dict)

    @property
    def documents_ingested(self) -> int:
        return self.documents_added + self.documents_changed


def discover(paths: Sequence[Path]) -> tuple[list[tuple[Path, str]], list[SkippedSource]]:
    """Files to ingest with their document ids, and the paths that cannot be ingested.

    A file named directly gets its file name as id; files under a named folder get their path relative to it.
    Hidden files and folders are ignored; symbolic links to folders are not followed.
    """
    found: list[tuple[Path, str]] = []
    skipped: list[SkippedSource] = []
    for root in paths:
        if not root.exists():
            skipped.append(SkippedSource(str(root), "does not exist"))
        elif root.is_file():
            found.append((root, root.name))
        elif root.is_dir():
            for folder, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    if not name.startswith("."):
                        path = Path(folder) / name
                        found.append((path, path.relative_to(root).as_posix()))
        else:
            skipped.append(SkippedSource(str(root), "not a regular file or folder"))
    return found, skipped


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its document title (if any) then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class Ingestor:
    """Runs ingestion into one store with one embedder and one extractor."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        extractor: Extractor,
        chunking: ChunkingSettings,
        progress: ProgressReporter | None = None,
        embed_batch: int = 256,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.extractor = extractor
        self.chunking = chunking
        self.progress = progress or NoProgress()
        self.embed_batch = embed_batch

    def ingest(self, paths: Sequence[Path]) -> IngestReport:
        report = IngestReport()
        with self._timed(report, "discover"):
            files, skipped = discover(paths)
        documents = self._parse(files, report, skipped)
        report.skipped = [SkippedItem(source=s.source, reason=s.reason) for s in skipped]
        with self._timed(report, "chunk"):
            todo = self._changed(documents, report)
            chunked = [
                (
                    doc,
                    chunk_document(doc, max_chars=self.chunking.max_chars, min_chars=self.chunking.min_chars),
                )
                for doc in todo
            ]
        all_chunks = [c for _, chunks in chunked for c in chunks]
        with self._timed(report, "embed"):
            vectors = self._embed(all_chunks)
        with self._timed(report, "index"):
            offset = 0
            for doc, chunks in chunked:
                old = self.store.chunks.chunks_by_vector_ids(self.store.chunks.vector_ids_for_document(doc.id))
                stale = {c.id for c in old.values()} - {c.id for c in chunks}
                if stale:
                    self.store.graph.remove_chunks(stale)
                vector_ids, replaced = self.store.chunks.put_document(doc, chunks)
                if replaced:
                    self.store.vectors.remove(replaced)
                self.store.vectors.add(vector_ids, vectors[offset : offset + len(chunks)])
                offset += len(chunks)
                self.store.graph.upsert_document(doc)
                self.store.graph.upsert_chunks(chunks)
            report.chunks_embedded = len(all_chunks)
        with self._timed(report, "extract"):
            self._extract(all_chunks, report)
        with self._timed(report, "bm25"):
            if chunked or not len(self.store.keywords):
                ids, texts = [], []
                for chunk in self.store.chunks.iter_chunks():
                    ids.append(chunk.id)
                    texts.append(embedding_text(chunk))
                self.store.keywords.rebuild(ids, texts)
        with self._timed(report, "save"):
            self.store.save()
        report.totals = self.store.counts()
        return report

    @contextmanager
    def _timed(self, report: IngestReport, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        report.durations_s[stage] = round(time.perf_counter() - t0, 3)

    def _parse(
        self, files: list[tuple[Path, str]], report: IngestReport, skipped: list[SkippedSource]
    ) -> list[Document]:
        documents: dict[str, Document] = {}
        with self._timed(report, "parse"):
            self.progress.start("files", len(files))
            for path, doc_id in files:
                parsed = parse_file(path, doc_id)
                skipped.extend(parsed.skipped)
                for doc in parsed.documents:
                    if doc.id in documents:
                        skipped.append(
                            SkippedSource(
                                doc.source,
                                f"document id {doc.id!r} already ingested from {documents[doc.id].source} in this run",
                            )
                        )
                    else:
                        documents[doc.id] = doc
                self.progress.advance("files")
        return list(documents.values())

    def _changed(self, documents: list[Document], report: IngestReport) -> list[Document]:
        todo = []
        for doc in documents:
            existing = self.store.chunks.get_document(doc.id)
            if existing is None:
                report.documents_added += 1
                todo.append(doc)
            elif existing.sha256 != doc.sha256:
                report.documents_changed += 1
                todo.append(doc)
            else:
                report.documents_unchanged += 1
        return todo

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        self.progress.start("embeddings", len(chunks))
        parts = []
        for i in range(0, len(chunks), self.embed_batch):
            batch = chunks[i : i + self.embed_batch]
            parts.append(self.embedder.embed([embedding_text(c) for c in batch]))
            self.progress.advance("embeddings", len(batch))
        if not parts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.vstack(parts)

    def _extract(self, chunks: list[Chunk], report: IngestReport) -> None:
        self.progress.start("extraction", len(chunks))
        for chunk in chunks:
            extraction = self.extractor.extract(chunk)
            if extraction.error:
                report.extraction_failures += 1
                report.extraction_errors.append(
                    SkippedItem(source=f"{chunk.source} (chunk {chunk.id})", reason=extraction.error)
                )
            self.store.graph.add_extraction(extraction)
            self.progress.advance("extraction")
