"""Text helpers shared by every layer: sentence splitters with character spans, and the English stop words."""

from __future__ import annotations

import re
from collections.abc import Iterator


def word_set(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` as a frozenset."""
    return frozenset(text.split())


_PARAGRAPH_OR_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")


def sentence_spans(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each sentence or paragraph, with surrounding whitespace excluded."""
    pos = 0
    for match in _PARAGRAPH_OR_SENTENCE_END.finditer(text):
        yield from trimmed_spans(
            text,
            pos,
            match.start() + len(match.group(0).rstrip()) if match.group(0).strip() else match.start(),
        )
        pos = match.end()
    yield from trimmed_spans(text, pos, len(text))


def trimmed_spans(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` with the whitespace at both ends cut off; nothing when only whitespace is left."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        yield start, end


_ABBREVIATIONS = word_set("mr mrs ms dr st jr sr prof gen col lt sgt capt rev hon vs no vol fig ft mt")


# A sentence ends at . ! or ? (plus closing quotes/brackets and Wikipedia notes such as "[citation needed]")
# followed by whitespace and a character that is not a lowercase letter.
_SENTENCE_END = re.compile(r"[.!?]+(?:\[[^\]\n]{0,40}\])*[\"'\u201d\u2019)\]]*(?=\s+[^\sa-z])")


_WORD_BEFORE = re.compile(r"([\w.]+)$")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of each sentence, whitespace-trimmed; abbreviations and initials do not end one."""
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _SENTENCE_END.finditer(text):
        before = _WORD_BEFORE.search(text, max(0, match.start() - 40), match.start())
        if match.group().startswith(".") and before is not None:
            word = before.group(1)
            bare = word.rstrip(".")
            if (len(bare) == 1 and bare.isupper()) or "." in bare or bare.casefold() in _ABBREVIATIONS:
                continue
        _append_trimmed(text, begin, match.end(), spans)
        begin = match.end()
    _append_trimmed(text, begin, len(text), spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))
