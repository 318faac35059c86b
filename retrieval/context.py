"""Fit retrieved passages and graph facts into a token budget, keeping ids for citation.

Passages are taken in rank order, whole when they fit. A passage that does not fit whole is cut after its last
complete sentence that fits (never mid-sentence) and marked truncated; one whose first sentence does not fit is
skipped, and later (shorter) passages are still tried. Facts fill what is left, those whose source chunk is shown
first, each carrying the citation number of that passage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.errors import ConfigurationError
from core.text import split_sentences
from core.types import Fact, RetrievedChunk

_TOKEN = re.compile(r"\w+|[^\w\s]")


def approximate_tokens(text: str) -> int:
    """A tokenizer-free token count: words and punctuation marks, times 1.3 for sub-word splits, rounded up."""
    return -(-len(_TOKEN.findall(text)) * 13 // 10)


@dataclass(frozen=True)
class ContextPassage:
    """A passage in the context: its citation number, chunk and document ids, and the text shown."""

    n: int
    chunk_id: str
    document_id: str
    title: str
    text: str
    truncated: bool
    tokens: int


@dataclass(frozen=True)
class ContextFact:
    """A fact in the context, with the citation number of its source passage (None when not shown)."""

    fact: Fact
    n: int | None
    tokens: int


@dataclass
class ContextWindow:
    """What fits the budget: passages and facts in citation order, and the tokens they use."""

    budget: int
    passages: list[ContextPassage] = field(default_factory=list)
    facts: list[ContextFact] = field(default_factory=list)
    skipped_chunk_ids: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.passages) + sum(f.tokens for f in self.facts)


class ContextAssembler:
    """Builds a :class:`ContextWindow` under ``budget_tokens`` (counted by ``count_tokens``).

    ``fact_share`` of the budget is held back for facts while passages are placed (only when there are facts);
    whatever the facts do not use is not given back to passages, so the passage set does not depend on the facts.
    """

    def __init__(
        self,
        budget_tokens: int,
        *,
        count_tokens: Callable[[str], int] = approximate_tokens,
        max_facts: int = 10,
        fact_share: float = 0.15,
    ) -> None:
        if budget_tokens < 1:
            raise ConfigurationError(f"context budget must be at least 1 token, got {budget_tokens}")
        if not 0.0 <= fact_share < 1.0:
            raise ConfigurationError(f"fact_share must be in [0, 1), got {fact_share}")
        self.budget = budget_tokens
        self.count_tokens = count_tokens
        self.max_facts = max_facts
        self.fact_share = fact_share

    def _header(self, n: int, title: str) -> int:
        return self.count_tokens(f"[{n}] {title}\n")

    def _fit_sentences(self, text: str, room: int) -> str:
        """The longest prefix of whole sentences of ``text`` within ``room`` tokens ("" if none)."""
        best = ""
        for _start, end in split_sentences(text):
            candidate = text[:end].rstrip()
            if self.count_tokens(candidate) > room:
                break
            best = candidate
        return best

    def assemble(self, passages: Sequence[RetrievedChunk], facts: Sequence[Fact] = ()) -> ContextWindow:
        """Passages (rank order, each chunk once) then facts, all within the budget."""
        window = ContextWindow(budget=self.budget)
        reserve = int(self.budget * self.fact_share) if facts and self.max_facts > 0 else 0
        room = self.budget - reserve
        seen: set[str] = set()
        for hit in passages:
            chunk = hit.chunk
            if chunk.id in seen:
                continue
            seen.add(chunk.id)
            n = len(window.passages) + 1
            header = self._header(n, chunk.title)
            cost = header + self.count_tokens(chunk.text)
            text, truncated = chunk.text, False
            if cost > room:
                text, truncated = self._fit_sentences(chunk.text, room - header), True
                if not text:
                    window.skipped_chunk_ids.append(chunk.id)
                    continue
                cost = header + self.count_tokens(text)
            window.passages.append(ContextPassage(n, chunk.id, chunk.document_id, chunk.title, text, truncated, cost))
            room -= cost
        number = {p.chunk_id: p.n for p in window.passages}
        room += reserve
        ordered = sorted(facts, key=lambda f: f.chunk_id not in number)  # stable: shown sources first
        for fact in ordered:
            if len(window.facts) >= self.max_facts:
                break
            cost = self.count_tokens(f"- {fact.subject} {fact.predicate} {fact.object} [{number.get(fact.chunk_id)}]")
            if cost <= room:
                window.facts.append(ContextFact(fact, number.get(fact.chunk_id), cost))
                room -= cost
        return window
