"""Ingestion with real parts: the MiniLM embedder, FAISS, bm25s, the networkx graph and the offline extractor."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.settings import load_settings
from kg.llm_extractor import LLMExtractor
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.stores import open_store
from pipelines.ingest.ingestor import Ingestor, embedding_text
from tests.kg.helpers import load_extraction_template, render
from tests.scripted_model import ScriptedChatModel

DATA = Path(__file__).resolve().parents[3] / "data"


def ingest(root: Path, embedder, paths: list[Path]):  # type: ignore[no-untyped-def]
    settings = load_settings(store_dir=root)
    store = open_store(settings, embedder, create=True)
    return store, build_ingestor(settings, store, embedder).ingest(paths)


def test_ingest_sample_data_builds_every_index(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    store, report = ingest(tmp_path / "s", embedder, [DATA])
    assert report.documents_added == 6  # md, txt, html and three JSONL records
    assert not report.skipped and report.extraction_failures == 0
    counts = store.counts()
    assert counts["documents"] == 6
    assert counts["chunks"] == counts["vectors"] == counts["bm25"] == report.chunks_embedded > 6
    assert counts["graph_entities"] > 10 and counts["graph_facts"] > 0
    for chunk in store.chunks.iter_chunks():
        document = store.chunks.get_document(chunk.document_id)
        assert document is not None and document.text[chunk.start : chunk.end] == chunk.text
        assert store.graph.has_chunk(chunk.id)
    okafor = [e for n, e in store.graph.entity_names().items() if "okafor" in n]
    assert okafor, "the offline extractor should find Amara Okafor"
    facts = store.graph.facts_about(okafor, limit=20)
    assert facts and all(store.chunks.get_chunk(f.chunk_id) is not None for f in facts)


def test_reingest_skips_unchanged_and_replaces_changed(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    shutil.copytree(DATA, src)
    root = tmp_path / "s"
    store, first = ingest(root, embedder, [src])
    store.audit.close()
    store, again = ingest(root, embedder, [src])
    assert (again.documents_unchanged, again.documents_added, again.chunks_embedded) == (6, 0, 0)
    store.audit.close()
    handbook = src / "employee-handbook.md"
    handbook.write_text(handbook.read_text("utf-8") + "\n\nThe office dog is called Biscuit.\n", "utf-8")
    store, changed = ingest(root, embedder, [src])
    assert (changed.documents_changed, changed.documents_unchanged) == (1, 5)
    counts = store.counts()
    assert counts["chunks"] == counts["vectors"] == counts["bm25"]
    assert counts["graph_chunks"] == counts["chunks"], "replaced chunks must leave the graph"
    assert all(store.graph.has_chunk(c.id) for c in store.chunks.iter_chunks())
    hits = store.keywords.search("office dog Biscuit", 1)
    chunk = store.chunks.get_chunk(hits[0][0])
    assert chunk is not None and "Biscuit" in chunk.text


def test_bad_files_are_reported_and_the_rest_ingested(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    (src / "good.txt").write_text("Helena Vos manages the Utrecht office of Northwind Robotics.", "utf-8")
    (src / "bad.txt").write_bytes(b"\x00\x00binary")
    (src / "latin.md").write_bytes("r\xe9sum\xe9".encode("latin-1"))
    store, report = ingest(tmp_path / "s", embedder, [src, tmp_path / "missing-folder"])
    assert report.documents_added == 1
    reasons = {Path(s.source).name: s.reason for s in report.skipped}
    assert "binary" in reasons["bad.txt"]
    assert "UTF-8" in reasons["latin.md"]
    assert reasons["missing-folder"] == "does not exist"
    reopened = open_store(load_settings(store_dir=tmp_path / "s"), embedder, create=False)
    assert reopened.counts()["documents"] == 1


def test_a_store_past_the_partition_threshold_is_partitioned_and_stays_searchable(  # type: ignore[no-untyped-def]
    tmp_path: Path, embedder
) -> None:
    src = tmp_path / "src"
    shutil.copytree(DATA, src)
    root = tmp_path / "s"
    settings = load_settings(store_dir=root, retrieval={"vector_ivf_min_vectors": 5, "vector_ivf_nprobe": 64})
    store = open_store(settings, embedder, create=True)
    build_ingestor(settings, store, embedder).ingest([src])
    assert store.vectors.partitioned and len(store.vectors) >= 5
    store.audit.close()
    handbook = src / "employee-handbook.md"
    handbook.write_text(handbook.read_text("utf-8") + "\n\nThe office dog is called Biscuit.\n", "utf-8")
    store = open_store(settings, embedder, create=True)
    report = build_ingestor(settings, store, embedder).ingest([src])  # removes and adds vectors in the partitions
    assert report.documents_changed == 1
    reopened = open_store(settings, embedder, create=False)
    vectors = reopened.vectors
    assert vectors.partitioned
    counts = reopened.counts()
    assert counts["chunks"] == counts["vectors"]
    by_vector = reopened.chunks.chunks_by_vector_ids(sorted(vectors.ids()))
    assert len(by_vector) == counts["chunks"]  # every vector is a live chunk's: the replaced ones were removed
    (added,) = [(vid, c) for vid, c in by_vector.items() if "Biscuit" in c.text]  # the changed document's chunk
    assert vectors.search(embedder.embed([embedding_text(added[1])])[0], 1)[0][0] == added[0]


def test_the_llm_extractors_tokens_are_summed_in_the_run_report(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """Cost per ingestion run: every extraction call's tokens (the model is scripted here; the real server's usage
    is kept by tests/kg/test_llm_extractor.py); cache hits and a no-change run cost none."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("Marga Faulstich was born in Weimar in 1915.", "utf-8")
    (src / "b.txt").write_text("Amara Okafor founded Northwind Robotics.", "utf-8")
    (src / "copy-of-a.txt").write_text("Marga Faulstich was born in Weimar in 1915.", "utf-8")
    reply = {"entities": [{"name": "Weimar", "type": "place"}], "relations": []}
    model = ScriptedChatModel(respond=lambda _: reply, usage=(250, 30))
    settings = load_settings(store_dir=tmp_path / "s")
    store = open_store(settings, embedder, create=True)
    extractor = LLMExtractor(model, load_extraction_template(), render)
    report = Ingestor(store, embedder, extractor, settings.chunking).ingest([src])
    assert report.documents_added == 3 and report.chunks_extracted == len(model.calls) == 2, "the copy hit the cache"
    assert (report.prompt_tokens, report.completion_tokens) == (500, 60)
    assert "model tokens: 500 prompt, 60 completion" in "\n".join(report.summary_lines())
    again = Ingestor(store, embedder, extractor, settings.chunking).ingest([src])
    assert (again.chunks_extracted, again.prompt_tokens, again.completion_tokens) == (0, 0, 0)
    offline = ingest(tmp_path / "offline", embedder, [src])[1]
    assert (offline.prompt_tokens, offline.completion_tokens) == (0, 0)
