"""Structured replies: parsing, the draft the gate judges, and sentence-level citation spans."""

from __future__ import annotations

from core.types import Citation
from pipelines.answer.structured import StructuredReply, parse_reply, sentence_citations
from prompts.abstention import is_abstention
from retrieval.sentences import ShownSentence

DOCUMENT = "Intro line. Dear Brother is a song. It was recorded in 1948. Audrey was pregnant then. The end."
CHUNK_START = DOCUMENT.index("Dear")
CHUNK_TEXT = DOCUMENT[CHUNK_START : DOCUMENT.index(" The end")]


def cited() -> Citation:
    return Citation(
        chunk_id="c1",
        document_id="d1",
        source="d1.txt",
        start=CHUNK_START,
        end=CHUNK_START + len(CHUNK_TEXT),
        text=CHUNK_TEXT,
        score=0.9,
    )


def sentence(sid: str, passage: int, text: str) -> ShownSentence:
    start = CHUNK_TEXT.index(text)
    return ShownSentence(sid, passage, start, start + len(text), text)


def test_a_reply_is_parsed_and_its_ids_normalised() -> None:
    reply = parse_reply('{"evidence": ["2.1", "[1.03]", "2.1", "x"], "answer": " Hank Williams Jr. "}')
    assert reply == StructuredReply(answer="Hank Williams Jr.", evidence=("2.1", "1.3"))
    assert reply.passages() == [2, 1]
    assert reply.draft() == "Hank Williams Jr. [2][1]"


def test_what_is_not_the_asked_object_is_none() -> None:
    for text in ("not json", "[1, 2]", '{"evidence": []}', '{"answer": 3}', '{"answer": "x"'):
        assert parse_reply(text) is None, text
    assert parse_reply('{"answer": "Paris"}') == StructuredReply("Paris", ())


def test_unknown_is_an_abstention_and_no_evidence_means_no_marker() -> None:
    assert is_abstention(StructuredReply("unknown", ("1.1",)).draft())
    assert is_abstention(StructuredReply(" Unknown. ", ()).draft())
    assert StructuredReply("Paris", ()).draft() == "Paris"


def test_a_citation_spans_the_sentences_pointed_at() -> None:
    pointed = [sentence("1.2", 1, "It was recorded in 1948."), sentence("1.3", 1, "Audrey was pregnant then.")]
    (narrow,) = sentence_citations([cited()], pointed, {1: "c1"})
    assert narrow.text == "It was recorded in 1948. Audrey was pregnant then."
    assert DOCUMENT[narrow.start : narrow.end] == narrow.text  # offsets into the document


def test_without_pointers_the_fallback_spans_then_the_chunk() -> None:
    start = CHUNK_TEXT.index("Dear")
    (narrow,) = sentence_citations([cited()], [], {1: "c1"}, {"c1": [(start, start + len("Dear Brother is a song."))]})
    assert narrow.text == "Dear Brother is a song." and DOCUMENT[narrow.start : narrow.end] == narrow.text
    # A pointer into another passage, no fallback, or a span outside the chunk: the chunk span stays.
    other = [sentence("2.1", 2, "Audrey was pregnant then.")]
    assert sentence_citations([cited()], other, {1: "c1", 2: "c2"}) == [cited()]
    assert sentence_citations([cited()], [], {}, {"c1": [(0, 10_000)]}) == [cited()]
