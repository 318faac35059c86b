"""Fixtures for the retrieval tests: a real store (MiniLM + FAISS + bm25s + SQLite) over a small corpus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from retrieval.bm25_index import Bm25Index
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.faiss_index import FaissVectorIndex
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.retrieval.corpus import PASSAGES, make_document


@dataclass
class BuiltStore:
    """The three stores of one store directory, filled with the test corpus."""

    store_dir: Path
    chunks: SqliteChunkStore
    vectors: FaissVectorIndex
    keywords: Bm25Index


def build_store(store_dir: Path, embedder: SentenceTransformerEmbedder) -> BuiltStore:
    """Ingest PASSAGES the way the pipelines layer will: chunk store -> vector ids -> FAISS, then BM25."""
    chunks = SqliteChunkStore(store_dir / "chunks.sqlite")
    vectors = FaissVectorIndex(store_dir / "vectors.faiss", embedder.dimension)
    keywords = Bm25Index(store_dir / "bm25")
    for doc_id, text in PASSAGES.items():
        document, doc_chunks = make_document(doc_id, text)
        vector_ids, replaced = chunks.put_document(document, doc_chunks)
        vectors.remove(replaced)
        vectors.add(vector_ids, embedder.embed([c.text for c in doc_chunks]))
    all_chunks = list(chunks.iter_chunks())
    keywords.rebuild([c.id for c in all_chunks], [c.text for c in all_chunks])
    vectors.save()
    keywords.save()
    return BuiltStore(store_dir, chunks, vectors, keywords)


@pytest.fixture(scope="module")
def built_store(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder
) -> Iterator[BuiltStore]:
    store = build_store(tmp_path_factory.mktemp("store"), embedder)
    yield store
    store.chunks.close()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
