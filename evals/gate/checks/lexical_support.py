"""Lexical support: the content words, numbers and names of each answer sentence must occur in its passages.

This is what catches a wrong entity swapped in (a name or number no cited passage holds) and an unsupported claim
added (a sentence whose words the passages do not hold) without a model. Words of the question count as supported
(restating the question is not a claim) when some shown passage holds them, and near matches count (rapidfuzz ratio
at or above ``fuzzy_match``: inflections, spelling variants); numbers must match exactly.

A question word that no shown passage holds is the opposite: the passages never talk about it, so an answer that
uses it ("The warranty period of the Heron robot is ten hours" when no passage mentions a warranty) asserts
something about a topic the documents do not cover. Each such word weighs like a missing name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import simplemma
from rapidfuzz import fuzz, process

from core.errors import ConfigurationError
from core.stemming import EnglishStemmer
from core.text import SUPPORT_STOPWORDS
from evals.gate.base import CheckInput, CheckResult, Claim
from evals.gate.checks.claims import band, validate_band

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)?")


@dataclass(frozen=True)
class _Token:
    text: str
    key: bool  # a number or a capitalised name: weighs more, and numbers need an exact match


def _tokens(text: str) -> list[_Token]:
    out = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        word = raw.casefold().replace(",", "").replace("\u2019", "'").removesuffix("'s")
        if word in SUPPORT_STOPWORDS or (len(word) < 3 and not word[0].isdigit()):
            continue
        # Numbers and capitalised words (names, places, dates' months) are the answer's checkable facts.
        out.append(_Token(word, word[0].isdigit() or raw[0].isupper()))
    return out


_STEMMER = EnglishStemmer()  # thread-safe: the API stems in several threads at once


def _forms(word: str) -> tuple[str, str]:
    """The word's lemma (irregular forms: taught -> teach) and its Snowball stem (developed -> develop): each
    catches inflections the other misses."""
    return simplemma.lemmatize(word, lang="en").casefold(), _STEMMER.stem(word)


def _vocabulary(texts: list[str]) -> set[str]:
    return {t.text for text in texts for t in _tokens(text)} | {
        m.group(0).casefold().replace(",", "").replace("\u2019", "'").removesuffix("'s")
        for text in texts
        for m in _TOKEN.finditer(text)
    }


class LexicalSupportCheck:
    """Per claim: the share of its content words found in its cited passages (all passages when it cites none), and
    ``1 / (1 + k)`` for its ``k`` numbers and capitalised names found in none of them (one missing name scores
    0.5); the claim scores the lower of the two, the answer its weakest claim."""

    name = "lexical_support"

    def __init__(self, fail_below: float = 0.6, pass_at: float = 0.8, fuzzy_match: float = 88.0) -> None:
        validate_band(self.name, fail_below, pass_at)
        if not 0.0 < fuzzy_match <= 100.0:
            raise ConfigurationError(
                f"gate fuzzy_match must be in (0, 100], got {fuzzy_match}", hint="set KGRAG_GATE__FUZZY_MATCH=88"
            )
        self.fail_below = fail_below
        self.pass_at = pass_at
        self.fuzzy_match = fuzzy_match

    def _found(self, token: _Token, vocabulary: set[str], words: list[str]) -> bool:
        if token.text in vocabulary:
            return True
        if token.text[0].isdigit() or len(token.text) < 5:
            return False
        return process.extractOne(token.text, words, scorer=fuzz.ratio, score_cutoff=self.fuzzy_match) is not None

    def _claim(
        self, item: CheckInput, claim: Claim, asked: set[str], unseen: set[str]
    ) -> tuple[float, float, list[str]]:
        vocabulary = _vocabulary(item.cited_contexts(claim)) | asked
        words = sorted(vocabulary)
        tokens = _tokens(claim.text)
        missing = [t for t in tokens if not self._found(t, vocabulary, words)]
        content = 1.0 - len(missing) / len(tokens) if tokens else 1.0
        # Not a share: one unsupported name or number (or a question word no passage holds) in a long sentence is
        # as wrong as in a short one.
        off_topic = sum(not t.key and t.text in unseen for t in missing)
        key_score = 1.0 / (1 + sum(t.key for t in missing) + off_topic)
        return content, key_score, [t.text for t in missing]

    def check(self, item: CheckInput) -> CheckResult:
        if not item.claims:
            return CheckResult("fail", {"lexical_support": 0.0}, "the answer has no sentence to check")
        shown = _vocabulary(list(item.contexts))
        shown_words = sorted(shown)
        # Any inflection counts as a mention (taught/teaches, developed/develops): only a word none of whose forms
        # a passage holds marks a topic the passages do not cover.
        shown_forms = {form for word in shown for form in _forms(word)}
        question = {t.text: t for t in _tokens(item.question)}
        unseen = {
            w
            for w, t in question.items()
            if not self._found(t, shown, shown_words) and (w[0].isdigit() or shown_forms.isdisjoint(_forms(w)))
        }
        asked = _vocabulary([item.question]) - unseen
        results = [self._claim(item, claim, asked, unseen) for claim in item.claims]
        per_claim = [min(content, keys) for content, keys, _ in results]
        score = min(per_claim)
        missing = list(dict.fromkeys(w for _, _, m in results for w in m))
        detail = "every content word, number and name is in the cited passages"
        if missing:
            detail = "not in the cited passages: " + ", ".join(missing[:12]) + (" ..." if len(missing) > 12 else "")
        scores = {
            "lexical_support": round(score, 4),
            "content_support": round(min(c for c, _, _ in results), 4),
            "entity_support": round(min(k for _, k, _ in results), 4),
        }
        return CheckResult(band(score, self.fail_below, self.pass_at), scores, detail)
