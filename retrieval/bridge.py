"""Title bridge: the second hop of a multi-hop question, found through the title the first-hop passage names.

Most multi-hop misses of graph retrieval are second-hop passages whose document title the first-hop passage names
(a question about a novelist finds her passage, which names her publisher "Two Dollar Radio"; the publisher's own
passage, titled so, shares little with the question, and the publisher is one of a dozen entities the first passage
mentions). :class:`TitleIndex` maps every document title to its document; :class:`TitleBridge` reads the top passages
of a ranking, finds the documents they name by title and lifts those documents' best chunks to just below the
passage that names them. No model call: one dictionary lookup per word of the passages read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from core.errors import ConfigurationError
from core.types import Chunk

__all__ = ["TitleBridge", "TitleIndex"]

_WORD = re.compile(r"\w+")
#: A trailing parenthesised qualifier, as in "Big Hero 6 (film)" or "Carry On (2004 revision)".
_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


def _key(text: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD.findall(text))


@dataclass(frozen=True)
class TitleIndex:
    """Document titles as lower-cased word sequences -> the documents so titled; built once per store state.

    With ``strip_qualifier`` a title is also indexed without a trailing parenthesised qualifier ("Big Hero 6 (film)"
    is named by "Big Hero 6"). Titles without a letter ("1998") are not indexed, nor a title shared by more than
    ``max_documents`` documents: it identifies none of them ("Meeting notes"), and following it would cost a lookup
    per document. ``chunks_of`` lists each document's chunk ids in document order, ``document_of`` maps a chunk id to
    its document id.
    """

    keys: dict[tuple[str, ...], tuple[str, ...]]
    capitalised: frozenset[tuple[str, ...]]
    prefixes: frozenset[tuple[str, ...]]
    chunks_of: dict[str, tuple[str, ...]]
    document_of: dict[str, str]

    @classmethod
    def build(cls, chunks: Iterable[Chunk], *, strip_qualifier: bool = True, max_documents: int = 10) -> TitleIndex:
        """Index the titles of the documents of ``chunks`` (every chunk carries its document's title)."""
        ordered: dict[str, list[tuple[int, str]]] = {}
        titles: dict[str, str] = {}
        for chunk in chunks:
            ordered.setdefault(chunk.document_id, []).append((chunk.ordinal, chunk.id))
            if chunk.title:
                titles[chunk.document_id] = chunk.title
        keys: dict[tuple[str, ...], list[str]] = {}
        capitalised: set[tuple[str, ...]] = set()
        for document, title in titles.items():
            variants = {title, _QUALIFIER.sub("", title)} if strip_qualifier else {title}
            for variant in variants:
                key = _key(variant)
                if not any(ch.isalpha() for word in key for ch in word):
                    continue
                if document not in keys.setdefault(key, []):
                    keys[key].append(document)
                if any(ch.isupper() for ch in variant):
                    capitalised.add(key)
        keys = {key: docs for key, docs in keys.items() if len(docs) <= max_documents}
        capitalised &= keys.keys()
        chunks_of = {doc: tuple(cid for _, cid in sorted(pairs)) for doc, pairs in ordered.items()}
        return cls(
            keys={key: tuple(docs) for key, docs in keys.items()},
            capitalised=frozenset(capitalised),
            prefixes=frozenset(key[:n] for key in keys for n in range(1, len(key) + 1)),
            chunks_of=chunks_of,
            document_of={cid: doc for doc, ids in chunks_of.items() for cid in ids},
        )

    def named_in(self, text: str) -> list[str]:
        """Documents whose title ``text`` names (whole words, any case), in order of first mention.

        Mentions are matched leftmost-longest ("New York City" names the document so titled, not "New York" or
        "York"). A mention written all in lower case does not name a title that has capitals ("the radio" does not
        name the document "Radio"): such titles are names, and a name in lower case is most likely a common word.
        """
        raw = _WORD.findall(text)
        words = tuple(w.lower() for w in raw)
        found: dict[str, None] = {}
        start = 0
        while start < len(words):
            longest = 0
            end = start + 1
            while end <= len(words) and words[start:end] in self.prefixes:
                key = words[start:end]
                if key in self.keys and not (key in self.capitalised and all(w.islower() for w in raw[start:end])):
                    longest = end - start
                end += 1
            if longest:
                found.update(dict.fromkeys(self.keys[words[start : start + longest]]))
                start += longest
            else:
                start += 1
        return list(found)


@dataclass(frozen=True)
class TitleBridge:
    """Lifts the documents that the top passages name by title to just below the passage naming them.

    The first ``scan`` documents of a ranking (each by its best chunk) are read; of the other documents a passage
    names (:meth:`TitleIndex.named_in`), its ``per_passage`` best scored (ties: first named first) get, on their best
    chunk, the score ``inherit * passage score + (1 - inherit) * own score`` when that is higher than their own.
    ``strip_qualifier`` and ``max_title_documents`` are passed to :meth:`TitleIndex.build`.
    """

    scan: int = 2
    per_passage: int = 2
    inherit: float = 0.7
    strip_qualifier: bool = True
    max_title_documents: int = 10

    def __post_init__(self) -> None:
        if self.scan < 1 or self.per_passage < 1:
            raise ConfigurationError(
                f"graph bridge scan and per_passage must be at least 1, got {self.scan} and {self.per_passage}"
            )
        if self.max_title_documents < 1:
            raise ConfigurationError(
                f"graph bridge max_title_documents must be at least 1, got {self.max_title_documents}"
            )
        if not 0.0 < self.inherit <= 1.0:
            raise ConfigurationError(f"graph bridge inherit must be in (0, 1], got {self.inherit}")

    def index(self, chunks: Iterable[Chunk]) -> TitleIndex:
        """The title index this bridge reads, over ``chunks`` (the whole store)."""
        return TitleIndex.build(chunks, strip_qualifier=self.strip_qualifier, max_documents=self.max_title_documents)

    def lift(
        self,
        ranked: Iterable[tuple[str, float]],
        score_of: Callable[[str], float],
        text_of: Callable[[Sequence[str]], Mapping[str, str]],
        titles: TitleIndex,
    ) -> dict[str, float]:
        """New scores of the bridge chunks (chunk id -> score), given ``ranked`` ``(chunk id, score)`` best first.

        ``ranked`` is read only as far as the first ``scan`` documents; ``score_of`` gives any chunk's current
        score (0 when unscored), ``text_of`` the texts of the chunks read.
        """
        parents: list[tuple[str, float]] = []
        read: set[str] = set()
        for chunk_id, score in ranked:
            document = titles.document_of.get(chunk_id)
            if document is None or document in read:
                continue
            read.add(document)
            parents.append((chunk_id, score))
            if len(parents) == self.scan:
                break
        texts = text_of([chunk_id for chunk_id, _ in parents]) if parents else {}
        lifted: dict[str, float] = {}
        for chunk_id, parent_score in parents:
            options: list[tuple[float, int, str]] = []
            for position, document in enumerate(titles.named_in(texts.get(chunk_id, ""))):
                if document in read:
                    continue
                best = max(titles.chunks_of.get(document, ()), key=score_of, default=None)
                if best is not None:
                    options.append((score_of(best), -position, best))
            for own, _, best in sorted(options, reverse=True)[: self.per_passage]:
                score = self.inherit * parent_score + (1.0 - self.inherit) * own
                if score > max(own, lifted.get(best, float("-inf"))):
                    lifted[best] = score
        return lifted
