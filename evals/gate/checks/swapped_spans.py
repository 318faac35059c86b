"""Swapped spans: a claim that copies its evidence sentence but gives two of its names or numbers each other's place.

"Betty Cohen was founded by Cartoon Network" built from "Cartoon Network was founded by Betty Cohen" holds every
word of the passage, MiniLM puts it within 0.95 of it, and the 1.5B judge calls it entailed about a quarter of the
time. The word sequences show it: aligned, the claim replaces one name by the other in both places (or moves one
name across the other: "New York, Brooklyn" for "Brooklyn, New York"). Only names and numbers count (a moved
adverbial such as a year at the front is not a swap), and only against the claim's closest evidence sentence, so a
claim that copies another sentence stating the reverse is compared with that one. This stage can fail an answer
fast; passing it releases nothing.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

from evals.gate.base import CheckInput, CheckResult
from evals.gate.evidence import select_evidence, sentences_of

_TOKEN = re.compile(r"[^\W_]+")
#: Capitalised words that are not names (a sentence's first word).
_COMMON_WORDS = (
    "a an the in on at of for and or but by with from to as is was are were he she it they his her its their this "
    "that these those there after before during since while when where who which"
)
_COMMON = frozenset(_COMMON_WORDS.split())
#: Lower-case words a name or a title may hold ("Bank of England", "Falling Away from Me").
_CONNECTORS = frozenset("of and the de da di del du la le van von y a an from with to in on at for s".split())  # noqa: SIM905
#: A span this short may hold any lower-case word beside its name or number ("19th century", "150 million").
_SHORT = 3
_COORDINATORS = frozenset({"and", "or", "nor"})
#: A sentence's opening pronoun, which the claim may name (its antecedent).
_PRONOUNS = frozenset("he she it they its his her their".split())  # noqa: SIM905


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _named(words: list[str]) -> bool:
    """Whether a span is a name or a number: it holds a capitalised word that is not a common word, or a digit,
    and (unless it is short) no lower-case word but a name's connectors."""
    if not any(w[0].isdigit() or (w[0].isupper() and w.casefold() not in _COMMON) for w in words):
        return False
    return len(words) <= _SHORT or all(w[0].isupper() or w[0].isdigit() or w in _CONNECTORS for w in words)


def _common_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    return prefix, suffix


def swapped(claim: str, sentence: str) -> tuple[str, str] | None:
    """The two spans of ``sentence`` that ``claim`` holds in each other's place (names or numbers), or None.

    Either the words where the two differ read ``A M B`` in the sentence and ``B M A`` in the claim (``M`` not a
    short coordination: "Pierre and Marie" for "Marie and Pierre" changes no role), or the sentence opens with a
    pronoun that the claim replaces by one of the sentence's names, and that name's place holds another name
    (every other word equal)."""
    source, said = _tokens(sentence), _tokens(claim)
    a, b = [w.casefold() for w in source], [w.casefold() for w in said]
    prefix, suffix = _common_ends(a, b)
    middle, other = a[prefix : len(a) - suffix], b[prefix : len(b) - suffix]
    if middle and len(middle) == len(other) and middle != other:
        n = len(middle)
        for x in range(1, n):
            for y in range(1, n - x + 1):
                between = middle[x : n - y]
                if len(between) <= _SHORT and _COORDINATORS & set(between):
                    continue  # "A and B" for "B and A": a list's order carries no role
                if other == middle[n - y :] + between + middle[:x]:
                    first, second = source[prefix : prefix + x], source[prefix + n - y : prefix + n]
                    if _named(first) and _named(second):
                        return " ".join(first), " ".join(second)
    changes = [op for op in SequenceMatcher(None, a, b, autojunk=False).get_opcodes() if op[0] != "equal"]
    if len(changes) == 2 and all(op[0] == "replace" for op in changes):
        (_, i1, i2, j1, j2), (_, k1, k2, l1, l2) = changes
        moved = i2 - i1 == 1 and a[i1] in _PRONOUNS and a[k1:k2] == b[j1:j2] and a[k1:k2] != b[l1:l2]
        if moved and _named(source[k1:k2]) and _named(said[l1:l2]):
            return " ".join(source[k1:k2]), " ".join(said[l1:l2])
    return None


class SwappedSpansCheck:
    """Fails an answer with a claim that trades two names or numbers of its closest evidence sentence."""

    name = "swapped_spans"

    def check(self, item: CheckInput) -> CheckResult:
        sentences = sentences_of(item.contexts)
        for claim in item.claims:
            evidence = select_evidence(claim, item.question, sentences)
            if not evidence:
                continue
            words = [w.casefold() for w in _tokens(claim.text)]
            closest = max(
                evidence,
                key=lambda s: SequenceMatcher(None, [w.casefold() for w in _tokens(s.text)], words).ratio(),
            )
            pair = swapped(claim.text, closest.text)
            if pair is not None:
                return CheckResult(
                    "fail",
                    {"swapped_spans": 0.0},
                    f"claim trades {pair[0]!r} and {pair[1]!r} of [{closest.passage}]: {claim.text[:120]!r}",
                )
        return CheckResult("pass", {"swapped_spans": 1.0}, "no claim trades the names or numbers of its sentence")
