"""The context assembler: token budget, citation ids, never a passage cut mid-sentence."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from core.types import Chunk, Fact, RetrievedChunk
from retrieval.context import ContextAssembler, approximate_tokens


def words(text: str) -> int:
    """One token per whitespace-separated word: easy to count by hand."""
    return len(text.split())


def hit(chunk_id: str, text: str, title: str = "") -> RetrievedChunk:
    chunk = Chunk(
        id=chunk_id,
        document_id=f"doc-{chunk_id}",
        source=f"{chunk_id}.txt",
        title=title,
        text=text,
        start=0,
        end=len(text),
        ordinal=0,
        sha256="0" * 64,
    )
    return RetrievedChunk(chunk=chunk, score=1.0, method="dense")


LONG = "Alpha beta gamma delta. Epsilon zeta eta theta. Iota kappa lambda mu."  # 3 sentences x 4 words


def test_whole_passages_fit_with_their_ids_and_numbers() -> None:
    window = ContextAssembler(100, count_tokens=words).assemble([hit("c1", "One two three."), hit("c2", "Four five.")])
    assert [(p.n, p.chunk_id, p.document_id, p.text, p.truncated) for p in window.passages] == [
        (1, "c1", "doc-c1", "One two three.", False),
        (2, "c2", "doc-c2", "Four five.", False),
    ]
    assert window.tokens == (1 + 3) + (1 + 2)  # "[n]" header + words
    assert window.tokens <= window.budget


def test_a_passage_that_does_not_fit_is_cut_after_a_whole_sentence() -> None:
    # budget 10: header 1 + two sentences (8 words) = 9 fits; three sentences (13) do not
    window = ContextAssembler(10, count_tokens=words).assemble([hit("c1", LONG)])
    (passage,) = window.passages
    assert passage.text == "Alpha beta gamma delta. Epsilon zeta eta theta."
    assert passage.truncated and passage.tokens == 9
    assert window.tokens <= 10


def test_a_passage_whose_first_sentence_does_not_fit_is_skipped_and_later_ones_tried() -> None:
    window = ContextAssembler(5, count_tokens=words).assemble(
        [hit("big", LONG.replace(".", ",")), hit("s", "Short one.")]
    )
    assert [p.chunk_id for p in window.passages] == ["s"]
    assert window.passages[0].n == 1
    assert window.skipped_chunk_ids == ["big"]


def test_every_text_shown_ends_a_sentence_under_any_budget() -> None:
    passages = [hit(f"c{i}", LONG, title="Greek letters") for i in range(4)]
    for budget in range(1, 80):
        window = ContextAssembler(budget).assemble(passages)
        assert window.tokens <= budget
        for p in window.passages:
            assert p.text.endswith(".") and LONG.startswith(p.text)


def test_facts_fill_the_reserved_share_and_cite_their_passage() -> None:
    facts = [
        Fact(subject="Zeta", predicate="follows", object="Epsilon", chunk_id="elsewhere"),
        Fact(subject="Beta", predicate="follows", object="Alpha", chunk_id="c1"),
    ]
    window = ContextAssembler(40, count_tokens=words, fact_share=0.5).assemble([hit("c1", LONG)], facts)
    assert [(f.fact.subject, f.n) for f in window.facts] == [("Beta", 1), ("Zeta", None)]  # shown source first
    assert window.tokens <= 40
    limited = ContextAssembler(40, count_tokens=words, max_facts=1, fact_share=0.5).assemble([hit("c1", LONG)], facts)
    assert len(limited.facts) == 1


def test_duplicate_chunks_are_shown_once() -> None:
    window = ContextAssembler(100, count_tokens=words).assemble([hit("c1", "A b."), hit("c1", "A b.")])
    assert len(window.passages) == 1


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ConfigurationError, match="budget"):
        ContextAssembler(0)
    with pytest.raises(ConfigurationError, match="fact_share"):
        ContextAssembler(10, fact_share=1.0)


def test_approximate_tokens_counts_words_and_punctuation() -> None:
    assert approximate_tokens("") == 0
    assert approximate_tokens("Hello, world.") == 6  # 4 tokens * 1.3 = 5.2 -> 6
