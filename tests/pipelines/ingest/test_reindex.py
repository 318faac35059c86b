"""Incremental re-indexing with real parts: chunk-level change detection, the extraction cache, deletion cascades,
snapshots that readers see whole, the run report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.types import Chunk, Extraction
from kg.offline_extractor import OfflineExtractor
from pipelines.store import snapshots
from pipelines.store.knowledge import KnowledgeStore
from tests.pipelines.ingest.reindex_helpers import (
    CountingEmbedder,
    fingerprint,
    open_reader,
    run_ingest,
    write_v1,
    write_v2,
)
from tests.retrieval.legacy_bm25 import save_as_format_1


class RenamedExtractor(OfflineExtractor):
    """The offline extractor under another name, as after a prompt-version or model change; counts its calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0

    def extract(self, chunk: Chunk) -> Extraction:
        self.calls += 1
        return super().extract(chunk)


def test_unchanged_rerun_embeds_and_extracts_nothing_and_keeps_the_snapshot(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    store, first = run_ingest(root, embedder, [src])
    assert first.documents_added == 3 and first.status == "ok" and first.snapshot_id
    spy = CountingEmbedder(embedder)
    extractor = RenamedExtractor("offline-v1")
    store, again = run_ingest(root, spy, [src], extractor=extractor)
    assert (again.documents_unchanged, again.documents_ingested, again.chunks_embedded) == (3, 0, 0)
    assert spy.texts == [] and extractor.calls == 0
    assert again.snapshot_id == first.snapshot_id and not again.changed_anything
    assert snapshots.list_snapshots(root) == [first.snapshot_id]
    latest = json.loads((root / "reports" / "latest.json").read_text("utf-8"))
    assert latest["run_id"] == again.run_id and latest["documents_unchanged"] == 3
    assert (root / "reports" / f"{first.run_id}.json").exists()


def test_changed_document_reembeds_only_its_new_chunks(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    store, _ = run_ingest(root, embedder, [src])
    plan_chunks = store.chunks.chunk_ids_for_document("plan.md")
    assert len(plan_chunks) >= 4, "the test needs a multi-chunk document"
    text = (src / "plan.md").read_text("utf-8")
    (src / "plan.md").write_text(text.replace("every week", "every Tuesday"), "utf-8")
    spy = CountingEmbedder(embedder)
    extractor = RenamedExtractor("offline-v1")
    store, report = run_ingest(root, spy, [src], extractor=extractor)
    assert (report.documents_changed, report.documents_unchanged) == (1, 2)
    assert report.chunks_embedded == len(spy.texts) == 1, spy.texts
    assert "every Tuesday" in spy.texts[0]
    assert extractor.calls == 1 and report.chunks_extracted == 1
    assert report.chunks_reused == len(plan_chunks) - 1 and report.chunks_removed == 1
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(store) == fingerprint(clean)


def test_extraction_cache_follows_the_extractor_name(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    store, first = run_ingest(root, embedder, [src])
    n_chunks = store.chunks.chunk_count()
    v2 = RenamedExtractor("offline-v2-test")
    store, second = run_ingest(root, embedder, [src], extractor=v2)
    assert second.chunks_embedded == 0 and v2.calls == n_chunks == second.chunks_extracted
    assert second.snapshot_id != first.snapshot_id
    assert store.state.stale_chunks("offline-v2-test") == []
    v1 = RenamedExtractor("offline-v1")
    store, third = run_ingest(root, embedder, [src], extractor=v1)
    assert v1.calls == 0 and third.extraction_cache_hits == n_chunks, "switching back is served by the cache"
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(store) == fingerprint(clean)


def test_sync_deletes_vanished_documents_and_only_their_facts(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    store, _ = run_ingest(root, embedder, [src])
    names = store.graph.entity_names()
    assert "zora lindqvist" in names and "brandt logistics" in names
    write_v2(src)
    store, report = run_ingest(root, embedder, [src], sync=True)
    assert (report.documents_added, report.documents_changed, report.documents_deleted) == (1, 1, 1)
    assert report.deleted_documents == ["old.txt"] and report.facts_removed > 0
    names = store.graph.entity_names()
    assert "zora lindqvist" not in names, "an entity only the deleted document mentioned is gone"
    assert "brandt logistics" in names, "an entity other chunks still mention stays"
    assert store.chunks.get_document("old.txt") is None
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(store) == fingerprint(clean)


def test_sync_never_empties_the_store_when_a_root_is_missing(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    run_ingest(root, embedder, [src])
    store, report = run_ingest(root, embedder, [src, tmp_path / "unmounted"], sync=True)
    assert report.documents_deleted == 0 and store.chunks.document_count() == 3
    assert any("sync skipped" in n for n in report.notes)


def test_delete_by_id_and_unknown_id(tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from core.errors import InputError
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.stores import open_store
    from retrieval.bm25_index import Bm25Index
    from tests.pipelines.ingest.reindex_helpers import settings_for

    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    run_ingest(root, embedder, [src])
    settings = settings_for(root)
    ingestor = build_ingestor(settings, open_store(settings, embedder, create=False), embedder)
    with pytest.raises(InputError, match="no document 'nope.txt'"):
        ingestor.delete(["nope.txt"])
    rebuilds: list[int] = []
    rebuild = Bm25Index.rebuild
    monkeypatch.setattr(Bm25Index, "rebuild", lambda self, *a: rebuilds.append(1) or rebuild(self, *a))
    report = ingestor.delete(["old.txt"])
    assert report.documents_deleted == 1 and report.status == "ok"
    assert rebuilds == [], "a delete re-scores the BM25 index from its term counts, it reads and tokenises no text"
    (src / "old.txt").unlink()
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(ingestor.store) == fingerprint(clean)


def test_a_delete_rebuilds_a_bm25_index_saved_without_its_term_table(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.stores import open_store
    from tests.pipelines.ingest.reindex_helpers import settings_for

    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    store, _ = run_ingest(root, embedder, [src])
    # as a store written before the term table existed has it: bm25s' arrays of the same chunks, in the same order
    ids = store.keywords.chunk_ids()
    chunks = store.chunks.get_chunks(ids)
    save_as_format_1(store.layout.bm25, {i: chunks[i].text for i in ids}, term_table=False)
    settings = settings_for(root)
    ingestor = build_ingestor(settings, open_store(settings, embedder, create=False), embedder)
    assert not ingestor.store.keywords.updatable
    ingestor.delete(["old.txt"])
    assert open_reader(root, embedder).keywords.updatable, "the rebuilt index has its term table"
    (src / "old.txt").unlink()
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(ingestor.store) == fingerprint(clean)


def test_readers_keep_a_whole_snapshot_while_a_new_one_is_published(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    _, first = run_ingest(root, embedder, [src])
    reader = open_reader(root, embedder)
    before = fingerprint(reader)
    assert reader.snapshot_id == KnowledgeStore.current_snapshot_id(root) == first.snapshot_id
    write_v2(src)
    _, second = run_ingest(root, embedder, [src], sync=True)
    assert KnowledgeStore.current_snapshot_id(root) == second.snapshot_id != reader.snapshot_id
    assert fingerprint(reader) == before, "an open reader keeps seeing the snapshot it opened"
    fresh = open_reader(root, embedder)
    assert fresh.chunks.get_document("new.txt") is not None and fresh.chunks.get_document("old.txt") is None
    assert snapshots.list_snapshots(root) == [first.snapshot_id, second.snapshot_id], "the previous one is retained"
    assert (root / "chunks.sqlite").resolve().parent.name == second.snapshot_id
    assert (root / "audit.sqlite").is_file() and not (root / "audit.sqlite").is_symlink()


def test_a_store_written_before_snapshots_is_read_and_migrated(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    import shutil

    src, root = tmp_path / "src", tmp_path / "store"
    write_v1(src)
    _, first = run_ingest(root, embedder, [src])
    assert first.snapshot_id is not None
    snapshot = snapshots.snapshot_path(root, first.snapshot_id)
    for name in snapshots.ROOT_LINKS:  # rebuild the flat layout of the foundation: files directly in the root
        (root / name).unlink()
        move = shutil.copytree if (snapshot / name).is_dir() else shutil.copy2
        move(snapshot / name, root / name)
    (root / "current").unlink()
    shutil.rmtree(root / "snapshots")
    legacy = open_reader(root, embedder)
    assert legacy.snapshot_id is None and legacy.chunks.document_count() == 3
    write_v2(src)
    store, report = run_ingest(root, embedder, [src], sync=True)
    assert report.documents_deleted == 1 and report.snapshot_id is not None
    assert (root / "chunks.sqlite").is_symlink() and (root / "bm25").is_symlink()
    clean, _ = run_ingest(tmp_path / "clean", embedder, [src])
    assert fingerprint(store) == fingerprint(clean)
