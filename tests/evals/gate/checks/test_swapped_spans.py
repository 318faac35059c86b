"""Swapped spans: a claim that copies its sentence but trades two of its names or numbers fails; reorderings that
change no role pass."""

from __future__ import annotations

import pytest

from evals.gate.checks.claims import check_input
from evals.gate.checks.swapped_spans import SwappedSpansCheck, swapped

SENTENCE = "Cartoon Network was founded by Betty Cohen and launched on October 1, 1992."


@pytest.mark.parametrize(
    ("claim", "sentence", "pair"),
    [
        (
            "Betty Cohen was founded by Cartoon Network and launched on October 1, 1992.",
            SENTENCE,
            ("Cartoon Network", "Betty Cohen"),
        ),
        # adjacent: one name moved across the other
        (
            "L'Amour was a venue in New York, Brooklyn.",
            "L'Amour was a venue in Brooklyn, New York.",
            ("Brooklyn", "New York"),
        ),
        # titles hold lower-case words
        (
            '"Korn" is a song by American band Falling Away from Me.',
            '"Falling Away from Me" is a song by American band Korn.',
            ("Falling Away from Me", "Korn"),
        ),
        # the sentence's opening pronoun: the claim names one of its names there and puts another in its place
        (
            "Betty Cohen was founded by Cartoon Network.",
            "It was founded by Betty Cohen.",
            ("Betty Cohen", "Cartoon Network"),
        ),
        (
            "150 million has sold more than Engelbert Humperdinck records.",
            "He has sold more than 150 million records.",
            ("150 million", "Engelbert Humperdinck"),
        ),
    ],
)
def test_two_names_that_trade_places_are_found(claim: str, sentence: str, pair: tuple[str, str]) -> None:
    assert swapped(claim, sentence) == pair


@pytest.mark.parametrize(
    ("claim", "sentence"),
    [
        (SENTENCE, SENTENCE),  # a verbatim copy
        ("Cartoon Network was founded by Betty Cohen.", "It was founded by Betty Cohen."),  # the pronoun resolved
        ("Betty Cohen founded Cartoon Network.", "It was founded by Betty Cohen."),  # active for passive
        ("In 1995, the Rank Group acquired all shares.", "The Rank Group acquired all shares in 1995."),  # a moved date
        ("Marie Curie and Pierre Curie won the prize.", "Pierre Curie and Marie Curie won the prize."),  # a list
        ("Cartoon Network was launched on October 1, 1992.", SENTENCE),  # a part of the sentence
        ("The network was founded by its staff and launched later.", SENTENCE),  # no names traded
    ],
)
def test_reorderings_that_change_no_role_are_not_swaps(claim: str, sentence: str) -> None:
    assert swapped(claim, sentence) is None


def test_the_check_compares_each_claim_with_its_closest_sentence() -> None:
    contexts = [
        "Cartoon Network was founded by Betty Cohen. It launched on October 1, 1992.",
        "Betty Cohen later founded a studio with Linda Simensky.",
    ]
    question = "Who founded Cartoon Network?"
    failed = SwappedSpansCheck().check(
        check_input(question, "Betty Cohen was founded by Cartoon Network [1].", contexts)
    )
    assert failed.outcome == "fail" and failed.scores == {"swapped_spans": 0.0}
    assert "'Cartoon Network' and 'Betty Cohen'" in failed.detail and "[1]" in failed.detail
    right = SwappedSpansCheck().check(
        check_input(question, "Cartoon Network was founded by Betty Cohen [1].", contexts)
    )
    assert right.outcome == "pass"
    # The reverse stated by another sentence: compared with that one, nothing is traded.
    reverse = ["Anna beat Bea in the final of 1990.", "Bea beat Anna in the final of 1995."]
    text = "Bea beat Anna in the final of 1995 [2]."
    assert SwappedSpansCheck().check(check_input("Who won in 1995?", text, reverse)).outcome == "pass"
