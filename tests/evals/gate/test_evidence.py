"""Evidence selection and citation repair, and the cheap contradiction checks (polarity, numbers), on real text."""

from __future__ import annotations

from evals.gate.base import Claim
from evals.gate.checks.claims import check_input, render_claims
from evals.gate.checks.numbers import NumbersCheck
from evals.gate.checks.polarity import PolarityCheck, negated
from evals.gate.evidence import repair_citations, select_evidence, sentences_of

CURIE = (
    "Marie Curie was a physicist and chemist. She was born in Warsaw, Poland, in 1867. "
    "She won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911."
)
LEAVE = "Annual leave policy. Every full-time employee receives 28 days of paid annual leave per year."
CONTEXTS = [LEAVE, CURIE]
QUESTION = "Where was Marie Curie born?"
# Two hops: the bridge names the city, the other passage gives its population.
BRIDGE = "Ada Lindqvist is a Swedish chemist. She was born in Uppsala in 1931."
CITY = "Uppsala is the fourth-largest city of Sweden. It had a population of 177,074 in 2019."


def test_a_claim_citing_the_wrong_passage_is_re_pointed_and_the_repair_recorded() -> None:
    item = check_input(QUESTION, "Marie Curie was born in Warsaw, Poland [1].", CONTEXTS)
    repaired, repairs = repair_citations(item)
    assert [c.cited for c in repaired.claims] == [(2,)]
    assert len(repairs) == 1 and repairs[0].cited == (1,) and repairs[0].now == (2,)
    assert "[2]" in repairs[0].detail and render_claims(repaired) == "Marie Curie was born in Warsaw, Poland. [2]"


def test_a_right_citation_and_an_uncited_claim_are_left_alone() -> None:
    item = check_input(QUESTION, "Marie Curie was born in Warsaw, Poland [2]. She was a chemist.", CONTEXTS)
    repaired, repairs = repair_citations(item)
    assert repairs == [] and repaired is item


def test_a_two_hop_claim_gets_the_passage_holding_its_other_half() -> None:
    question = "What was the population of the city where Ada Lindqvist was born?"
    answer = "Ada Lindqvist was born in Uppsala, which had a population of 177,074 in 2019 [2]."
    repaired, repairs = repair_citations(check_input(question, answer, [BRIDGE, CITY, LEAVE]))
    assert repaired.claims[0].cited == (2, 1), repairs
    evidence = select_evidence(repaired.claims[0], question, sentences_of([BRIDGE, CITY, LEAVE]))
    assert {s.passage for s in evidence} == {1, 2}
    assert any("born in Uppsala" in s.text for s in evidence) and any("177,074" in s.text for s in evidence)


def test_evidence_is_the_claims_best_sentences_with_the_sentence_a_pronoun_needs() -> None:
    sentences = sentences_of(CONTEXTS)
    evidence = select_evidence(Claim("Curie was born in Warsaw in 1867.", (2,)), QUESTION, sentences, limit=1)
    texts = [s.text for s in evidence]
    assert texts == ["Marie Curie was a physicist and chemist.", "She was born in Warsaw, Poland, in 1867."]
    for span in evidence:
        assert CONTEXTS[span.passage - 1][span.start : span.end] == span.text
    # A short claim is read with its question.
    short = select_evidence(Claim("Warsaw.", (2,)), QUESTION, sentences, limit=1)
    assert short[-1].text.startswith("She was born in Warsaw")


def test_polarity_fails_a_negation_the_passage_does_not_hold() -> None:
    check = PolarityCheck()
    negative = check.check(check_input(QUESTION, "Marie Curie was not born in Warsaw, Poland [2].", CONTEXTS))
    assert negative.outcome == "fail" and "[2]" in negative.detail
    assert check.check(check_input(QUESTION, "Marie Curie was born in Warsaw [2].", CONTEXTS)).outcome == "pass"
    held = ["The plant did not reopen after the 1998 flood."]
    assert check.check(check_input("Did the plant reopen?", "The plant did not reopen [1].", held)).outcome == "pass"
    assert negated("It isn't here") and negated("never again") and not negated("Nottingham knows")


def test_numbers_fails_a_year_no_cited_passage_holds() -> None:
    check = NumbersCheck()
    wrong = check.check(check_input(QUESTION, "Marie Curie was born in Warsaw in 1876 [2].", CONTEXTS))
    assert wrong.outcome == "fail" and "1876" in wrong.detail
    right = check.check(check_input(QUESTION, "Marie Curie was born in Warsaw in 1867 [2].", CONTEXTS))
    assert right.outcome == "pass"
    # The year is in a passage, but not in the one the claim cites.
    assert check.check(check_input(QUESTION, "Curie got 28 days of leave [2].", CONTEXTS)).outcome == "fail"
    assert check.check(check_input("Population?", "It had 177074 people [1].", [CITY])).outcome == "pass"


def test_the_question_s_best_sentences_come_from_any_passage_with_their_antecedent() -> None:
    from evals.gate.evidence import question_sentences, sentences_of

    contexts = [
        "The Exies are a band. They formed in Los Angeles.",
        "Ghost Mystery is an episode. It aired on October 27, 1999 on South Park.",
    ]
    found = question_sentences("What aired on October 27, 1999 on South Park?", sentences_of(contexts), limit=1)
    assert [(s.passage, s.text) for s in found] == [
        (2, "Ghost Mystery is an episode."),
        (2, "It aired on October 27, 1999 on South Park."),
    ]
    assert question_sentences("Nothing in common here?", sentences_of(contexts)) == []
