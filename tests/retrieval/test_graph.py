"""Graph retrieval: personalized PageRank over the entity-chunk graph finds bridge passages dense search misses."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from core.errors import ConfigurationError, InputError
from core.settings import load_settings
from core.types import Entity
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.retrieval import build_retriever
from pipelines.compose.stores import open_store
from pipelines.store.knowledge import KnowledgeStore
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.graph import GraphRetriever, personalized_pagerank
from retrieval.hybrid import HybridRetriever

QUESTION = "Which currency did the country where the rapper Zorbalt Quimby was born use before the euro?"

#: A two-hop question: the first hop names Zorbalt Quimby and Varnholm; the bridge passage is about Varnholm's
#: currency and never mentions Quimby. Distractors talk about currencies before the euro in other countries.
CORPUS = [
    (
        "quimby",
        "Zorbalt Quimby",
        "Zorbalt Quimby is a rapper who performs in sign language and was born in Varnholm.",
    ),
    ("varnholm", "Varnholm", "Varnholm adopted the euro in 2002. Before that Varnholm paid in the krenna."),
    *[
        (
            f"distractor{i}",
            f"Currency of {country}",
            f"The {old} was the currency the country {country} used before the euro. "
            f"Many rappers born in {country} sing about the {old}.",
        )
        for i, (country, old) in enumerate([("Estoria", "drachm"), ("Kelvia", "lira")])
    ],
    *[
        (f"other{i}", topic, f"{topic} is a hobby that has nothing to do with money or music.")
        for i, topic in enumerate(["Gardening", "Astronomy", "Chess", "Sailing", "Pottery", "Beekeeping"])
    ],
]


def _ingested_corpus(root: Path, embedder: SentenceTransformerEmbedder) -> KnowledgeStore:
    """CORPUS written under ``root`` and ingested into a new store at ``root / "store"``."""
    corpus = root / "corpus.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": i, "title": t, "text": x}) for i, t, x in CORPUS), "utf-8")
    settings = load_settings(store_dir=root / "store")
    store = open_store(settings, embedder, create=True)
    build_ingestor(settings, store, embedder).ingest([corpus])
    return store


@pytest.fixture(scope="module")
def bridge_store(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> KnowledgeStore:
    return _ingested_corpus(tmp_path_factory.mktemp("graph-bridge"), embedder)


def test_graph_mode_finds_the_bridge_passage_that_dense_misses(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    # Ranked by PageRank alone (dense_mix 0, as in HippoRAG): on a corpus this small the default dense mix lets
    # the near-duplicate distractors tie with the bridge; the default's gain on real data is measured by kgrag bench.
    settings = load_settings()
    settings.retrieval.graph_dense_mix = 0.0
    dense = build_retriever(settings, bridge_store, embedder, "dense").retrieve(QUESTION, top_k=2)
    graph = build_retriever(settings, bridge_store, embedder, "graph").retrieve(QUESTION, top_k=2)
    dense_docs = [h.chunk.document_id for h in dense]
    graph_docs = [h.chunk.document_id for h in graph]
    assert "varnholm" not in dense_docs, dense_docs  # the bridge passage is far from the question's wording
    assert set(graph_docs) == {"quimby", "varnholm"}, graph_docs
    assert all(h.method == "graph" for h in graph)
    assert graph[0].score >= graph[1].score > 0


def test_graph_mode_without_linked_entities_falls_back_to_dense(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    settings = load_settings()
    question = "what did people pay with before the common european money"
    dense = build_retriever(settings, bridge_store, embedder, "dense").retrieve(question, top_k=3)
    graph = build_retriever(settings, bridge_store, embedder, "graph").retrieve(question, top_k=3)
    assert [h.chunk.id for h in graph] == [h.chunk.id for h in dense]


def test_graph_retriever_rejects_bad_input_and_settings(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    retriever = build_retriever(load_settings(), bridge_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever)
    with pytest.raises(InputError):
        retriever.retrieve("   ")
    with pytest.raises(InputError):
        retriever.retrieve(QUESTION, top_k=0)
    with pytest.raises(ConfigurationError, match="damping"):
        GraphRetriever(retriever.seed_retriever, bridge_store.chunks, bridge_store.graph, retriever.linker, damping=1.0)


def test_personalized_pagerank_on_a_path_graph() -> None:
    # path a - b - c, restart at a. Column-stochastic transition of the undirected path.
    transition = sp.csr_matrix(np.array([[0, 0.5, 0], [1, 0, 1], [0, 0.5, 0]], dtype=np.float64))
    scores = personalized_pagerank(transition, np.array([1.0, 0.0, 0.0]), damping=0.5, max_iter=200, tol=1e-12)
    assert scores.sum() == pytest.approx(1.0)
    # fixed point of p = 0.5 s + 0.5 T p: a = 0.5 + 0.25 b, b = 0.5 (a + c), c = 0.25 b
    a, b, c = np.linalg.solve(np.array([[1, -0.25, 0], [-0.5, 1, -0.5], [0, -0.25, 1]]), np.array([0.5, 0, 0]))
    assert scores == pytest.approx([a, b, c])
    assert scores[0] > scores[1] > scores[2] > 0
    with pytest.raises(ValueError):
        personalized_pagerank(transition, np.zeros(3), damping=0.5)


def test_matrix_covers_every_chunk_and_entity(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    retriever = build_retriever(load_settings(), bridge_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever)
    matrix = retriever.refresh()
    assert len(matrix.chunk_ids) == bridge_store.chunks.chunk_count()
    assert "ent:varnholm" in matrix.entity_index
    column_sums = np.asarray(matrix.transition.sum(axis=0)).ravel()
    assert np.allclose(column_sums[column_sums > 0], 1.0)


def test_graph_mode_is_chosen_by_settings(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KGRAG_RETRIEVAL__MODE", "graph")
    monkeypatch.setenv("KGRAG_RETRIEVAL__GRAPH_DAMPING", "0.6")
    retriever = build_retriever(load_settings(), bridge_store, embedder)
    assert isinstance(retriever, GraphRetriever) and retriever.damping == 0.6
    monkeypatch.setenv("KGRAG_RETRIEVAL__MODE", "bm25")
    assert not isinstance(build_retriever(load_settings(), bridge_store, embedder), GraphRetriever)


def test_best_first_is_the_head_of_the_stable_full_sort() -> None:
    from retrieval.graph import best_first

    rng = np.random.default_rng(3)
    for size in (0, 1, 5, 64, 65, 300):
        rows = rng.permutation(10 * size + 1)[:size]
        scores = rng.integers(0, 6, size=size).astype(np.float64) / 5  # many ties
        full = np.lexsort((rows, -scores))
        for count in (1, 2, 5, 64, size, size + 3):
            assert best_first(rows, scores, count).tolist() == full[:count].tolist(), (size, count)


def test_a_variant_shares_the_matrix_and_title_index_and_ranks_like_a_fresh_retriever(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    settings = load_settings(store_dir=bridge_store.root)
    base = build_retriever(settings, bridge_store, embedder, "graph")
    assert isinstance(base, GraphRetriever)
    base.refresh()
    variant = base.variant(damping=0.7, dense_mix=0.0)
    assert (variant.damping, variant.dense_mix, variant.bridge) == (0.7, 0.0, base.bridge)
    assert variant.matrix is base.matrix and variant.titles is base.titles  # nothing rebuilt
    fresh = GraphRetriever(
        base.seed_retriever, bridge_store.chunks, bridge_store.graph, base.linker, top_k=base.top_k,
        dense_seeds=base.dense_seeds, damping=0.7, passage_weight=base.passage_weight, dense_mix=0.0,
        ppr_epsilon=base.ppr_epsilon, bridge=base.bridge,
    )  # fmt: skip
    assert [(h.chunk.id, h.score) for h in variant.retrieve(QUESTION)] == [
        (h.chunk.id, h.score) for h in fresh.retrieve(QUESTION)
    ]
    without_bridge = base.variant(bridge=None)
    assert without_bridge.matrix is base.matrix and without_bridge.titles is None
    with pytest.raises(ConfigurationError, match="damping"):
        base.variant(damping=1.5)


@pytest.mark.parametrize("passage_weight", [0.0, 0.2])
def test_scores_are_the_chunks_pagerank_over_the_top_one_plus_the_dense_mix(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder, passage_weight: float
) -> None:
    # The definition, over vectors as long as the graph: seeds = entities by specificity (normalised) plus the dense
    # seed hits' min-max-normalised cosines times passage_weight; score = PageRank / the best chunk's + dense_mix *
    # cosine. The retriever builds only the seeded and reached nodes; it must give the same ranking and scores,
    # also to dense hits PageRank never reaches (passage_weight 0: the hobby passages share no entity).
    base = build_retriever(load_settings(), bridge_store, embedder, "graph")
    assert isinstance(base, GraphRetriever)
    base.refresh()
    matrix = base.matrix
    chunks = len(matrix.chunk_ids)
    dense = base.seed_retriever.dense_ids(QUESTION, max(base.dense_seeds, 10))
    seeds = np.zeros(matrix.size)
    for entity in base.linker.link(QUESTION):
        node = matrix.entity_index[entity.id]
        seeds[node] += 1.0 / matrix.entity_chunk_counts[node - chunks]
    seeds /= seeds.sum()
    cosines = np.array([score for _, score in dense[: base.dense_seeds]])
    normalised = (cosines - cosines.min()) / (cosines.max() - cosines.min())
    for (chunk_id, _), weight in zip(dense[: base.dense_seeds], normalised, strict=True):
        seeds[matrix.chunk_index[chunk_id]] += passage_weight * weight
    ranks = personalized_pagerank(matrix.transition, seeds, base.damping, max_iter=1000, tol=1e-15)[:chunks]
    expected = ranks / ranks.max()
    for chunk_id, cosine in dense:
        expected[matrix.chunk_index[chunk_id]] += base.dense_mix * cosine
    for epsilon in (0.0, 1e-12):  # exact power iteration, and a push fine enough to match it
        retriever = base.variant(passage_weight=passage_weight, ppr_epsilon=epsilon, bridge=None)
        hits = retriever.retrieve(QUESTION, top_k=chunks)
        assert len(hits) == chunks
        got = {h.chunk.id: h.score for h in hits}
        assert [got[cid] for cid in matrix.chunk_ids] == pytest.approx(expected.tolist(), rel=1e-6, abs=1e-9)
        assert [h.score for h in hits] == sorted(got.values(), reverse=True)
    if passage_weight == 0.0:  # the case the retriever must handle apart: ranked, but never reached
        assert any(ranks[matrix.chunk_index[cid]] == 0.0 for cid, _ in dense)


def test_entities_are_linked_on_a_worker_thread_while_this_one_searches(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(store_dir=bridge_store.root)
    retriever = build_retriever(settings, bridge_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever)
    expected = [(h.chunk.id, h.score) for h in retriever.retrieve(QUESTION)]
    threads: dict[str, int] = {}
    link, search = retriever.linker.link, retriever.seed_retriever.dense_ids

    def recorded_link(question: str) -> list[Entity]:
        threads["link"] = threading.get_ident()
        return link(question)

    def recorded_search(question: str, top_k: int) -> list[tuple[str, float]]:
        threads["search"] = threading.get_ident()
        return search(question, top_k)

    monkeypatch.setattr(retriever.linker, "link", recorded_link)
    monkeypatch.setattr(retriever.seed_retriever, "dense_ids", recorded_search)
    assert [(h.chunk.id, h.score) for h in retriever.retrieve(QUESTION)] == expected
    assert threads["search"] == threading.get_ident() != threads["link"]


def test_a_failed_search_raises_its_error_after_the_linking_is_done(
    tmp_path: Path, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _ingested_corpus(tmp_path, embedder)
    retriever = build_retriever(load_settings(store_dir=store.root), store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever)
    retriever.refresh()
    linked: list[list[Entity]] = []
    link = retriever.linker.link

    def slow_link(question: str) -> list[Entity]:
        time.sleep(0.2)  # still linking when the search fails
        linked.append(link(question))
        return linked[-1]

    monkeypatch.setattr(retriever.linker, "link", slow_link)
    store.chunks.close()  # a real fault: the dense search cannot read its chunks
    with pytest.raises(sqlite3.ProgrammingError):
        retriever.retrieve(QUESTION)
    assert linked and [e.id for e in linked[0]] == ["ent:zorbalt quimby"]  # linked to the end, not abandoned


def test_dense_ids_are_the_dense_rankings_ids_and_scores_without_the_texts(
    bridge_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    settings = load_settings(store_dir=bridge_store.root)
    dense = build_retriever(settings, bridge_store, embedder, "dense")
    assert isinstance(dense, HybridRetriever)
    for top_k in (1, 3, 20, 50):  # below, at and above the retriever's candidates (20)
        hits = dense.retrieve(QUESTION, top_k=top_k)
        assert dense.dense_ids(QUESTION, top_k) == [(h.chunk.id, h.score) for h in hits]
    vector_ids = [vid for vid, _ in bridge_store.vectors.search(embedder.embed([QUESTION])[0], 5)]
    by_vector = bridge_store.chunks.chunk_ids_by_vector_ids([*vector_ids, 10**9])  # an unknown id is left out
    assert by_vector == {vid: chunk.id for vid, chunk in bridge_store.chunks.chunks_by_vector_ids(vector_ids).items()}
    with pytest.raises(InputError):
        dense.dense_ids("  ", 5)
    with pytest.raises(InputError):
        dense.dense_ids(QUESTION, 0)
