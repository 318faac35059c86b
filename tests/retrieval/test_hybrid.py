"""Reciprocal rank fusion math and the HybridRetriever over a real store, in each mode."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError, InputError
from retrieval.bm25_index import Bm25Index
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.faiss_index import FaissVectorIndex
from retrieval.hybrid import HybridRetriever, reciprocal_rank_fusion
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.retrieval.conftest import BuiltStore

# ----- reciprocal_rank_fusion -----


def test_rrf_hand_computed_example() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a", "d"]], [1.0, 0.5], k=60)
    # a: 1/61 + 0.5/62 = 0.024458   c: 1/63 + 0.5/61 = 0.024070   b: 1/62 = 0.016129   d: 0.5/63 = 0.007937
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 0.5 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 0.5 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert scores["d"] == pytest.approx(0.5 / 63)


def test_rrf_with_k_zero_and_agreement_winning() -> None:
    # x: 1/1 = 1.0; y: 1/2 + 1/1 = 1.5
    assert reciprocal_rank_fusion([["x", "y"], ["y"]], [1.0, 1.0], k=0) == [("y", 1.5), ("x", 1.0)]


def test_rrf_ties_keep_first_seen_order_and_duplicates_count_once() -> None:
    fused = reciprocal_rank_fusion([["p", "p", "q"], ["r"]], [1.0, 1.0], k=10)
    assert fused == [("p", pytest.approx(1 / 11)), ("r", pytest.approx(1 / 11)), ("q", pytest.approx(1 / 13))]


def test_rrf_edge_cases() -> None:
    assert reciprocal_rank_fusion([], [], k=60) == []
    assert reciprocal_rank_fusion([[], []], [1.0, 1.0], k=60) == []
    with pytest.raises(ValueError, match="2 rankings but 1 weights"):
        reciprocal_rank_fusion([["a"], ["b"]], [1.0], k=60)
    with pytest.raises(ValueError, match="k must be >= 0"):
        reciprocal_rank_fusion([["a"]], [1.0], k=-1)


# ----- HybridRetriever -----


def retriever(store: BuiltStore, embedder: SentenceTransformerEmbedder, **kwargs: object) -> HybridRetriever:
    return HybridRetriever(embedder, store.vectors, store.keywords, store.chunks, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("How long do I have to send back something I bought?", "refunds"),
        ("Can I bring my puppy to work?", "pets"),
        ("How long are conversations with the help desk kept?", "retention"),
        ("Is 2FA required for admins?", "security"),
        ("How fast is delivery?", "shipping"),
    ],
)
def test_dense_mode_finds_paraphrased_passages(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, question: str, expected: str
) -> None:
    hits = retriever(built_store, embedder, mode="dense").retrieve(question)
    assert hits[0].chunk.document_id == expected
    assert len(hits) == 5
    assert all(h.method == "dense" for h in hits)
    # Scores are cosines of the question and chunk embeddings, best first.
    q, *chunk_vectors = embedder.embed([question] + [h.chunk.text for h in hits])
    for hit, vector in zip(hits, chunk_vectors, strict=True):
        assert hit.score == pytest.approx(float(q @ vector), abs=1e-4)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Invalidenstrasse", "office"),
        ("hardware security keys", "security"),
        ("What does error E42 mean?", "router"),
        ("laptop warranty", "warranty"),
    ],
)
def test_bm25_mode_finds_keyword_passages(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, question: str, expected: str
) -> None:
    hits = retriever(built_store, embedder, mode="bm25").retrieve(question)
    assert hits[0].chunk.document_id == expected
    assert all(h.method == "bm25" and h.score > 0 for h in hits)
    assert [(h.chunk.id, h.score) for h in hits] == built_store.keywords.search(question, 5)


def test_bm25_mode_without_lexical_overlap_returns_nothing(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder
) -> None:
    assert retriever(built_store, embedder, mode="bm25").retrieve("When will my money be returned?") == []


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("What does error E42 mean on my router?", "router"),
        ("How long is the warranty on a laptop?", "warranty"),
        ("I forgot my login credentials, what should I do?", "password"),
        ("Can I bring my dog to the office?", "pets"),
        ("Is 2FA required for admins?", "security"),  # no BM25 hit at all: dense alone decides
    ],
)
def test_hybrid_mode_finds_the_right_passage(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder, question: str, expected: str
) -> None:
    hits = retriever(built_store, embedder).retrieve(question, top_k=3)
    assert len(hits) == 3
    assert hits[0].chunk.document_id == expected
    assert all(h.method == "hybrid" for h in hits)


def test_hybrid_scores_are_the_fusion_of_both_rankings(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder
) -> None:
    question = "Can I bring my dog to the office?"
    dense = retriever(built_store, embedder, mode="dense", top_k=20).retrieve(question)
    bm25 = retriever(built_store, embedder, mode="bm25", top_k=20).retrieve(question)
    assert dense and bm25
    expected = reciprocal_rank_fusion([[h.chunk.id for h in dense], [h.chunk.id for h in bm25]], [1.0, 2.0], k=10)[:4]
    hits = retriever(built_store, embedder, rrf_k=10, bm25_weight=2.0).retrieve(question, top_k=4)
    assert [(h.chunk.id, pytest.approx(h.score)) for h in hits] == expected


def test_zero_weight_reduces_hybrid_to_one_ranker(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder
) -> None:
    question = "Where is the Berlin office?"
    dense = retriever(built_store, embedder, mode="dense").retrieve(question)
    dense_only = retriever(built_store, embedder, bm25_weight=0.0).retrieve(question)
    assert [h.chunk.id for h in dense_only] == [h.chunk.id for h in dense]
    bm25 = retriever(built_store, embedder, mode="bm25").retrieve(question)
    bm25_only = retriever(built_store, embedder, dense_weight=0.0).retrieve(question)
    assert [h.chunk.id for h in bm25_only] == [h.chunk.id for h in bm25]


def test_top_k_default_and_override(built_store: BuiltStore, embedder: SentenceTransformerEmbedder) -> None:
    r = retriever(built_store, embedder, top_k=2, candidates=3)
    assert len(r.retrieve("office")) == 2
    # top_k above `candidates` still returns top_k hits (the candidate pool grows to top_k).
    assert len(r.retrieve("office", top_k=7)) == 7
    with pytest.raises(InputError):
        r.retrieve("office", top_k=0)
    with pytest.raises(InputError, match="empty"):
        r.retrieve("   ")


def test_vectors_without_a_chunk_are_skipped(built_store: BuiltStore, embedder: SentenceTransformerEmbedder) -> None:
    question = "Where is the Berlin office?"
    vectors = FaissVectorIndex(built_store.store_dir / "vectors.faiss", embedder.dimension)  # a private copy
    vectors.add([10_000], embedder.embed([question]))  # a perfect match whose chunk does not exist
    assert vectors.search(embedder.embed([question])[0], 1)[0][0] == 10_000
    r = HybridRetriever(embedder, vectors, built_store.keywords, built_store.chunks, mode="dense")
    hits = r.retrieve(question)
    assert len(hits) == 5
    assert hits[0].chunk.document_id == "office"


def test_invalid_configuration(built_store: BuiltStore, embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(ConfigurationError, match="mode"):
        retriever(built_store, embedder, mode="graph")
    with pytest.raises(ConfigurationError, match="top_k"):
        retriever(built_store, embedder, top_k=0)
    with pytest.raises(ConfigurationError, match="weights"):
        retriever(built_store, embedder, dense_weight=0.0, bm25_weight=0.0)


def test_reopened_store_directory_retrieves_the_same(
    built_store: BuiltStore, embedder: SentenceTransformerEmbedder
) -> None:
    store_dir = built_store.store_dir
    with SqliteChunkStore(store_dir / "chunks.sqlite") as chunks:
        reopened = HybridRetriever(
            embedder,
            FaissVectorIndex(store_dir / "vectors.faiss", embedder.dimension),
            Bm25Index(store_dir / "bm25"),
            chunks,
        )
        question = "What does error E42 mean on my router?"
        again = reopened.retrieve(question)
        assert again == retriever(built_store, embedder).retrieve(question)
        assert again[0].chunk.document_id == "router"
