"""Entity linking: which graph entities does a question talk about?"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from rapidfuzz import fuzz, process

from core.text import STOPWORDS
from core.types import Entity
from kg.base import GraphStore
from kg.names import is_stopword_span, normalize_name
from kg.offline_extractor import find_entity_spans

#: Longest word n-gram of the question tried as an entity name.
MAX_NGRAM = 4
#: Shortest normalised span that may be matched fuzzily.
MIN_FUZZY_CHARS = 4
#: Fuzzy matches must be about as long as the span: rapidfuzz's WRatio scores a short span inside a long name
#: (``"university"`` in ``"university of chicago"``) at 90, which would link every common word.
MAX_FUZZY_LENGTH_RATIO = 1.5
#: Fuzzy matching only scores names sharing at least this fraction of the span's word trigrams. A WRatio of 90
#: within the length ratio allows about one character edit in ten, and each edit breaks at most three trigrams,
#: so this bound keeps every name that can pass (checked on shared/eval: the same links as scoring every name).
MIN_SHARED_TRIGRAMS = 0.2

_WORD = re.compile(r"\w+(?:['\u2019\-]\w+)*")


def word_trigrams(normalised: str) -> set[str]:
    """Character trigrams of each word padded with spaces (``"ab cd"`` -> `` ab``, ``ab ``, `` cd``, ``cd ``)."""
    grams: set[str] = set()
    for word in normalised.split():
        padded = f" {word} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return grams


@dataclass(frozen=True)
class _TrigramIndex:
    """Names by word trigram: ``postings`` (trigrams x names, 0/1, CSR) and the column of each trigram."""

    columns: dict[str, int]
    postings: sp.csr_matrix

    @classmethod
    def build(cls, names: list[str]) -> _TrigramIndex:
        columns: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        for position, name in enumerate(names):
            for gram in word_trigrams(name):
                rows.append(columns.setdefault(gram, len(columns)))
                cols.append(position)
        data = np.ones(len(rows), dtype=np.int32)
        postings = sp.csr_matrix((data, (rows, cols)), shape=(len(columns), len(names)))
        return cls(columns, postings)

    def shortlist(self, span: str) -> np.ndarray:
        """Positions (ascending) of names sharing at least MIN_SHARED_TRIGRAMS of the span's trigrams."""
        grams = word_trigrams(span)
        rows = [self.columns[g] for g in grams if g in self.columns]
        if not rows:
            return np.zeros(0, dtype=np.int64)
        # The rows' postings read straight from the CSR arrays and counted per name (a sparse row slice + sum
        # built two intermediate matrices per span: 1.2 ms of the 9 ms a question took to link at 40k names).
        indptr, indices = self.postings.indptr, self.postings.indices
        names = np.concatenate([indices[indptr[row] : indptr[row + 1]] for row in rows])
        shared = np.bincount(names, minlength=self.postings.shape[1])
        need = max(1, math.ceil(MIN_SHARED_TRIGRAMS * len(grams)))
        return np.flatnonzero(shared >= need)


@dataclass(frozen=True)
class _Candidate:
    first: int  # index of the first word
    last: int  # index of the last word (inclusive)
    normalised: str


class EntityLinker:
    """Links a question to graph entities by normalised name, then by fuzzy match.

    Candidate spans are the offline extractor's entities in the question, then every word n-gram
    (n <= 4), longest first; in a question that capitalises names, single lowercase words are not tried.
    A span matching a normalised entity name exactly is linked; remaining spans of at least four characters
    that neither are nor start or end with a stopword are matched with rapidfuzz ``WRatio`` (score >=
    ``fuzzy_threshold``, lengths within a factor 1.5). Only names sharing a fifth of the span's word trigrams are
    scored (a trigram index built with the name index), so linking does not slow down with the number of names.
    ``shortlist=False`` scores every name (the slower reference). Words of a linked span are not reused. The
    name index is read from the store once and cached; call :meth:`refresh` after the graph changes.
    """

    def __init__(self, store: GraphStore, fuzzy_threshold: float = 90, *, shortlist: bool = True) -> None:
        self.store = store
        self.fuzzy_threshold = fuzzy_threshold
        self.shortlist = shortlist
        self._index: dict[str, str] | None = None
        self._names: list[str] = []
        self._trigrams: _TrigramIndex | None = None

    def refresh(self) -> None:
        """Reload the name index (and its trigram index) from the store."""
        self._index = self.store.entity_names()
        self._names = list(self._index)
        self._trigrams = _TrigramIndex.build(self._names)

    def _name_index(self) -> dict[str, str]:
        if self._index is None:
            self.refresh()
        assert self._index is not None
        return self._index

    @staticmethod
    def _candidates(question: str) -> list[_Candidate]:
        words = [(m.start(), m.end()) for m in _WORD.finditer(question)]
        # In a question that capitalises its names, a lone lowercase word ("country", "state") names nothing.
        cased = any(question[start].isupper() for start, _end in words[1:])
        candidates: list[_Candidate] = []
        for span in sorted(find_entity_spans(question), key=lambda s: s.start - s.end):
            covered = [i for i, (start, end) in enumerate(words) if start >= span.start and end <= span.end]
            normalised = normalize_name(span.name)
            if covered and normalised and not is_stopword_span(normalised):
                candidates.append(_Candidate(covered[0], covered[-1], normalised))
        for n in range(min(MAX_NGRAM, len(words)), 0, -1):
            for first in range(len(words) - n + 1):
                last = first + n - 1
                normalised = normalize_name(question[words[first][0] : words[last][1]])
                tokens = normalised.split()
                if not tokens or tokens[0] in STOPWORDS or tokens[-1] in STOPWORDS:
                    continue
                if n == 1 and cased and question[words[first][0]].islower():
                    continue
                candidates.append(_Candidate(first, last, normalised))
        return candidates

    def _fuzzy(self, normalised: str) -> str | None:
        if len(normalised) < MIN_FUZZY_CHARS or not self._names or self._trigrams is None:
            return None
        choices = [self._names[i] for i in self._trigrams.shortlist(normalised)] if self.shortlist else self._names
        if not choices:
            return None
        matches = process.extract(normalised, choices, scorer=fuzz.WRatio, score_cutoff=self.fuzzy_threshold, limit=10)
        for name, _score, _index in matches:
            longer, shorter = max(len(name), len(normalised)), min(len(name), len(normalised))
            if longer <= MAX_FUZZY_LENGTH_RATIO * shorter:
                return name
        return None

    def link(self, question: str) -> list[Entity]:
        """Entities the question names, in the order they appear in it (each once)."""
        index = self._name_index()
        if not index:
            return []
        candidates = self._candidates(question)
        used: set[int] = set()
        linked: dict[int, str] = {}  # first word -> entity id

        def take(candidate: _Candidate, ent_id: str) -> None:
            used.update(range(candidate.first, candidate.last + 1))
            linked.setdefault(candidate.first, ent_id)

        def free(candidate: _Candidate) -> bool:
            return not any(i in used for i in range(candidate.first, candidate.last + 1))

        for candidate in candidates:
            if free(candidate) and candidate.normalised in index:
                take(candidate, index[candidate.normalised])
        for candidate in candidates:
            if free(candidate):
                name = self._fuzzy(candidate.normalised)
                if name is not None:
                    take(candidate, index[name])
        entities: list[Entity] = []
        seen: set[str] = set()
        for _first, ent_id in sorted(linked.items()):
            entity = self.store.get_entity(ent_id)
            if entity is not None and ent_id not in seen:
                seen.add(ent_id)
                entities.append(entity)
        return entities
