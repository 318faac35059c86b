"""Align an answer's citation markers with the passages that actually support each sentence.

Small models often cite the wrong passage number, or none. For every answer sentence this keeps the cited passages
that share enough content words with it; when none does, it cites the passage that supports the sentence best.
The answer's markers are then renumbered so that ``[n]`` points at ``citations[n-1]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import CITATION_STOPWORDS, sentence_spans
from core.types import Citation, RetrievedChunk

_MARKER = re.compile(r"\s*\[(\d+(?:\s*,\s*\d+)*)\]")
_TOKEN = re.compile(r"\w+")
#: Share of a sentence's content words a passage must contain to count as support.
MIN_SUPPORT = 0.3


def content_words(text: str) -> set[str]:
    return {
        w
        for w in (t.casefold() for t in _TOKEN.findall(text))
        if w not in CITATION_STOPWORDS and (len(w) > 2 or w.isdigit())
    }


@dataclass
class _Sentence:
    text: str
    cited: list[int]


def _sentences(answer: str) -> list[_Sentence]:
    out: list[_Sentence] = []
    for start, end in sentence_spans(answer):
        piece = answer[start:end]
        cited = [int(n) for m in _MARKER.finditer(piece) for n in m.group(1).split(",")]
        text = _MARKER.sub("", piece).strip()
        if not text and out:  # a marker standing after the sentence it belongs to
            out[-1].cited.extend(cited)
        elif text:
            out.append(_Sentence(text, cited))
    return out


def support(sentence: str, passage: str) -> float:
    """Share of the sentence's content words that occur in the passage."""
    words = content_words(sentence)
    return len(words & content_words(passage)) / len(words) if words else 0.0


def align_citations(answer: str, passages: list[RetrievedChunk]) -> tuple[str, list[Citation]]:
    """Return the answer with renumbered markers, and the citations they point at (in order of first use)."""
    order: list[int] = []  # indexes into passages
    rendered: list[str] = []
    for sentence in _sentences(answer):
        scores = [support(sentence.text, p.chunk.text) for p in passages]
        best = max(scores, default=0.0)
        floor = max(MIN_SUPPORT, 0.6 * best)
        chosen = [n - 1 for n in dict.fromkeys(sentence.cited) if 1 <= n <= len(passages) and scores[n - 1] >= floor]
        if not chosen and best >= MIN_SUPPORT:
            chosen = [scores.index(best)]
        numbers = []
        for index in chosen:
            if index not in order:
                order.append(index)
            numbers.append(order.index(index) + 1)
        markers = "".join(f" [{n}]" for n in sorted(numbers))
        rendered.append(sentence.text + markers)
    citations = [citation(passages[i]) for i in order]
    return " ".join(rendered), citations


def citation(hit: RetrievedChunk) -> Citation:
    chunk = hit.chunk
    return Citation(
        chunk_id=chunk.id,
        document_id=chunk.document_id,
        source=chunk.source,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        score=round(hit.score, 6),
    )


def renumber(answer: str, shown: list[RetrievedChunk]) -> tuple[str, list[Citation], dict[int, int]]:
    """``answer``'s markers (``[n]`` = ``shown[n-1]``) renumbered by first use, the citations they point at, and
    the map from old to new numbers (markers pointing at no passage are dropped)."""
    order: list[int] = []

    def number(match: re.Match[str]) -> str:
        new = []
        for raw in match.group(1).split(","):
            old = int(raw)
            if not 1 <= old <= len(shown):
                continue
            if old not in order:
                order.append(old)
            new.append(order.index(old) + 1)
        return "".join(f" [{n}]" for n in sorted(set(new)))

    text = _MARKER.sub(number, answer)
    return text, [citation(shown[old - 1]) for old in order], {old: i + 1 for i, old in enumerate(order)}
