"""Numbers: every number or year a claim states must occur in the passages it is judged against.

A year or count swapped for another ("founded in 1987" where the passage says 1978) changes one token of a long
sentence; the share-based lexical check can let it through, this one does not. Separators are ignored
(``1,200`` = ``1200``); a number the question states counts as stated. Fail-fast only: passing releases nothing.
"""

from __future__ import annotations

import re

from evals.gate.base import CheckInput, CheckResult

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


def numbers(text: str) -> set[str]:
    """The numbers in ``text``, without thousands separators or a trailing decimal point."""
    return {m.group(0).replace(",", "").rstrip(".") for m in _NUMBER.finditer(text)}


class NumbersCheck:
    """Fails an answer stating a number that none of the claim's passages (nor the question) holds."""

    name = "numbers"

    def check(self, item: CheckInput) -> CheckResult:
        asked = numbers(item.question)
        for claim in item.claims:
            stated = numbers(claim.text) - asked
            if not stated:
                continue
            held: set[str] = set()
            for passage in item.cited_contexts(claim):
                held |= numbers(passage)
            missing = sorted(stated - held)
            if missing:
                detail = f"{', '.join(missing)} in no passage the claim cites: {claim.text[:120]!r}"
                return CheckResult("fail", {"numbers": 0.0}, detail)
        return CheckResult("pass", {"numbers": 1.0}, "every number is in its passages")
