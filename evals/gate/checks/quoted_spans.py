"""Quoted spans: text the answer puts in double quotes must appear verbatim in a passage.

Matching is that of Ragas' non-LLM ``QuotedSpansAlignment`` (``count_matched_spans``), in :func:`count_matched_spans`
below so that the check does not import Ragas (seconds of start-up for a few lines): whitespace collapsed and case
folded on both sides, then a substring test against the passages joined by a space. Span extraction only takes
double quotes, since Ragas' own pattern also pairs apostrophes (``Curie's ... Pierre's``) into false quotes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evals.gate.base import CheckInput, CheckResult
from evals.gate.checks.claims import band, validate_band

_QUOTE = re.compile(r"[\"\u201c\u201d\u201e](.+?)[\"\u201c\u201d\u201e]", re.DOTALL)
_SPACES = re.compile(r"\s+")


def _normalize(text: str) -> str:
    """Whitespace runs collapsed to one space, trimmed and lower-cased."""
    return _SPACES.sub(" ", text).strip().lower()


def count_matched_spans(spans: Sequence[str], sources: Sequence[str]) -> tuple[int, int]:
    """``(matched, total)``: how many of ``spans`` occur, normalised, in the normalised ``sources`` joined by a
    space (a span that normalises to nothing never matches)."""
    if not spans:
        return 0, 0
    haystack = _normalize(" ".join(sources))
    matched = sum(1 for span in spans if (needle := _normalize(span)) and needle in haystack)
    return matched, len(spans)


class QuotedSpansCheck:
    """Share of quoted spans (``min_span_words`` words or more) found in the passages; passes when nothing is
    quoted."""

    name = "quoted_spans"

    def __init__(self, fail_below: float = 1.0, pass_at: float = 1.0, min_span_words: int = 3) -> None:
        validate_band(self.name, fail_below, pass_at)
        self.fail_below = fail_below
        self.pass_at = pass_at
        self.min_span_words = min_span_words

    def check(self, item: CheckInput) -> CheckResult:
        spans = [s.strip() for s in _QUOTE.findall(item.answer) if len(s.split()) >= self.min_span_words]
        if not spans:
            return CheckResult("pass", {"quoted_spans": 1.0}, "nothing quoted")
        matched, total = count_matched_spans(spans, list(item.contexts))
        score = matched / total if total else 1.0
        return CheckResult(
            band(score, self.fail_below, self.pass_at),
            {"quoted_spans": round(score, 4)},
            f"{matched}/{total} quoted span(s) found verbatim in the passages",
        )
