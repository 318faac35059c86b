"""Citation coverage: the share of answer sentences that carry a ``[n]`` marker pointing at a given passage."""

from __future__ import annotations

from evals.gate.base import CheckInput, CheckResult
from evals.gate.checks.claims import band, validate_band


class CitationCoverageCheck:
    """Fails an answer whose sentences do not cite the passages (``[1]`` = the first context); no model needed."""

    name = "citation_coverage"

    def __init__(self, fail_below: float = 0.5, pass_at: float = 1.0) -> None:
        validate_band(self.name, fail_below, pass_at)
        self.fail_below = fail_below
        self.pass_at = pass_at

    def check(self, item: CheckInput) -> CheckResult:
        if not item.claims:
            return CheckResult("fail", {"citation_coverage": 0.0}, "the answer has no sentence to check")
        n = len(item.contexts)
        covered = [c for c in item.claims if any(1 <= k <= n for k in c.cited)]
        dangling = sorted({k for c in item.claims for k in c.cited if not 1 <= k <= n})
        score = len(covered) / len(item.claims)
        detail = f"{len(covered)}/{len(item.claims)} sentence(s) cite one of the {n} passage(s)"
        if dangling:
            detail += f"; markers pointing at no passage: {', '.join(f'[{k}]' for k in dangling)}"
        return CheckResult(band(score, self.fail_below, self.pass_at), {"citation_coverage": round(score, 4)}, detail)
