"""Entity name normalisation: one function decides when two surface forms name the same entity."""

from __future__ import annotations

import re
import unicodedata

from core.text import word_set

#: Prefix of entity node ids in every graph store.
ENTITY_PREFIX = "ent:"

#: Leading articles dropped from names ("The Beatles" and "Beatles" are one entity).
_ARTICLES = frozenset({"the", "a", "an"})

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`]")
_NON_WORD = re.compile(r"[\W_]+")


#: Common English function words: never linked on their own, never the edge of a fuzzy-matched span.
STOPWORDS = word_set(
    """
    a about above after again against all also am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having
    he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
    nor not now of off on once only or other our ours ourselves out over own same she should so some such than
    that the their theirs them themselves then there these they this those through to too under until up very
    was we were what when where which while who whom whose why will with would you your yours yourself
    yourselves many much
    """
)


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
