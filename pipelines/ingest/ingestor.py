"""Ingestion: discover files, parse, chunk, embed into FAISS, index with BM25, extract into the knowledge graph.

Incremental at chunk level: a file whose bytes are unchanged is not parsed again, a document whose hash is unchanged
is not chunked again, and a changed document re-embeds and re-extracts only the chunks whose content hash is new.
Extractions come from a cache keyed by (chunk hash, extractor name = prompt version and model). With ``sync`` the
documents that disappeared from the sources are deleted, with everything in the graph only they supported. A run
that changes something builds a new snapshot and publishes it atomically (:mod:`pipelines.store.snapshots`), under the
store's lock; unreadable files are reported and skipped; the run report is saved in the store.
Parsing (with chunking) and embedding run on an engine (:mod:`pipelines.ingest.engines`): in this process by default,
or on Ray Data with ``--engine ray``; everything that touches the store stays here, so every engine yields the same
store. With a ``tracer``, a run is a span (``kgrag ingest`` or ``kgrag delete``) with the report's counts, and each
stage (discover, parse, chunk, embed, extract, bm25, save...) a child span.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import IngestEngineError, InputError
from core.settings import ChunkingSettings
from core.spans import span
from core.types import Chunk, Document, Extraction
from kg.base import Extractor
from pipelines.ingest.cache import SqliteExtractionCache, rebind
from pipelines.ingest.chunking import chunk_document
from pipelines.ingest.discovery import discover
from pipelines.ingest.engines.base import IngestEngine, ParsedFile
from pipelines.ingest.engines.local import LocalEngine
from pipelines.ingest.locking import IngestLock
from pipelines.ingest.parsers import SkippedSource, parse_file
from pipelines.ingest.progress import NoProgress, ProgressReporter
from pipelines.ingest.report import IngestReport, SkippedItem, save_report
from pipelines.store.ingest_state import SourceRecord
from pipelines.store.knowledge import KnowledgeStore
from retrieval.base import Embedder

if TYPE_CHECKING:
    import numpy as np
    from opentelemetry.trace import Tracer

__all__ = ["IngestReport", "Ingestor", "NoProgress", "ProgressReporter", "SkippedItem", "embedding_text"]


def embedding_text(chunk: Chunk) -> str:
    """What is embedded for a chunk: its document title (if any) then its text."""
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


class Ingestor:
    """Runs ingestion into one store with one embedder and one extractor (one run at a time per store)."""

    def __init__(
        self,
        store: KnowledgeStore,
        embedder: Embedder,
        extractor: Extractor,
        chunking: ChunkingSettings,
        progress: ProgressReporter | None = None,
        embed_batch: int = 256,
        max_file_bytes: int | None = 64 * 1024 * 1024,
        cache: SqliteExtractionCache | None = None,
        engine: IngestEngine | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.store = store
        self.tracer = tracer
        self.embedder = embedder
        #: Where parsing, chunking and embedding run: in this process (default) or on Ray.
        self.engine: IngestEngine = engine or LocalEngine(embedder, embed_batch)
        self.extractor = extractor
        self.chunking = chunking
        self.progress = progress or NoProgress()
        self.embed_batch = embed_batch
        self.max_file_bytes = max_file_bytes
        self.cache = cache or SqliteExtractionCache(store.layout.extraction_cache)

    # ----- entry points -----

    def ingest(self, paths: Sequence[Path], *, sync: bool = False) -> IngestReport:
        """Ingest ``paths``; with ``sync``, also delete the stored documents no longer found in them."""
        return self._locked(lambda report: self._ingest(paths, sync, report), "ingest")

    def delete(self, document_ids: Sequence[str]) -> IngestReport:
        """Delete documents by id, with their chunks, vectors, BM25 entries and the graph facts only they support."""

        def run(report: IngestReport) -> None:
            known = self.store.chunks.document_hashes() if self.store.has_data else {}
            unknown = [d for d in document_ids if d not in known]
            if unknown:
                raise InputError(
                    f"no document {unknown[0]!r} in the store {self.store.root}"
                    + (f" (and {len(unknown) - 1} more unknown ids)" if len(unknown) > 1 else ""),
                    hint="list the stored ids in reports/latest.json or with `kgrag ingest --json`",
                )
            self._apply(report, [], list(dict.fromkeys(document_ids)), {}, [])

        return self._locked(run, "delete")

    def _locked(self, body: object, purpose: str) -> IngestReport:
        report = IngestReport(
            run_id=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{time.time_ns() % 1_000_000:06d}",
            started_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            command=purpose,
            extractor=self.extractor.name,
            engine=self.engine.name,
            previous_snapshot_id=self.store.snapshot_id,
        )
        with span(self.tracer, f"kgrag {purpose}", {"kgrag.ingest.run_id": report.run_id}) as opened:
            try:
                return self._run(body, purpose, report)
            finally:
                if opened.is_recording():
                    opened.set_attributes(report.span_attributes())

    def _run(self, body: object, purpose: str, report: IngestReport) -> IngestReport:
        t0 = time.perf_counter()
        lock = IngestLock(self.store.layout.lock, purpose=purpose)
        lock.acquire()  # a refused run raises StoreBusyError here and writes no report over the running one's
        try:
            report.lock_taken_over_from = lock.taken_over_from
            report.previous_snapshot_id = KnowledgeStore.current_snapshot_id(self.store.root)
            assert callable(body)
            body(report)
        except BaseException as exc:
            report.status, report.error = "failed", str(exc) or type(exc).__name__
            raise
        finally:
            try:
                report.durations_s["total"] = round(time.perf_counter() - t0, 3)
                report.finished_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                report.snapshot_id = KnowledgeStore.current_snapshot_id(self.store.root)
                if report.status != "failed":
                    report.status = "partial" if report.skipped or report.extraction_failures else "ok"
                    report.totals = self._totals(report.changed_anything)
                save_report(self.store.layout.reports, report)
            finally:
                lock.release()
                self.engine.close()  # a local Ray instance started for this run ends with it
        return report

    def _totals(self, full: bool) -> dict[str, int]:
        if full:
            return self.store.snapshot_counts()
        if not self.store.has_data:
            return {}
        return {"documents": self.store.chunks.document_count(), "chunks": self.store.chunks.chunk_count()}

    # ----- ingest -----

    def _ingest(self, paths: Sequence[Path], sync: bool, report: IngestReport) -> None:
        with self._timed(report, "discover"):
            found = discover(paths, max_file_bytes=self.max_file_bytes)
        has_data = self.store.has_data
        stored = self.store.chunks.document_hashes() if has_data else {}
        sources = self.store.state.sources() if has_data else {}
        chunking_key = f"{self.chunking.max_chars}/{self.chunking.min_chars}"
        rechunk_all = has_data and self.store.state.get_meta("chunking") not in (None, chunking_key)
        skipped = list(found.skipped)
        documents: dict[str, Document] = {}
        seen: dict[str, str] = {}  # document id -> source, for every document found in this run
        protected: set[str] = set()  # documents of files that exist but could not be read this time
        new_sources: dict[str, SourceRecord] = {}
        prechunked: dict[str, list[Chunk]] = {}  # chunks the engine made along with parsing (Ray), by document id
        with self._timed(report, "parse"):
            self.progress.start("files", len(found.files))
            # Hash every file first, so that the engine gets all the files to parse at once (a Ray run parses them
            # in parallel); then decide file by file, in order, exactly as if each had been parsed in turn.
            digests: list[str | OSError] = []
            to_parse: list[tuple[Path, str]] = []
            for path, file_id in found.files:
                try:
                    digest = _file_sha256(path)
                except OSError as exc:
                    digests.append(exc)
                    continue
                digests.append(digest)
                if not self._maybe_unchanged(sources.get(file_id), digest, stored, rechunk_all):
                    to_parse.append((path, file_id))
            engine_results = self.engine.parse(to_parse, self.chunking, self.progress)
            queued = set(to_parse)
            for (path, file_id), hashed in zip(found.files, digests, strict=True):
                if isinstance(hashed, OSError):
                    skipped.append(SkippedSource(str(path), f"cannot read ({hashed.strerror or hashed})"))
                    protected.update(sources[file_id].document_ids if file_id in sources else ())
                    self.progress.advance("files")
                    continue
                digest, prior = hashed, sources.get(file_id)
                if (
                    prior is not None
                    and self._maybe_unchanged(prior, digest, stored, rechunk_all)
                    and all(d not in seen for d in prior.document_ids)
                ):
                    seen.update(dict.fromkeys(prior.document_ids, str(path)))
                    report.documents_unchanged += len(prior.document_ids)
                    self.progress.advance("files")
                    continue
                if (path, file_id) in queued:
                    result = next(engine_results)
                else:  # unchanged, but one of its documents came from another file in this run: parse it here
                    result = ParsedFile(path, file_id, parse_file(path, file_id))
                    self.progress.advance("files")
                parsed = result.parsed
                skipped.extend(parsed.skipped)
                if parsed.skipped and prior is not None:
                    protected.update(prior.document_ids)
                ids = []
                for doc in parsed.documents:
                    if doc.id in seen:
                        skipped.append(
                            SkippedSource(
                                doc.source, f"document id {doc.id!r} already ingested from {seen[doc.id]} in this run"
                            )
                        )
                        continue
                    seen[doc.id] = doc.source
                    ids.append(doc.id)
                    if stored.get(doc.id) == doc.sha256 and not rechunk_all:
                        report.documents_unchanged += 1
                    else:
                        documents[doc.id] = doc
                        if result.chunks is not None:
                            prechunked[doc.id] = result.chunks[doc.id]
                if not parsed.skipped:
                    new_sources[file_id] = SourceRecord(digest, tuple(ids))
        for file_id in found.skipped_ids:
            if file_id in sources:
                protected.update(sources[file_id].document_ids)
        report.skipped = [SkippedItem(source=s.source, reason=s.reason) for s in skipped]
        report.documents_added = sum(1 for d in documents if d not in stored)
        report.documents_changed = len(documents) - report.documents_added
        deleted: list[str] = []
        if sync:
            if found.missing_roots:
                report.notes.append(f"sync skipped: {', '.join(found.missing_roots)} does not exist")
            elif not seen and stored:
                report.notes.append("sync skipped: the sources yielded no documents; refusing to empty the store")
            else:
                deleted = sorted(set(stored) - set(seen) - protected)
        present = {file_id for _, file_id in found.files} | found.skipped_ids
        gone_sources = [f for f in sources if f not in present] if sync and not found.missing_roots else []
        stale = self.store.state.stale_chunks(self.extractor.name) if has_data else []
        if not (documents or deleted or stale or (new_sources and has_data and rechunk_all)):
            if not has_data and not documents:
                return
            report.notes.append("nothing changed: the published snapshot is kept")
            return
        self._apply(
            report, list(documents.values()), deleted, new_sources, stale, gone_sources, chunking_key, prechunked
        )

    @staticmethod
    def _maybe_unchanged(prior: SourceRecord | None, digest: str, stored: dict[str, str], rechunk_all: bool) -> bool:
        """The file's bytes and all its documents are as stored (it is skipped unless another file in this run
        yielded one of its document ids first)."""
        return (
            prior is not None
            and prior.sha256 == digest
            and not rechunk_all
            and all(d in stored for d in prior.document_ids)
        )

    # ----- applying changes to a new snapshot -----

    def _apply(
        self,
        report: IngestReport,
        documents: list[Document],
        deleted: list[str],
        new_sources: dict[str, SourceRecord],
        stale: list[str],
        gone_sources: Sequence[str] = (),
        chunking_key: str | None = None,
        prechunked: dict[str, list[Chunk]] | None = None,
    ) -> None:
        store = self.store
        report.changed_anything = True
        with self._timed(report, "snapshot"):
            store.begin_update()
            graph, chunks_db, state = store.graph, store.chunks, store.state
            before = graph.counts()
        facts_removed = 0
        with self._timed(report, "chunk"):
            self.progress.start("chunks", len(documents))
            chunked = []
            for doc in documents:
                chunks = (prechunked or {}).get(doc.id)
                if chunks is None:
                    chunks = chunk_document(doc, max_chars=self.chunking.max_chars, min_chars=self.chunking.min_chars)
                chunked.append((doc, chunks))
                self.progress.advance("chunks")
        with self._timed(report, "delete"):
            gone: list[str] = []
            for doc_id in deleted:
                gone += chunks_db.chunk_ids_for_document(doc_id)
                store.vectors.remove(chunks_db.delete_document(doc_id))
            if gone:  # one pass over the graph for all of them
                facts_removed += graph.remove_chunks(gone)["facts"]
                state.forget_chunks(gone)
            report.chunks_removed += len(gone)
            report.documents_deleted = len(deleted)
            report.deleted_documents = deleted
        to_embed: list[tuple[int, Chunk]] = []
        to_extract: list[Chunk] = []
        with self._timed(report, "index"):
            replaced: list[str] = []
            updates = []
            for doc, chunks in chunked:
                old = chunks_db.get_document(doc.id)
                vector_ids, kept, removed = chunks_db.update_document(doc, chunks)
                store.vectors.remove([v for _, v in removed])
                replaced += [c for c, _ in removed]
                updates.append((doc, chunks, vector_ids, kept, old is not None and old.title != doc.title))
            if replaced:  # one pass over the graph for all of them
                facts_removed += graph.remove_chunks(replaced)["facts"]
                state.forget_chunks(replaced)
                report.chunks_removed += len(replaced)
            for doc, chunks, vector_ids, kept, retitled in updates:
                for chunk, vector_id, was_kept in zip(chunks, vector_ids, kept, strict=True):
                    if not was_kept or retitled:
                        to_embed.append((vector_id, chunk))
                    if not was_kept:
                        to_extract.append(chunk)
                    else:
                        report.chunks_reused += 1
                graph.upsert_document(doc)
                graph.upsert_chunks(chunks)
            if stale:
                stale_chunks = chunks_db.get_chunks(stale)
                facts_removed += graph.remove_chunks(stale_chunks)["facts"]
                for chunk in stale_chunks.values():
                    document = chunks_db.get_document(chunk.document_id)
                    if document is not None:
                        graph.upsert_document(document)
                    graph.upsert_chunks([chunk])
                    to_extract.append(chunk)
        with self._timed(report, "embed"):
            vectors = self._embed([c for _, c in to_embed])
            retitled_ids = [v for v, _ in to_embed]
            store.vectors.remove(retitled_ids)
            store.vectors.add(retitled_ids, vectors)
            report.chunks_embedded = len(to_embed)
        with self._timed(report, "extract"):
            self._extract(to_extract, report)
        with self._timed(report, "bm25"):
            self._index_keywords(texts_changed=bool(documents), removed=gone)
        after = graph.counts()
        report.facts_removed = facts_removed
        report.facts_added = after["facts"] - before["facts"] + facts_removed
        report.entities_before, report.entities_after = before["entities"], after["entities"]
        with self._timed(report, "save"):
            if new_sources:
                state.put_sources(new_sources)
            if gone_sources:
                state.remove_sources(gone_sources)
            if chunking_key is not None:
                state.set_meta("chunking", chunking_key)
            self.progress.start("publish", 1)
            store.save()
            self.progress.advance("publish")

    def _index_keywords(self, *, texts_changed: bool, removed: list[str]) -> None:
        """A run that only removed chunks re-scores the BM25 index's remaining ones from their term counts, when it
        has them and then holds exactly the chunk store's chunks in its order; other runs rebuild it from the texts."""
        keywords, chunks_db = self.store.keywords, self.store.chunks
        if not texts_changed and keywords.updatable:
            keywords.remove(removed)
            if keywords.chunk_ids() == chunks_db.chunk_ids():
                return
        ids, texts = [], []
        for chunk in chunks_db.iter_chunks():
            ids.append(chunk.id)
            texts.append(embedding_text(chunk))
        keywords.rebuild(ids, texts)

    @contextmanager
    def _timed(self, report: IngestReport, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        with span(self.tracer, f"ingest.{stage}", {"kgrag.ingest.stage": stage}):
            yield
        report.durations_s[stage] = round(report.durations_s.get(stage, 0.0) + time.perf_counter() - t0, 3)

    def _embed(self, chunks: list[Chunk]) -> np.ndarray:
        self.progress.start("embeddings", len(chunks))
        vectors = self.engine.embed([embedding_text(c) for c in chunks], self.progress)
        if vectors.shape != (len(chunks), self.embedder.dimension):
            raise IngestEngineError(
                f"the {self.engine.name} engine returned vectors of shape {vectors.shape}, "
                f"expected ({len(chunks)}, {self.embedder.dimension})"
            )
        return vectors

    def _extract(self, chunks: list[Chunk], report: IngestReport) -> None:
        self.progress.start("extraction", len(chunks))
        name = self.extractor.name
        cached = self.cache.get_many([c.sha256 for c in chunks], name)
        marks: dict[str, str] = {}
        fresh: list[tuple[str, Extraction]] = []
        for chunk in chunks:
            hit = cached.get(chunk.sha256)
            if hit is not None:
                extraction = rebind(hit, chunk.id)
                report.extraction_cache_hits += 1
            else:
                extraction = self.extractor.extract(chunk)
                report.chunks_extracted += 1
                report.prompt_tokens += extraction.prompt_tokens or 0
                report.completion_tokens += extraction.completion_tokens or 0
                if extraction.error is None:
                    cached[chunk.sha256] = extraction
                    fresh.append((chunk.sha256, extraction))
                    if len(fresh) >= 32:  # keep paid-for work across a crash
                        self.cache.put_many(fresh)
                        fresh = []
            if extraction.error:
                report.extraction_failures += 1
                report.extraction_errors.append(
                    SkippedItem(source=f"{chunk.source} (chunk {chunk.id})", reason=extraction.error)
                )
            self.store.graph.add_extraction(extraction)
            marks[chunk.id] = "" if extraction.error else name
            self.progress.advance("extraction")
        self.cache.put_many(fresh)
        self.store.state.mark_extracted(marks)


def _file_sha256(path: Path) -> str:
    """sha256 of the file's bytes, read with plain ``os.read`` calls (no buffered file object: a no-change run hashes
    every source file, and most are small)."""
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, 1 << 20):
            digest.update(block)
    finally:
        os.close(fd)
    return digest.hexdigest()
