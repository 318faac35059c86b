"""Restates the question: an answer made only of the question's own words names nothing the question did not.

A 1.5B model asked "What company ... had two former employees form Cooper Firearms of Montana?" often answers
"Cooper Firearms of Montana": the entity the question starts from, not the one it asks for. Every word of such an
answer is in its passages, and a judge reading it as a claim finds it "entailed". The rule is sound where the
question does not offer the answer itself: a choice ("A or B?", "which of ...", "A and B were founded ...; which
was first?") and a yes/no question ("Is ...?", answered by restating it) are exempt.
This stage can fail an answer fast; passing it releases nothing.
"""

from __future__ import annotations

import re

from evals.gate.base import CheckInput, CheckResult
from evals.gate.evidence import forms

#: Questions whose answer may be made of their own words.
_CHOICE = re.compile(
    r"\b(?:or|either|whether|which of|which one|both|first|last|earlier|later|older|younger|oldest|youngest)\b",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"^\s*(?:is|are|was|were|do|does|did|can|could|has|have|had|will|would|should|shall|may|might)\b", re.IGNORECASE
)


def offers_its_answer(question: str) -> bool:
    """Whether the question names its possible answers (a choice) or is answered yes or no."""
    return bool(_CHOICE.search(question) or _YES_NO.match(question))


class RestatesQuestionCheck:
    """Fails an answer whose claims hold no word form that the question does not hold."""

    name = "restates_question"

    def check(self, item: CheckInput) -> CheckResult:
        if offers_its_answer(item.question):
            return CheckResult("pass", {}, "the question offers its answer (a choice or yes/no): not checked")
        asked = forms(item.question)
        said = set().union(*(forms(c.text) for c in item.claims)) if item.claims else set()
        new = said - asked
        if said and not new:
            return CheckResult(
                "fail", {"restates_question": 0.0}, "every word of the answer is in the question: it names nothing new"
            )
        share = len(new) / len(said) if said else 1.0
        return CheckResult(
            "pass", {"restates_question": round(share, 4)}, f"{len(new)} word form(s) not in the question"
        )
