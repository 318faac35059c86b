"""Recognising an answer that declines to answer: the abstention sentence the prompts ask for, or a small model's
own wording of it ("The mayor of Rotterdam is not mentioned in the given passages.").

One place for the guardrails (an abstention needs no citation), the gate (an abstention is decided without
scoring) and the answer workflow (an abstention is not retried).
"""

from __future__ import annotations

import re

from prompts.constants import ABSTENTION_TEXT

_CITATION = re.compile(r"\[\s*\d+(?:\s*[,;-]\s*\d+)*\s*\]")
_SOURCE = r"(?:the\s+|any\s+(?:of\s+the\s+)?|these\s+|those\s+)?(?:given\s+|provided\s+|above\s+|numbered\s+)?"
_SOURCE += r"(?:passages?|documents?|texts?|context|sources?|information(?:\s+provided|\s+given)?)"
#: A model's own refusal: "X is not mentioned in the passages", "the passages do not say ...", "no information".
_REFUSALS = (
    re.compile(
        r"\b(?:is|are|was|were)\s+not\s+(?:explicitly\s+|directly\s+)?(?:mentioned|stated|given|provided|specified|"
        r"found|included|contained|listed|available|discussed)\s+(?:in|by|within)\s+" + _SOURCE + r"\b",
        re.IGNORECASE,
    ),
    re.compile(
        _SOURCE + r"\s+(?:do|does|did)\s+not\s+(?:mention|say|state|contain|provide|specify|include|answer|"
        r"give|discuss)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\b(?:there\s+is\s+)?no\s+(?:information|mention)\s+(?:about|of|on|regarding)\b", re.IGNORECASE),
)
#: Longer than this, an uncited text is an answer with a caveat, not a refusal.
_MAX_REFUSAL_CHARS = 200
#: "... do not answer this, but Curie was born in Warsaw": a refusal that goes on to claim something is an answer.
_CONTRAST = re.compile(r"\b(?:but|however|although|though|yet|instead)\b", re.IGNORECASE)


def _normalise(text: str) -> str:
    return " ".join(_CITATION.sub(" ", text).split()).strip(" \t\n\"'`*").rstrip(".").strip().casefold()


def is_abstention(answer: str) -> bool:
    """Whether ``answer`` declines to answer: the abstention sentence (case, quotes, final period and citation
    markers ignored), or a short text without any ``[n]`` marker that says the passages do not hold the answer.
    A cited answer with a caveat ("... [1]. The price is not mentioned in the passages.") is an answer, and so is a
    refusal that goes on ("..., but Curie was born in Warsaw")."""
    if _normalise(answer) == _normalise(ABSTENTION_TEXT):
        return True
    text = answer.strip()
    if not text or _CITATION.search(text) or len(text) > _MAX_REFUSAL_CHARS or _CONTRAST.search(text):
        return False
    return any(pattern.search(text) for pattern in _REFUSALS)
