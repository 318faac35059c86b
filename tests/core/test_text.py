"""core.text: the sentence splitters' spans index the text exactly; the stop-word sets are what their users rely on."""

from __future__ import annotations

import pytest

from core.text import (
    CITATION_STOPWORDS,
    STOPWORDS,
    SUPPORT_STOPWORDS,
    sentence_spans,
    split_sentences,
    trimmed_spans,
    word_set,
)

TEXT = "Dr. Smith founded Acme in 1990. It grew fast!  Then J. R. Doe joined.\n\nA new paragraph starts here"


def test_sentence_spans_cover_sentences_and_paragraphs_without_whitespace() -> None:
    spans = list(sentence_spans(TEXT))
    pieces = [TEXT[a:b] for a, b in spans]
    assert all(p == p.strip() and p for p in pieces)
    assert pieces[-1] == "A new paragraph starts here"
    assert "It grew fast!" in pieces


def test_split_sentences_keeps_abbreviations_and_initials_inside_a_sentence() -> None:
    pieces = [TEXT[a:b] for a, b in split_sentences(TEXT)]
    assert pieces[0] == "Dr. Smith founded Acme in 1990."
    assert "Then J. R. Doe joined." in pieces


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_blank_text_has_no_sentences(text: str) -> None:
    assert list(sentence_spans(text)) == [] and split_sentences(text) == []
    assert list(trimmed_spans(text, 0, len(text))) == []


def test_trimmed_spans_cut_whitespace_at_both_ends() -> None:
    assert list(trimmed_spans("  ab c \n", 0, 8)) == [(2, 6)]


def test_stop_word_sets_are_lowercase_words_and_keep_their_roles() -> None:
    assert word_set(" a  b\nc ") == frozenset({"a", "b", "c"})
    for words in (STOPWORDS, CITATION_STOPWORDS, SUPPORT_STOPWORDS):
        assert words and all(w == w.lower() and w.isalpha() for w in words)
    assert {"the", "of", "and"} <= STOPWORDS & CITATION_STOPWORDS & SUPPORT_STOPWORDS
    # The support check also ignores how answers talk about their sources; entity linking must not.
    assert {"according", "passage", "states"} <= SUPPORT_STOPWORDS
    assert not {"passage", "states"} & STOPWORDS
