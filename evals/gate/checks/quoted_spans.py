"""Quoted spans: text the answer puts in double quotes must appear verbatim in a passage.

Matching is Ragas' non-LLM ``QuotedSpansAlignment`` (``count_matched_spans``: whitespace collapsed, case folded);
span extraction only takes double quotes, since Ragas' own pattern also pairs apostrophes (``Curie's ... Pierre's``)
into false quotes. Ragas is imported when the check is built.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from evals.gate.base import CheckInput, CheckResult
from evals.gate.checks.claims import band, validate_band

_QUOTE = re.compile(r"[\"\u201c\u201d\u201e](.+?)[\"\u201c\u201d\u201e]", re.DOTALL)


class QuotedSpansCheck:
    """Share of quoted spans (``min_span_words`` words or more) found in the passages; passes when nothing is
    quoted."""

    name = "quoted_spans"

    def __init__(self, fail_below: float = 1.0, pass_at: float = 1.0, min_span_words: int = 3) -> None:
        validate_band(self.name, fail_below, pass_at)
        os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
        from ragas.metrics.collections.quoted_spans.util import count_matched_spans

        self._count: Callable[[list[str], list[str]], tuple[int, int]] = count_matched_spans
        self.fail_below = fail_below
        self.pass_at = pass_at
        self.min_span_words = min_span_words

    def check(self, item: CheckInput) -> CheckResult:
        spans = [s.strip() for s in _QUOTE.findall(item.answer) if len(s.split()) >= self.min_span_words]
        if not spans:
            return CheckResult("pass", {"quoted_spans": 1.0}, "nothing quoted")
        matched, total = self._count(spans, list(item.contexts))
        score = matched / total if total else 1.0
        return CheckResult(
            band(score, self.fail_below, self.pass_at),
            {"quoted_spans": round(score, 4)},
            f"{matched}/{total} quoted span(s) found verbatim in the passages",
        )
