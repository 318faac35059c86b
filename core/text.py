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


#: Common English function words: never linked as entities on their own, never the edge of a fuzzy-matched span.
STOPWORDS = word_set(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he
    her here hers herself him himself his how i if in into is it its itself just many me more most much my
    myself no nor not now of off on once only or other our ours ourselves out over own same she should so some
    such than that the their theirs them themselves then there these they this those through to too under until
    up very was we were what when where which while who whom whose why will with would you your yours yourself
    yourselves
    """
)

#: Words that do not make two sentences share content when citations are aligned to passages.
CITATION_STOPWORDS = word_set(
    """
    a an and are as at be by can did do does for from has have how in is it its may must no not of on or that
    the their this to was were what when where which who will with
    """
)

#: Words the lexical-support check does not require a passage to contain: function words and the words answers
#: use to talk about their sources ("according", "passage", "states").
SUPPORT_STOPWORDS = word_set(
    """
    a about above according after again against all also am an and answer answers any are as at based be because
    been before being below between both but by can could did do document documents does doing down during each
    either few for from further given had has have having he her here hers herself him himself his how i if in
    into is it its itself just many me more most much my myself neither no nor not now of off on once one only
    or other our ours ourselves out over own passage passages question said same say says she should so some
    stated states such than that the their theirs them themselves then there these they this those through thus
    to too under until up upon very was we were what when where which while who whom whose why will with would
    yet you your yours
    """
)
