"""Polarity: a claim that negates (``not``, ``never``, ``no``...) while none of its evidence sentences does.

"X is not the fifth album of Y" built from "X is the fifth album of Y" holds every word of the passage, and MiniLM
puts the two within 0.95 of each other; only the negation differs. The check is one-sided on purpose: a negation
in the passage that the claim leaves out ("X, not Y, won") is often a faithful reading, and the judge sees it.
This stage can fail an answer fast; passing it releases nothing.
"""

from __future__ import annotations

import re

from evals.gate.base import CheckInput, CheckResult
from evals.gate.evidence import select_evidence, sentences_of

_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nobody|nothing|nowhere|neither|nor|cannot|without)\b|n['\u2019]t\b", re.IGNORECASE
)


def negated(text: str) -> bool:
    """Whether ``text`` holds a negation word."""
    return _NEGATION.search(text) is not None


class PolarityCheck:
    """Fails an answer with a negated claim whose evidence sentences state no negation."""

    name = "polarity"

    def check(self, item: CheckInput) -> CheckResult:
        sentences = sentences_of(item.contexts)
        for claim in item.claims:
            if not negated(claim.text):
                continue
            evidence = select_evidence(claim, item.question, sentences)
            if not any(negated(s.text) for s in evidence):
                where = ", ".join(f"[{s.passage}]" for s in evidence[:2])
                return CheckResult("fail", {"polarity": 0.0}, f"negates what {where} states: {claim.text[:120]!r}")
        return CheckResult("pass", {"polarity": 1.0}, "no claim negates what its passages state")
