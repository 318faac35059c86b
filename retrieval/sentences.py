"""Evidence, not pages: the sentences of the retrieved passages that matter to a question, under a token budget.

A 1.5B model on two cores spends most of an answer's time reading its prompt, and reads a long one worse. So the
answer prompt shows, of each passage, its first sentence (it names what the passage is about), the sentences that
share words with the question, hold a graph fact about the question's entities, or name another shown passage
(the bridge of a two-hop question), and the sentence before a chosen one that opens with a pronoun. Sentences keep
their order in the passage and their character offsets in the chunk, so a citation can point at exactly the
sentence the model used.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from core.errors import ConfigurationError
from core.stemming import EnglishStemmer
from core.text import STOPWORDS, split_sentences
from core.types import RetrievedChunk
from retrieval.context import approximate_tokens

_WORD = re.compile(r"\w+")
_PRONOUN_OPENING = re.compile(r"^(?:He|She|It|They|His|Her|Its|Their|This|These|Those|The (?:company|band|film))\b")
_STEMMER = EnglishStemmer()  # thread-safe: the API stems in several threads at once
#: Score of a sentence holding a graph fact about the question's entities, and of one naming another passage.
FACT_WEIGHT = 1.5
BRIDGE_WEIGHT = 1.0


def word_stems(text: str) -> set[str]:
    """Content words of ``text``, case-folded and stemmed; numbers kept whole."""
    words = (w.casefold() for w in _WORD.findall(text))
    return {w if w.isdigit() else _STEMMER.stem(w) for w in words if w not in STOPWORDS and len(w) > 1}


@dataclass(frozen=True)
class ShownSentence:
    """A sentence shown to the model: its id (``"2.3"``: passage 2, third sentence shown), the passage's number,
    and its offsets in the passage's chunk."""

    id: str
    passage: int
    start: int
    end: int
    text: str


class SentenceSelector:
    """Picks each passage's sentences for the prompt under ``budget_tokens`` (counted by ``count_tokens``).

    Passages are served in rank order: each first gets its first sentence and its ``per_passage`` best scored
    sentences (score: stems shared with the question, plus ``FACT_WEIGHT`` when a graph fact was extracted from it,
    plus ``BRIDGE_WEIGHT`` when it names another shown passage's title); a chosen sentence opening with a pronoun
    brings the sentence before it. A passage whose first sentence does not fit is left out. With
    ``first_sentence`` off (the strict retry's focused view) a passage shows only its scored sentences, so a
    passage sharing nothing with the question shows nothing; when no passage shares anything, the view falls back
    to the passages' openings rather than an empty prompt.
    """

    def __init__(
        self,
        budget_tokens: int = 450,
        *,
        per_passage: int = 2,
        first_sentence: bool = True,
        count_tokens: Callable[[str], int] = approximate_tokens,
    ) -> None:
        if budget_tokens < 1:
            raise ConfigurationError(f"evidence budget must be at least 1 token, got {budget_tokens}")
        if per_passage < 0:
            raise ConfigurationError(f"sentences per passage must be 0 or more, got {per_passage}")
        self.budget_tokens = budget_tokens
        self.per_passage = per_passage
        self.first_sentence = first_sentence
        self.count_tokens = count_tokens

    def select(
        self,
        question: str,
        passages: Sequence[RetrievedChunk],
        fact_spans: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    ) -> list[list[tuple[int, int]]]:
        """Per passage (same order; an empty list for a passage left out), the ``(start, end)`` chunk offsets of
        the sentences shown, in text order.

        ``fact_spans``: by chunk id, the ``(start, end)`` evidence spans of graph facts about the question's
        entities, in chunk offsets."""
        wanted = word_stems(question)
        titles = [word_stems(p.chunk.title) for p in passages]
        left = self.budget_tokens
        shown: list[list[tuple[int, int]]] = []
        for number, hit in enumerate(passages, start=1):
            text = hit.chunk.text
            spans = split_sentences(text) or [(0, len(text))]
            facts = (fact_spans or {}).get(hit.chunk.id, ())
            others = [t for i, t in enumerate(titles) if i != number - 1 and t]
            scores = [self._score(text[s:e], (s, e), wanted, facts, others) for s, e in spans]
            first = 1 if self.first_sentence else 0
            best = sorted((i for i in range(first, len(spans)) if scores[i] > 0), key=lambda i: (-scores[i], i))
            chosen: list[int] = []
            for index in [0, *best[: self.per_passage]] if self.first_sentence else best[: self.per_passage]:
                group = [index]
                if index > 0 and _PRONOUN_OPENING.match(text[spans[index][0] : spans[index][1]]):
                    group.insert(0, index - 1)
                cost = sum(self.count_tokens(text[spans[i][0] : spans[i][1]]) for i in group if i not in chosen)
                if cost > left:
                    if index == 0 and self.first_sentence:
                        break  # not even the passage's opening fits: leave the passage out
                    continue
                left -= cost
                chosen += [i for i in group if i not in chosen]
            shown.append([spans[i] for i in sorted(chosen)])
        if not self.first_sentence and passages and not any(shown):
            openings = SentenceSelector(
                self.budget_tokens, per_passage=0, first_sentence=True, count_tokens=self.count_tokens
            )
            return openings.select(question, passages, fact_spans)
        return shown

    @staticmethod
    def _score(
        sentence: str,
        span: tuple[int, int],
        wanted: set[str],
        facts: Sequence[tuple[int, int]],
        others: Sequence[set[str]],
    ) -> float:
        stems = word_stems(sentence)
        score = float(len(stems & wanted))
        if any(start < span[1] and span[0] < end for start, end in facts):
            score += FACT_WEIGHT
        if any(title <= stems for title in others):
            score += BRIDGE_WEIGHT
        return score


def number_sentences(texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]) -> list[ShownSentence]:
    """The shown sentences with their ids: passage ``n`` (1-based, in ``texts`` order), sentence ``k`` of it."""
    return [
        ShownSentence(f"{n}.{k}", n, start, end, text[start:end])
        for n, (text, chosen) in enumerate(zip(texts, spans, strict=True), start=1)
        for k, (start, end) in enumerate(chosen, start=1)
    ]
