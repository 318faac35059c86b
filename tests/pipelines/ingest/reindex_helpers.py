"""Helpers for the re-indexing tests: a small evolving corpus, a store fingerprint, and an embedder spy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.settings import load_settings
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.stores import open_store
from pipelines.ingest.progress import ProgressReporter
from pipelines.ingest.report import IngestReport
from pipelines.store.knowledge import KnowledgeStore

PARAGRAPHS = [
    "Amara Okafor founded Northwind Robotics in Lagos. Northwind Robotics builds warehouse robots for Kestrel Foods.",
    "Helena Vos manages the Utrecht office. The Utrecht office works with Kestrel Foods on packaging lines.",
    "Brandt Logistics ships robots from Rotterdam. Amara Okafor signed the Brandt Logistics contract in March.",
    "The Lisbon lab tests new grippers every week. Tomas Reyes leads the Lisbon lab with Helena Vos.",
]


#: Keyword queries whose BM25 scores the fingerprint holds (every score depends on the whole corpus's statistics).
BM25_QUERIES = [
    "Amara Okafor Lagos",
    "Utrecht office packaging",
    "Brandt Logistics Rotterdam contract",
    "Lisbon lab grippers Tuesday",
    "Zora Lindqvist audits",
    "Ingrid Berg Oslo engineer",
]


def write_v1(src: Path) -> None:
    """Three documents; ``plan.md`` has several chunks (chunks are at most 150 characters in these tests)."""
    src.mkdir(parents=True, exist_ok=True)
    (src / "plan.md").write_text("# Plan\n\n" + "\n\n".join(PARAGRAPHS), "utf-8")
    (src / "team.txt").write_text(PARAGRAPHS[1] + " Amara Okafor visits Utrecht in May.", "utf-8")
    (src / "old.txt").write_text("Zora Lindqvist audits Brandt Logistics in Rotterdam every spring.", "utf-8")


def write_v2(src: Path) -> None:
    """One paragraph of ``plan.md`` changed, ``old.txt`` deleted, ``new.txt`` added."""
    text = (src / "plan.md").read_text("utf-8")
    (src / "plan.md").write_text(text.replace("every week", "every Tuesday with Ingrid Berg"), "utf-8")
    (src / "old.txt").unlink()
    (src / "new.txt").write_text("Ingrid Berg joined Northwind Robotics in Oslo as chief engineer.", "utf-8")


def settings_for(root: Path):  # type: ignore[no-untyped-def]
    return load_settings(store_dir=root, chunking={"max_chars": 150, "min_chars": 40})


def open_reader(root: Path, embedder) -> KnowledgeStore:  # type: ignore[no-untyped-def]
    """The published store at ``root``, opened as a reader (the API, ``kgrag ask``) opens it."""
    return open_store(settings_for(root), embedder, create=False)


def run_ingest(
    root: Path,
    embedder,  # type: ignore[no-untyped-def]
    paths: Sequence[Path],
    *,
    sync: bool = False,
    extractor=None,  # type: ignore[no-untyped-def]
    progress: ProgressReporter | None = None,
) -> tuple[KnowledgeStore, IngestReport]:
    settings = settings_for(root)
    store = open_store(settings, embedder, create=True)
    ingestor = build_ingestor(settings, store, embedder, progress)
    if extractor is not None:
        ingestor.extractor = extractor
    return store, ingestor.ingest(list(paths), sync=sync)


def fingerprint(store: KnowledgeStore) -> dict[str, object]:
    """Counts plus the exact sets of documents, chunks, vectors, BM25 ids, graph nodes and edges."""
    chunks = list(store.chunks.iter_chunks())
    graph = store.graph.graph
    edges = sorted((u, v, k) for u, v, k in graph.edges(keys=True))
    counts = store.counts()
    counts.pop("answers", None)
    return {
        "counts": counts,
        "documents": sorted(store.chunks.document_hashes().items()),
        "chunks": sorted(c.id for c in chunks),
        "vector_count": len(store.vectors),
        "vectors_cover_chunks": set(store.vectors.ids())
        == set(store.chunks.chunks_by_vector_ids(sorted(store.vectors.ids()))),
        "bm25": sorted(store.keywords.chunk_ids()),
        "bm25_scores": {q: sorted(store.keywords.search(q, 1000)) for q in BM25_QUERIES},
        "nodes": sorted(graph.nodes),
        "edges": edges,
        "no_duplicate_edges": len(edges) == len(set(edges)),
    }


class CountingEmbedder:
    """Wraps the real embedder and counts the texts it embeds (a spy: every vector is real)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.texts: list[str] = []

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.texts.extend(texts)
        return self.inner.embed(texts)
