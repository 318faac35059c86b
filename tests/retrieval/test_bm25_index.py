"""Bm25Index over real bm25s: keyword hits, stopword-only queries, persistence and corrupt directories."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bm25s
import numpy as np
import pytest

from core.errors import InputError, StoreCorruptError
from retrieval.bm25_index import Bm25Index, light_stem, tokenize
from tests.retrieval.corpus import PASSAGES
from tests.retrieval.legacy_bm25 import save_as_format_1


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


def test_the_saved_index_is_its_term_table_and_loads_without_bm25s(index: Bm25Index, tmp_path: Path) -> None:
    before = {q: index.search(q, 5) for q in ("firmware update router", "vacation days", "Invalidenstrasse")}
    index.save()
    path = tmp_path / "bm25"
    assert sorted(p.name for p in path.iterdir()) == ["kgrag_bm25.json", "kgrag_bm25_terms.npz"]
    assert json.loads((path / "kgrag_bm25.json").read_text())["format"] == 2
    # Loading, removing and saving (what a delete does) import neither bm25s nor SciPy; searching does.
    script = (
        "import sys; from pathlib import Path; from retrieval.bm25_index import Bm25Index\n"
        f"b = Bm25Index(Path({str(path)!r})); b.remove(['office']); b.save()\n"
        "assert 'bm25s' not in sys.modules and 'scipy' not in sys.modules, 'imported'\n"
        "assert b.search('Invalidenstrasse', 3) == [] and 'bm25s' in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    after = Bm25Index(path)
    assert len(after) == len(PASSAGES) - 1 and after.search("Invalidenstrasse", 3) == []
    rebuilt = Bm25Index(tmp_path / "rebuilt")
    rebuilt.rebuild([k for k in PASSAGES if k != "office"], [v for k, v in PASSAGES.items() if k != "office"])
    for query in before:
        assert after.search(query, 5) == rebuilt.search(query, 5), query


def test_a_format_1_index_with_its_term_table_is_read_from_the_table(tmp_path: Path) -> None:
    path = tmp_path / "bm25"
    save_as_format_1(path, CORPUS, term_table=True)
    (path / "data.csc.index.npy").write_bytes(b"garbage")  # the arrays are not read: the table is the index
    old = Bm25Index(path)
    assert old.updatable
    for query in queries():
        assert dict(old.search(query, 100)) == reference_scores(CORPUS, query), query
    old.save()
    assert json.loads((path / "kgrag_bm25.json").read_text())["format"] == 2


def test_damaged_arrays_of_a_format_1_index_are_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "bm25"
    save_as_format_1(path, PASSAGES, term_table=False)
    (path / "data.csc.index.npy").write_bytes(b"garbage")
    with pytest.raises(StoreCorruptError, match="cannot read the BM25 index"):
        Bm25Index(path)


def test_a_manifest_of_an_unknown_format_or_without_its_table_is_corrupt(index: Bm25Index, tmp_path: Path) -> None:
    index.save()
    path = tmp_path / "bm25"
    manifest = json.loads((path / "kgrag_bm25.json").read_text())
    (path / "kgrag_bm25.json").write_text(json.dumps({**manifest, "format": 3}))
    with pytest.raises(StoreCorruptError, match="unsupported BM25 index format"):
        Bm25Index(path)
    (path / "kgrag_bm25.json").write_text(json.dumps({**manifest, "term_table": False}))
    with pytest.raises(StoreCorruptError, match="names no term table"):
        Bm25Index(path)


# ----- the term table: bm25s' own scores, and removals that equal a rebuild -----

EXTRA = {
    "dup-1": "Refunds refunds refunds: a refund is a refund.",
    "dup-2": "Zephyr router firmware",
    "empty": "",
    "stop": "the and of",
    "long": " ".join(f"word{i % 37} shipping" for i in range(400)),
}
CORPUS = {**PASSAGES, **EXTRA}


def queries() -> list[str]:
    words = sorted({t for tokens in tokenize(list(CORPUS.values())) for t in tokens})
    return [*words, "firmware update router", "refund within thirty days", "Zephyr warranty damage", "nothing matches"]


def reference_scores(texts: dict[str, str], query: str) -> dict[str, float]:
    """What bm25s itself scores (``BM25(method="lucene").index`` over our tokens), for the chunks scoring > 0."""
    model = bm25s.BM25(method="lucene", backend="numpy")
    model.index(tokenize(list(texts.values())), show_progress=False)
    (tokens,) = tokenize([query])
    token_ids = model.get_tokens_ids(tokens)
    if not token_ids:
        return {}
    scores = np.asarray(model.get_scores_from_ids(token_ids))
    return {chunk_id: float(scores[i]) for i, chunk_id in enumerate(texts) if scores[i] > 0}


def test_scores_are_exactly_bm25s_lucene_scores(tmp_path: Path) -> None:
    bm25 = Bm25Index(tmp_path / "bm25")
    bm25.rebuild(list(CORPUS), list(CORPUS.values()))
    for query in queries():
        assert dict(bm25.search(query, 100)) == reference_scores(CORPUS, query), query


def test_removing_chunks_gives_the_index_a_rebuild_of_the_rest_gives(tmp_path: Path) -> None:
    bm25 = Bm25Index(tmp_path / "bm25")
    bm25.rebuild(list(CORPUS), list(CORPUS.values()))
    assert bm25.updatable
    bm25.remove(["refunds", "dup-2", "empty", "not-indexed"])  # an id the index does not hold is ignored
    rest = {k: v for k, v in CORPUS.items() if k not in {"refunds", "dup-2", "empty"}}
    rebuilt = Bm25Index(tmp_path / "rebuilt")
    rebuilt.rebuild(list(rest), list(rest.values()))
    assert bm25.chunk_ids() == list(rest) and len(bm25) == len(rest)
    for query in queries():  # every score changes (N, df, average length), and equals the rebuild's
        assert bm25.search(query, 100) == rebuilt.search(query, 100), query
        assert dict(bm25.search(query, 100)) == reference_scores(rest, query), query
    bm25.save()
    reloaded = Bm25Index(tmp_path / "bm25")  # the term table is saved with the index
    assert reloaded.updatable and reloaded.search("shipping", 5) == rebuilt.search("shipping", 5)
    reloaded.remove(list(rest))
    assert len(reloaded) == 0 and reloaded.search("shipping", 5) == []


def test_an_index_saved_without_a_term_table_loads_searches_and_is_rebuilt_not_updated(tmp_path: Path) -> None:
    # An index saved before the term table existed: bm25s' arrays and the manifest only.
    path = tmp_path / "bm25"
    save_as_format_1(path, PASSAGES, term_table=False)
    old = Bm25Index(path)
    assert old.search("Invalidenstrasse", 1)[0][0] == "office" and not old.updatable
    with pytest.raises(InputError, match="without its term table"):
        old.remove(["office"])
    old.save()  # saved unchanged: still without one, as format 1
    assert json.loads((path / "kgrag_bm25.json").read_text())["format"] == 1
    assert not Bm25Index(path).updatable and Bm25Index(path).search("E42", 1)
    old.rebuild(list(PASSAGES), list(PASSAGES.values()))
    old.save()
    assert Bm25Index(path).updatable


def test_a_damaged_term_table_is_corrupt(index: Bm25Index, tmp_path: Path) -> None:
    index.save()
    (tmp_path / "bm25" / "kgrag_bm25_terms.npz").write_bytes(b"garbage")
    with pytest.raises(StoreCorruptError, match="term table"):
        Bm25Index(tmp_path / "bm25")
