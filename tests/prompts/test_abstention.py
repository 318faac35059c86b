"""Which answers decline to answer: the prompts' sentence, or a small model's own uncited refusal."""

from __future__ import annotations

import pytest

from prompts.abstention import is_abstention
from prompts.constants import ABSTENTION_TEXT
from prompts.guardrails import GuardrailConfig, Guardrails


@pytest.mark.parametrize(
    "answer",
    [
        ABSTENTION_TEXT,
        '"the documents do not answer this question" [2]',
        "The mayor of Rotterdam is not mentioned in the given passages.",  # Qwen 1.5B, answer v2
        "The share price of Northwind Robotics is not mentioned in the given passages.",
        "The passages do not mention a warranty period.",
        "There is no information about the population of Lagos in 1950 in the provided documents.",
    ],
)
def test_declining_answers_are_abstentions(answer: str) -> None:
    assert is_abstention(answer)


@pytest.mark.parametrize(
    "answer",
    [
        "Every full-time employee receives 28 days of paid annual leave [1].",
        # A cited answer with a caveat is an answer.
        "Heron can lift 25 kilograms [1]. Its price is not mentioned in the passages.",
        # Without a citation, still a claim (must_cite holds it): nothing here says the passages lack the answer.
        "Rotterdam is the largest port in Europe.",
        "The contract was not signed in the end.",
        "",
    ],
)
def test_answers_and_caveats_are_not_abstentions(answer: str) -> None:
    assert not is_abstention(answer)


def test_must_cite_does_not_hold_a_refusal_but_holds_an_uncited_claim() -> None:
    guard = Guardrails(GuardrailConfig(prompt="answer"))
    refusal = guard.check_answer("The mayor of Rotterdam is not mentioned in the given passages.", "system")
    assert [v.check for v in refusal] == []
    claim = guard.check_answer("Rotterdam is the largest port in Europe.", "system")
    assert [v.check for v in claim] == ["must_cite"]
