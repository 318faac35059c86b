"""The evidence sentence selector: first sentence, question words, graph facts, bridges, budget, ids."""

from __future__ import annotations

import pytest

from core.errors import ConfigurationError
from retrieval.sentences import SentenceSelector, number_sentences, word_stems
from tests.retrieval.test_context import hit, words

AUDREY = (
    "Audrey Mae Williams was an American singer. "
    "She grew up on a farm in Alabama. "
    "She married Hank Williams in 1944. "
    "Hank Williams Jr., their son, was born in 1949 in Shreveport. "
    "She toured with the Drifting Cowboys."
)
SONG = (
    "Dear Brother is a song recorded by Hank Williams. "
    "It was recorded in December 1948. "
    "At the time, Audrey Williams was pregnant. "
    "The single reached no chart."
)


def shown(text: str, spans: list[tuple[int, int]]) -> list[str]:
    return [text[s:e] for s, e in spans]


def test_first_sentence_and_the_question_s_best_sentences_in_text_order() -> None:
    selector = SentenceSelector(1000, per_passage=1, count_tokens=words)
    (spans,) = selector.select("Where was Hank Williams Jr. born?", [hit("a", AUDREY)])
    assert shown(AUDREY, spans) == [
        "Audrey Mae Williams was an American singer.",
        "Hank Williams Jr., their son, was born in 1949 in Shreveport.",
    ]


def test_a_pronoun_opening_brings_the_sentence_before_it() -> None:
    selector = SentenceSelector(1000, per_passage=1, count_tokens=words)
    (spans,) = selector.select("Who was pregnant at the time?", [hit("s", SONG)])
    assert shown(SONG, spans)[-1] == "At the time, Audrey Williams was pregnant."
    (spans,) = selector.select("When was it recorded in December?", [hit("s", SONG)])
    # "It was recorded..." opens with a pronoun: its antecedent sentence (the first) is there anyway.
    assert shown(SONG, spans) == [
        "Dear Brother is a song recorded by Hank Williams.",
        "It was recorded in December 1948.",
    ]


def test_a_graph_fact_and_a_bridge_to_another_passage_raise_a_sentence() -> None:
    selector = SentenceSelector(1000, per_passage=1, count_tokens=words)
    farm = AUDREY.index("She grew up")
    (spans,) = selector.select("Which singer?", [hit("a", AUDREY)], {"a": [(farm, farm + 10)]})
    assert "She grew up on a farm in Alabama." in shown(AUDREY, spans)
    # Passage 2's title is named by a sentence of passage 1: that sentence is the bridge.
    other = hit("t", "The Drifting Cowboys were a band.", title="Drifting Cowboys")
    (spans, _) = selector.select("Which band?", [hit("a", AUDREY), other])
    assert "She toured with the Drifting Cowboys." in shown(AUDREY, spans)


def test_the_budget_is_kept_and_a_passage_whose_opening_does_not_fit_is_left_out() -> None:
    passages = [hit("a", AUDREY), hit("s", SONG), hit("x", "Short one here.")]
    selector = SentenceSelector(14, per_passage=2, count_tokens=words)
    picked = selector.select("Where was Hank Williams Jr. born in 1949?", passages)
    used = sum(words(p.chunk.text[s:e]) for p, spans in zip(passages, picked, strict=True) for s, e in spans)
    assert used <= 14
    assert picked[0] and picked[1] == [] and picked[2]  # the song's 9-word opening did not fit; a later one did


def test_ids_number_passages_and_their_shown_sentences() -> None:
    texts = ["A b. C d.", "E f."]
    found = number_sentences(texts, [[(0, 4), (5, 9)], [(0, 4)]])
    assert [(s.id, s.passage, s.text) for s in found] == [("1.1", 1, "A b."), ("1.2", 1, "C d."), ("2.1", 2, "E f.")]


def test_stems_ignore_stop_words_and_case() -> None:
    assert word_stems("The Recordings were RECORDED in 1948") == {"record", "1948"}


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        SentenceSelector(0)
    with pytest.raises(ConfigurationError):
        SentenceSelector(10, per_passage=-1)


def test_the_focused_view_shows_only_sentences_about_the_question() -> None:
    selector = SentenceSelector(1000, per_passage=1, first_sentence=False, count_tokens=words)
    unrelated = hit("x", "Something else entirely. Nothing here either.")
    picked = selector.select("Where was Hank Williams Jr. born?", [hit("a", AUDREY), unrelated])
    assert shown(AUDREY, picked[0]) == ["Hank Williams Jr., their son, was born in 1949 in Shreveport."]
    assert picked[1] == [], "a passage sharing nothing with the question shows nothing"


def test_the_focused_view_falls_back_to_openings_when_no_passage_shares_a_word() -> None:
    selector = SentenceSelector(1000, per_passage=1, first_sentence=False, count_tokens=words)
    unrelated = hit("x", "Something else entirely. Nothing here either.")
    picked = selector.select("Where was Hank Williams Jr. born?", [unrelated])
    assert shown(unrelated.chunk.text, picked[0]) == ["Something else entirely."], "never an empty prompt"
