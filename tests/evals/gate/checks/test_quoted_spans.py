"""Quoted spans: our matching is Ragas' ``count_matched_spans`` (without importing Ragas in the check)."""

from __future__ import annotations

import os

import pytest

from evals.gate.checks.claims import check_input
from evals.gate.checks.quoted_spans import QuotedSpansCheck, count_matched_spans

SOURCES = [
    "Marie Curie was a physicist and chemist.\nShe was born in   Warsaw, Poland, in 1867.",
    "Every full-time employee receives 28 days of paid annual leave.",
]
CASES = [
    ([], SOURCES),
    (["she was born in warsaw"], SOURCES),
    (["She  was\tborn in\nWARSAW, Poland"], SOURCES),  # whitespace collapsed, case folded
    (["born in Krakow in 1870"], SOURCES),
    (["chemist. Every full-time employee"], SOURCES),  # the passages are joined by a space
    (["chemist.Every full-time"], SOURCES),
    (["   "], SOURCES),  # nothing left to look for: not a match
    (["28 days of paid annual leave", "born in Vienna", "Marie Curie was a physicist"], SOURCES),
    (["Ünïcödé  café"], ["the ünïcödé café menu"]),
    (["anything at all"], []),
]


@pytest.mark.parametrize(("spans", "sources"), CASES)
def test_matching_is_ragas_own(spans: list[str], sources: list[str]) -> None:
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    from ragas.metrics.collections.quoted_spans.util import count_matched_spans as ragas_count

    assert count_matched_spans(spans, sources) == ragas_count(list(spans), list(sources))


def test_the_check_scores_the_share_of_quoted_spans_found() -> None:
    check = QuotedSpansCheck(fail_below=0.6, pass_at=1.0)
    answer = 'It says \u201cborn in  warsaw, Poland\u201d [1] and "28 days of paid leave" [2] and "in 1867".'
    result = check.check(check_input("Q?", answer, SOURCES))  # "in 1867" has fewer than 3 words: not a span
    assert (result.outcome, result.scores, result.detail) == (
        "fail",
        {"quoted_spans": 0.5},
        "1/2 quoted span(s) found verbatim in the passages",
    )
    assert check.check(check_input("Q?", 'It says "born in Warsaw, Poland" [1].', SOURCES)).outcome == "pass"
