"""Entity name normalisation: one function decides when two surface forms name the same entity."""

from __future__ import annotations

import re
import unicodedata

from core.text import STOPWORDS

#: Prefix of entity node ids in every graph store.
ENTITY_PREFIX = "ent:"

#: Leading articles dropped from names ("The Beatles" and "Beatles" are one entity).
_ARTICLES = frozenset({"the", "a", "an"})

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_NON_WORD = re.compile(r"[\W_]+")


def normalize_name(name: str) -> str:
    """Canonical form of an entity name: NFKC, casefolded, punctuation removed, no leading article.

    Apostrophes are deleted ("O'Brien" -> "obrien"); every other run of punctuation becomes one space;
    whitespace is collapsed. A name that is only an article stays as that word; a name with no word
    characters normalises to ``""``.
    """
    text = unicodedata.normalize("NFKC", name).casefold()
    text = _APOSTROPHES.sub("", text)
    words = _NON_WORD.sub(" ", text).split()
    while len(words) > 1 and words[0] in _ARTICLES:
        words.pop(0)
    return " ".join(words)


def entity_id(name: str) -> str:
    """The graph node id of the entity with this name: ``"ent:" + normalize_name(name)``.

    Raises :class:`ValueError` for a name without any word character (it cannot identify an entity).
    """
    normalised = normalize_name(name)
    if not normalised:
        raise ValueError(f"entity name {name!r} has no word characters")
    return ENTITY_PREFIX + normalised


def is_stopword_span(normalised: str) -> bool:
    """True when every word of a normalised span is a stopword (or the span is empty)."""
    return all(word in STOPWORDS for word in normalised.split())
