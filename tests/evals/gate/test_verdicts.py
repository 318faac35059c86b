"""Claim verdicts: the label's probability read from logprobs, the cache, bad judge output, and the real Qwen judge."""

from __future__ import annotations

import math

import pytest

from core.errors import ModelOutputError
from core.llm import ModelClient, TokenLogprob
from evals.gate.verdicts import LABELS, LlmClaimJudge, label_probability
from tests.scripted_model import ScriptedChatModel

EVIDENCE = ["Marie Curie was a physicist and chemist.", "She was born in Warsaw, Poland, in 1867."]
QUESTION = "Where was Marie Curie born?"


def _tok(token: str, p: float, **alternatives: float) -> TokenLogprob:
    top = {k.replace("_", " "): math.log(v) for k, v in alternatives.items()}
    return TokenLogprob(token=token, logprob=math.log(p), top={token: math.log(p), **top})


def test_the_label_probability_is_read_where_the_label_starts() -> None:
    tokens = [_tok('{"', 1.0), _tok("verdict", 1.0), _tok('":', 1.0), _tok(' "', 1.0)]
    tokens += [_tok("ent", 0.6, contr=0.3, no=0.1), _tok("ailed", 1.0), _tok('"}', 1.0)]
    assert label_probability(tokens, LABELS, "entailed") == pytest.approx(0.6)
    assert label_probability(tokens, LABELS, "contradicted") == pytest.approx(0.3)
    # The opening quote and the label's first letters in one token.
    fused = [_tok('{"verdict": "', 1.0), _tok("contr", 0.8, ent=0.2), _tok('adicted"}', 1.0)]
    assert label_probability(fused, LABELS, "entailed") == pytest.approx(0.2)
    assert label_probability(None, LABELS, "entailed") is None
    assert label_probability([_tok("{}", 1.0)], LABELS, "entailed") is None


def test_verdicts_are_cached_by_claim_and_evidence() -> None:
    model = ScriptedChatModel([{"verdict": "entailed"}, {"verdict": "contradicted"}])
    judge = LlmClaimJudge(model)
    first = judge.entailment(QUESTION, "Curie was born in Warsaw.", EVIDENCE)
    again = judge.entailment(QUESTION, "Curie was born in Warsaw.", EVIDENCE)
    other = judge.entailment(QUESTION, "Curie was born in Vienna.", EVIDENCE)
    assert (first.label, first.cached) == ("entailed", False) and (again.label, again.cached) == ("entailed", True)
    assert other.label == "contradicted" and len(model.calls) == 2
    call = model.calls[0]
    assert call.params["json_schema"]["properties"]["verdict"]["enum"] == list(LABELS)
    assert call.params["logprobs"] and call.params["temperature"] == 0.0
    assert "Warsaw, Poland, in 1867" in call.text("user") and "Claim: Curie was born in Warsaw." in call.text("user")
    model.assert_finished()


def test_a_verdict_counts_the_tokens_of_its_calls_and_a_cached_one_none() -> None:
    # The first reply does not parse and is retried: both attempts cost tokens.
    model = ScriptedChatModel(["not json", {"verdict": "entailed"}, {"answer": "Warsaw"}], usage=(40, 5))
    judge = LlmClaimJudge(model, retries=1, top_logprobs=0)
    first = judge.entailment(QUESTION, "Curie was born in Warsaw.", EVIDENCE)
    assert (first.prompt_tokens, first.completion_tokens) == (80, 10)
    # without logprobs none are asked for, and the label alone decides (relevance asks none by default)
    assert model.calls[0].params["logprobs"] is None and first.probability is None
    again = judge.entailment(QUESTION, "Curie was born in Warsaw.", EVIDENCE)
    assert again.cached and (again.prompt_tokens, again.completion_tokens) == (0, 0)
    relevant = judge.relevance(QUESTION, "Warsaw.", EVIDENCE)
    assert relevant.label == "entailed" and (relevant.prompt_tokens, relevant.completion_tokens) == (40, 5)
    assert model.calls[-1].params["logprobs"] is None and relevant.probability is None
    cached = judge.relevance(QUESTION, "Vienna.", EVIDENCE)  # the same extraction, read against another answer
    assert cached.cached and cached.label == "contradicted" and cached.prompt_tokens == 0
    model.assert_finished()


def test_a_judge_that_returns_no_label_is_retried_then_an_error() -> None:
    model = ScriptedChatModel(["not json", {"verdict": "maybe"}])
    with pytest.raises(ModelOutputError, match="maybe"):
        LlmClaimJudge(model, retries=1).entailment(QUESTION, "Curie was born in Warsaw.", EVIDENCE)
    model.assert_finished()


def test_relevance_is_the_judge_answering_from_the_evidence_and_the_answer_saying_it() -> None:
    answer = "Marie Curie was born in Warsaw, Poland."
    model = ScriptedChatModel([{"answer": "Warsaw, Poland"}, {"answer": "none"}, {"answer": "Paris"}])
    judge = LlmClaimJudge(model)
    copied = judge.relevance(QUESTION, answer, EVIDENCE)
    assert copied.label == "entailed" and copied.text == "Warsaw, Poland"
    assert judge.relevance("Who was her teacher?", answer, EVIDENCE).label == "not_found"
    # The evidence answers something the answer does not say: the answer answers another question, or wrongly.
    other = judge.relevance("Where did Curie die?", answer, EVIDENCE)
    assert other.label == "contradicted" and other.text == "Paris"
    # The same question over the same evidence is asked once; any answer is compared with it.
    assert judge.relevance(QUESTION, "Warsaw", EVIDENCE).label == "entailed"
    assert judge.relevance(QUESTION, "Krakow", EVIDENCE).label == "contradicted"
    model.assert_finished()


@pytest.mark.slow
def test_the_qwen_judge_tells_entailed_from_negated_and_swapped_claims(qwen_client: ModelClient) -> None:
    judge = LlmClaimJudge(qwen_client, cache_size=0, relevance_logprobs=5)
    right = judge.entailment(QUESTION, "Marie Curie was born in Warsaw.", EVIDENCE)
    negated = judge.entailment(QUESTION, "Marie Curie was not born in Warsaw.", EVIDENCE)
    swapped = judge.entailment(QUESTION, "Marie Curie was born in Vienna.", EVIDENCE)
    assert right.label == "entailed" and right.probability is not None and right.probability > 0.5, right
    assert negated.label != "entailed", negated
    assert swapped.label != "entailed", swapped
    assert judge.relevance(QUESTION, "Marie Curie was born in Warsaw.", EVIDENCE).label == "entailed"
    assert judge.relevance(QUESTION, "Marie Curie was born in Vienna.", EVIDENCE).label == "contradicted"
    assert judge.relevance("Who was her doctoral advisor?", "Gabriel Lippmann", EVIDENCE).label != "entailed"


def test_agreement_is_the_copied_words_in_the_answer_or_the_answer_most_of_them() -> None:
    from evals.gate.verdicts import agrees

    assert agrees("Walt Disney Pictures", "Walt Disney Pictures [1]")
    assert agrees("Hank Williams, Jr.", "Hank Williams Jr.")
    assert agrees("Walt Disney Pictures", "Disney")  # the answer is most of what was copied
    assert agrees("1990", "Cooper Firearms of Montana was founded in 1990.")
    assert not agrees("Kimber Manufacturing", "Cooper Firearms of Montana")
    assert not agrees("a demon", "Lilu")
    sentence = "Cooper Firearms of Montana was founded in 1990 by Dan Cooper and two former Kimber employees"
    assert not agrees(sentence, "Cooper Firearms of Montana"), "a whole copied sentence merely names it"
    assert not agrees("", "anything") and not agrees("none", "")
    # a number answers a copied phrase holding that one number (and the answer's other words)
    assert agrees("28 days of paid annual leave", "28") and agrees("up to 2,000 robots per warehouse", "2000 robots")
    assert not agrees("28 days of paid annual leave", "30") and not agrees("28 days of paid annual leave", "28 weeks")
    assert not agrees("3 founders of 2 firms", "3"), "which of two numbers is unknown"
    # a name ending the copied phrase after its title; a single last word is not enough
    assert agrees("Chief Information Security Officer Rafael Mendes", "Rafael Mendes [1][2]")
    assert not agrees("the town of Cooper Firearms of Montana", "Montana")
    # the part before a short comma tail (a place's country); a long tail is a clause, not a qualifier
    assert agrees("Warsaw, Poland", "Marie Curie was born in Warsaw.") and not agrees("Warsaw, Poland", "Vienna")
    assert not agrees("Cooper Firearms of Montana, founded in 1990 by two former employees", "Cooper Firearms")
