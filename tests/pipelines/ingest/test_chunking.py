"""Chunking keeps exact character spans and never cuts a sentence that fits."""

from __future__ import annotations

from pathlib import Path

from core.text import sentence_spans
from core.types import Document, sha256_text
from pipelines.ingest.chunking import chunk_document

DATA = Path(__file__).resolve().parents[3] / "data"


def doc(text: str) -> Document:
    return Document(id="d1", source="d1.txt", text=text, sha256=sha256_text(text))


def test_spans_index_into_the_document() -> None:
    text = (DATA / "employee-handbook.md").read_text("utf-8")
    chunks = chunk_document(doc(text), max_chars=300, min_chars=50)
    assert len(chunks) > 3
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert len(chunk.text) <= 300
        assert chunk.sha256 == sha256_text(chunk.text)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    assert len({c.id for c in chunks}) == len(chunks)


def test_sentences_are_not_cut() -> None:
    text = "First sentence is here. Second one follows! Third asks why? Fourth ends it."
    chunks = chunk_document(doc(text), max_chars=45, min_chars=1)
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == [
        "First sentence is here.",
        "Second one follows!",
        "Third asks why?",
        "Fourth ends it.",
    ]
    for chunk in chunks:
        assert chunk.text.endswith((".", "!", "?"))


def test_overlong_sentence_is_split_at_whitespace() -> None:
    text = "word " * 100
    chunks = chunk_document(doc(text.strip()), max_chars=50, min_chars=1)
    assert all(len(c.text) <= 50 for c in chunks)
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_chunk_ids_are_stable_and_content_addressed() -> None:
    text = "Alpha is one. Beta is two."
    first = chunk_document(doc(text), max_chars=15, min_chars=1)
    second = chunk_document(doc("Zero comes first. " + text), max_chars=17, min_chars=1)
    assert {c.id for c in first} <= {c.id for c in second}
