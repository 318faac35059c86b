"""Bm25Index over real bm25s: keyword hits, stopword-only queries, persistence and corrupt directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import InputError, StoreCorruptError
from retrieval.bm25_index import Bm25Index, light_stem, tokenize
from tests.retrieval.corpus import PASSAGES


@pytest.fixture
def index(tmp_path: Path) -> Bm25Index:
    bm25 = Bm25Index(tmp_path / "bm25")
    bm25.rebuild(list(PASSAGES), list(PASSAGES.values()))
    return bm25


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Invalidenstrasse", "office"),
        ("error E42 firmware", "router"),
        ("hardware security keys", "security"),
        ("chat transcripts", "retention"),
        ("How many vacation days carry over?", "vacation"),
    ],
)
def test_finds_the_keyword_passage(index: Bm25Index, query: str, expected: str) -> None:
    hits = index.search(query, 3)
    assert hits, query
    assert hits[0][0] == expected


def test_scores_are_positive_and_sorted(index: Bm25Index) -> None:
    hits = index.search("business days office", 10)
    assert len(hits) >= 3
    scores = [score for _, score in hits]
    assert all(score > 0 for score in scores)
    assert scores == sorted(scores, reverse=True)
    # Only passages containing a query term are returned.
    for chunk_id, _ in hits:
        text = PASSAGES[chunk_id].lower()
        assert "business" in text or "days" in text or "office" in text


@pytest.mark.parametrize("query", ["the of and is", "what is it?", "?!... ,,", "", "   "])
def test_stopword_or_punctuation_only_query_returns_nothing(index: Bm25Index, query: str) -> None:
    assert index.search(query, 5) == []


def test_unknown_terms_return_nothing(index: Bm25Index) -> None:
    assert index.search("quantum chromodynamics", 5) == []


def test_k_larger_than_corpus(index: Bm25Index) -> None:
    hits = index.search("office days", 1000)
    assert 1 <= len(hits) <= len(PASSAGES)
    assert len({c for c, _ in hits}) == len(hits)


def test_k_limits_results(index: Bm25Index) -> None:
    assert len(index.search("business days office", 2)) == 2
    assert index.search("office", 0) == []


def test_plurals_match_singulars(index: Bm25Index) -> None:
    assert light_stem(["refunds", "policies", "addresses", "status", "analysis", "class"]) == [
        "refund",
        "policy",
        "address",
        "status",
        "analysis",
        "class",
    ]
    assert index.search("refund", 1)[0][0] == "refunds"
    assert index.search("laptop warranties", 1)[0][0] == "warranty"
    assert tokenize(["The Dogs, and the CAT!"]) == [["dog", "cat"]]


def test_rebuild_replaces_the_corpus(index: Bm25Index) -> None:
    index.rebuild(["a", "b"], ["apples and pears", "bananas"])
    assert len(index) == 2
    assert index.search("Invalidenstrasse", 5) == []
    assert index.search("banana", 5)[0][0] == "b"


def test_rebuild_validates_its_input(tmp_path: Path) -> None:
    bm25 = Bm25Index(tmp_path / "bm25")
    with pytest.raises(InputError, match="2 chunk ids for 1 texts"):
        bm25.rebuild(["a", "b"], ["only one"])
    with pytest.raises(InputError, match="not unique"):
        bm25.rebuild(["a", "a"], ["one", "two"])


def test_empty_and_stopword_only_corpora(tmp_path: Path) -> None:
    bm25 = Bm25Index(tmp_path / "bm25")
    assert bm25.search("anything", 3) == []
    bm25.rebuild(["a"], ["the and of"])
    assert len(bm25) == 1
    assert bm25.search("the", 3) == []
    bm25.save()
    reloaded = Bm25Index(tmp_path / "bm25")
    assert len(reloaded) == 1
    assert reloaded.search("anything", 3) == []


def test_save_and_reload_round_trip(index: Bm25Index, tmp_path: Path) -> None:
    before = index.search("firmware update router", 5)
    index.save()
    path = tmp_path / "bm25"
    assert path.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"], "no temp or backup directories left"
    reloaded = Bm25Index(path)
    assert len(reloaded) == len(PASSAGES)
    assert reloaded.search("firmware update router", 5) == before

    # Saving again swaps the directory for the new content.
    reloaded.rebuild(["x"], ["zebra crossing"])
    reloaded.save()
    again = Bm25Index(path)
    assert len(again) == 1
    assert again.search("zebra", 1)[0][0] == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bm25"]


def test_interrupted_save_is_recovered(index: Bm25Index, tmp_path: Path) -> None:
    index.save()
    path = tmp_path / "bm25"
    # Simulate a crash between "move the old index aside" and "move the new one in".
    path.rename(tmp_path / ".bm25.old")
    recovered = Bm25Index(path)
    assert len(recovered) == len(PASSAGES)
    assert recovered.search("Invalidenstrasse", 1)[0][0] == "office"


def test_directory_without_manifest_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bm25"
    path.mkdir()
    (path / "junk.bin").write_bytes(b"\x00\x01")
    with pytest.raises(StoreCorruptError, match="bm25"):
        Bm25Index(path)


def test_damaged_arrays_are_corrupt(index: Bm25Index, tmp_path: Path) -> None:
    index.save()
    path = tmp_path / "bm25"
    (path / "data.csc.index.npy").write_bytes(b"garbage")
    with pytest.raises(StoreCorruptError, match="cannot read the BM25 index"):
        Bm25Index(path)
