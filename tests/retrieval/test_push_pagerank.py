"""Local-push PageRank agrees with power iteration on a real entity-chunk graph, and the trigram-shortlisted entity
linker links what scoring every name links."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from core.errors import ConfigurationError
from core.types import Chunk, sha256_text
from kg.linking import EntityLinker, word_trigrams
from kg.networkx_store import NetworkxGraphStore
from kg.offline_extractor import OfflineExtractor
from retrieval.graph import EntityChunkGraph, GraphRetriever
from retrieval.pagerank import personalized_pagerank, push_pagerank, sparse_push_pagerank

MINI = Path(__file__).resolve().parents[1] / "evals" / "data" / "musique_mini"


@pytest.fixture(scope="module")
def mini_graph(tmp_path_factory: pytest.TempPathFactory) -> NetworkxGraphStore:
    """The 60 real MuSiQue passages of musique_mini, one chunk each, through the offline extractor."""
    store = NetworkxGraphStore(tmp_path_factory.mktemp("mini") / "graph.json")
    extractor = OfflineExtractor()
    for line in (MINI / "corpus.jsonl").read_text("utf-8").splitlines():
        record = json.loads(line)
        text = record["text"]
        chunk = Chunk(
            id=record["id"], document_id=record["id"], source=record["id"], title=record["title"], text=text,
            start=0, end=len(text), ordinal=0, sha256=sha256_text(text),
        )  # fmt: skip
        store.upsert_chunks([chunk])
        store.add_extraction(extractor.extract(chunk))
    return store


@pytest.fixture(scope="module")
def matrix(mini_graph: NetworkxGraphStore) -> EntityChunkGraph:
    chunk_ids = sorted(json.loads(line)["id"] for line in (MINI / "corpus.jsonl").read_text("utf-8").splitlines())
    return EntityChunkGraph.build(mini_graph, chunk_ids)


def _seeds(matrix: EntityChunkGraph, rng: np.random.Generator) -> np.ndarray:
    seeds = np.zeros(matrix.size)
    entities = rng.choice(list(matrix.entity_index.values()), size=3, replace=False)
    seeds[entities] = 1.0
    seeds[rng.integers(0, len(matrix.chunk_ids))] = 0.5  # a passage seed, as dense hits give
    return seeds


@pytest.mark.parametrize("damping", [0.5, 0.85])
def test_push_matches_power_iteration_within_its_error_bound(matrix: EntityChunkGraph, damping: float) -> None:
    rng = np.random.default_rng(5)
    epsilon = 1e-7
    for _ in range(10):
        seeds = _seeds(matrix, rng)
        exact = personalized_pagerank(matrix.transition, seeds, damping, max_iter=1000, tol=1e-13)
        approx = push_pagerank(matrix.adjacency, seeds, damping, epsilon, degree=matrix.degree)
        error = exact - approx
        # push only ever under-estimates, by at most epsilon * degree per node
        assert error.min() >= -1e-9
        assert np.all(error <= epsilon * np.maximum(matrix.degree, 1) + 1e-9)
        chunks = len(matrix.chunk_ids)
        top_exact = np.argsort(-exact[:chunks], kind="stable")[:5]
        top_push = np.argsort(-approx[:chunks], kind="stable")[:5]
        assert list(top_push) == list(top_exact)


def test_coarse_push_keeps_the_top_passages(matrix: EntityChunkGraph) -> None:
    rng = np.random.default_rng(11)
    chunks = len(matrix.chunk_ids)
    for _ in range(10):
        seeds = _seeds(matrix, rng)
        exact = personalized_pagerank(matrix.transition, seeds, 0.5, max_iter=1000, tol=1e-13)[:chunks]
        approx = push_pagerank(matrix.adjacency, seeds, 0.5, 1e-5, degree=matrix.degree)[:chunks]
        assert set(np.argsort(-approx)[:3]) == set(np.argsort(-exact)[:3])


@pytest.mark.parametrize("epsilon", [1e-4, 1e-5, 1e-7])
def test_small_rounds_touching_only_their_nodes_give_the_same_bits(matrix: EntityChunkGraph, epsilon: float) -> None:
    rng = np.random.default_rng(17)
    for _ in range(10):
        seeds = _seeds(matrix, rng)
        every_node = push_pagerank(matrix.adjacency, seeds, 0.5, epsilon, degree=matrix.degree, sparse_below=0)
        for below in (None, 20, 200, 10**9):  # the default, some rounds, most rounds, every round sparse
            sparse = push_pagerank(matrix.adjacency, seeds, 0.5, epsilon, degree=matrix.degree, sparse_below=below)
            assert np.array_equal(sparse, every_node), below
        assert (every_node > 0).sum() > 10  # the push did spread


def test_mass_at_a_node_without_edges_returns_to_the_seeds() -> None:
    # a - b path plus an isolated node c; seeding c too: its mass must flow back like power iteration's
    adjacency = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float64))
    transition = sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float64))
    seeds = np.array([1.0, 0.0, 1.0])
    exact = personalized_pagerank(transition, seeds, 0.5, max_iter=500, tol=1e-14)
    approx = push_pagerank(adjacency, seeds, 0.5, 1e-12)
    assert approx == pytest.approx(exact, abs=1e-9)
    assert np.array_equal(push_pagerank(adjacency, seeds, 0.5, 1e-12, sparse_below=10**9), approx)
    assert approx.sum() == pytest.approx(1.0, abs=1e-9)


def test_sparse_seeds_and_scores_are_the_dense_vectors_nonzero_entries(matrix: EntityChunkGraph) -> None:
    rng = np.random.default_rng(23)
    for _ in range(10):
        seeds = _seeds(matrix, rng)
        nodes = np.flatnonzero(seeds)
        order = rng.permutation(nodes.size)  # seeds in any order
        reached, scores = sparse_push_pagerank(
            matrix.adjacency, nodes[order], seeds[nodes][order], 0.5, 1e-5, degree=matrix.degree
        )
        dense = push_pagerank(matrix.adjacency, seeds, 0.5, 1e-5, degree=matrix.degree)
        assert np.array_equal(reached, np.flatnonzero(dense))  # ascending, every node with a positive score
        assert np.all(scores > 0)
        assert scores == pytest.approx(dense[reached], rel=1e-12)


def test_sparse_push_rejects_bad_seeds(matrix: EntityChunkGraph) -> None:
    push = sparse_push_pagerank
    with pytest.raises(ValueError, match="distinct nodes"):
        push(matrix.adjacency, np.array([3, 3]), np.array([1.0, 1.0]), 0.5, 1e-5)
    with pytest.raises(ValueError, match="distinct nodes"):
        push(matrix.adjacency, np.array([matrix.size]), np.array([1.0]), 0.5, 1e-5)
    with pytest.raises(ValueError, match="one length"):
        push(matrix.adjacency, np.array([1, 2]), np.array([1.0]), 0.5, 1e-5)
    with pytest.raises(ValueError, match="none negative"):
        push(matrix.adjacency, np.array([1, 2]), np.array([2.0, -1.0]), 0.5, 1e-5)
    with pytest.raises(ValueError, match="positive weight"):
        push(matrix.adjacency, np.array([], dtype=np.int64), np.array([]), 0.5, 1e-5)


def test_push_rejects_bad_arguments(matrix: EntityChunkGraph) -> None:
    with pytest.raises(ValueError, match="positive weight"):
        push_pagerank(matrix.adjacency, np.zeros(matrix.size), 0.5, 1e-6)
    seeds = np.zeros(matrix.size)
    seeds[0] = 1
    with pytest.raises(ValueError, match="epsilon"):
        push_pagerank(matrix.adjacency, seeds, 0.5, 0.0)


def test_negative_epsilon_is_a_configuration_error(mini_graph: NetworkxGraphStore) -> None:
    with pytest.raises(ConfigurationError, match="ppr_epsilon"):
        GraphRetriever(None, None, mini_graph, EntityLinker(mini_graph), ppr_epsilon=-1)  # type: ignore[arg-type]


def test_word_trigrams_are_padded_per_word() -> None:
    assert word_trigrams("ab cd") == {" ab", "ab ", " cd", "cd "}
    assert word_trigrams("") == set()


def test_shortlisted_linker_links_what_the_full_scan_links(mini_graph: NetworkxGraphStore) -> None:
    questions = [json.loads(line)["question"] for line in (MINI / "questions.jsonl").read_text("utf-8").splitlines()]
    entities = (mini_graph.get_entity(i) for i in sorted(set(mini_graph.entity_names().values())))
    names = [e.name for e in entities if e and len(e.name) >= 8 and e.name[0].isalpha()][::3][:40]
    rng = np.random.default_rng(3)
    typos = []
    for name in names:  # drop one inner character: these must take the fuzzy path
        cut = int(rng.integers(1, max(len(name) - 1, 2)))
        typos.append(f"What is known about {name[:cut] + name[cut + 1 :]} today?")
    fast, full = EntityLinker(mini_graph), EntityLinker(mini_graph, shortlist=False)
    fuzzy_links = 0
    for question in questions + typos:
        expected = [e.id for e in full.link(question)]
        assert [e.id for e in fast.link(question)] == expected, question
        fuzzy_links += question in typos and bool(expected)
    assert fuzzy_links >= 10  # the typo questions really exercised fuzzy matching
