"""The cascade gate: each cheap check on the real MiniLM with real text, stage selection by settings, cheap stages
that can only fail, release only on the judge's verdicts, and judge failures (a closed port, a judge that never
answers) routed to review with a ``gate_error`` stage, never released."""

from __future__ import annotations

import socket
from collections.abc import Sequence

import pytest

from core.errors import ConfigurationError, ModelOutputError
from core.llm import ModelClient
from core.settings import GateSettings
from core.types import GateRecord, VerdictLabel
from evals.gate.base import Verdict
from evals.gate.cascade import CascadeGate
from evals.gate.checks.citation_coverage import CitationCoverageCheck
from evals.gate.checks.claims import check_input, split_claims
from evals.gate.checks.lexical_support import LexicalSupportCheck
from evals.gate.checks.quoted_spans import QuotedSpansCheck
from evals.gate.checks.support_similarity import SupportSimilarityCheck
from evals.gate.factory import build_gate
from evals.gate.ragas_gate import RagasGate
from evals.gate.verification import ClaimVerifier
from prompts.constants import ABSTENTION_TEXT
from tests.evals.gate.test_ragas_gate import assert_never_connected, client_at, closed_port
from tests.evals.gate.test_ragas_gate import listening_port as listening_port  # the fixture

CURIE = (
    "Marie Curie was a physicist and chemist. She was born in Warsaw, Poland, in 1867. "
    "She won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911."
)
LEAVE = "Annual leave policy. Every full-time employee receives 28 days of paid annual leave per year."
QUESTION = "Where was Marie Curie born?"
CONTEXTS = [LEAVE, CURIE]  # [1] = leave, [2] = Curie

FAITHFUL = "Marie Curie was born in Warsaw, Poland [2]."
SWAPPED = "Marie Curie was born in Vienna, Austria [2]."
ADDED = "Marie Curie was born in Warsaw, Poland [2]. She later founded the Red Cross in Geneva in 1920 [2]."
UNCITED = "Marie Curie was born in Warsaw, Poland."
WRONG_PASSAGE = "Marie Curie was born in Warsaw, Poland [1]."
# Faithful but paraphrased: the cheap stages cannot be sure of it.
PARAPHRASE = "Curie's birthplace was Warsaw [2]."


def cheap(**overrides: object) -> GateSettings:
    stages = [s for s in GateSettings().stages if s not in {"judge", "entailment", "relevance"}]
    return GateSettings(stages=stages, **overrides)  # type: ignore[arg-type]


def outcomes(record: GateRecord) -> dict[str, str]:
    return {s.name: s.outcome for s in record.stages}


# ----- claims -----


def test_split_claims_reads_markers_and_skips_the_abstention() -> None:
    claims = split_claims(f"Curie was born in Warsaw [2]. She won twice. [1, 3] {ABSTENTION_TEXT} Done [2-3].")
    assert [(c.text, c.cited) for c in claims] == [
        ("Curie was born in Warsaw.", (2,)),
        ("She won twice.", (1, 3)),
        ("Done.", (2, 3)),
    ]


# ----- each cheap check, real text -----


def test_citation_coverage_counts_sentences_citing_an_existing_passage() -> None:
    check = CitationCoverageCheck(fail_below=0.5, pass_at=1.0)
    assert check.check(check_input(QUESTION, FAITHFUL, CONTEXTS)).outcome == "pass"
    uncited = check.check(check_input(QUESTION, UNCITED, CONTEXTS))
    assert uncited.outcome == "fail" and uncited.scores["citation_coverage"] == 0.0
    dangling = check.check(check_input(QUESTION, "Curie was born in Warsaw [7].", CONTEXTS))
    assert dangling.outcome == "fail" and "[7]" in dangling.detail
    half = check.check(check_input(QUESTION, "Curie was born in Warsaw [2]. She was a chemist.", CONTEXTS))
    assert half.outcome == "inconclusive" and half.scores["citation_coverage"] == 0.5


def test_support_similarity_separates_supported_from_unsupported_sentences(embedder) -> None:  # type: ignore[no-untyped-def]
    check = SupportSimilarityCheck(embedder, fail_below=0.45, pass_at=0.75)
    faithful = check.check(check_input(QUESTION, FAITHFUL, CONTEXTS))
    added = check.check(check_input(QUESTION, ADDED, CONTEXTS))
    wrong_passage = check.check(check_input(QUESTION, WRONG_PASSAGE, CONTEXTS))
    assert faithful.outcome == "pass" and faithful.scores["support_similarity"] >= 0.75
    # The added sentence is the weakest one; its similarity to every Curie sentence is low.
    assert added.scores["support_similarity"] < faithful.scores["support_similarity"] - 0.2
    assert added.outcome != "pass" and "Red Cross" in added.detail
    # Cited the leave policy for a sentence about Curie: nothing in [1] supports it.
    assert wrong_passage.outcome == "fail"


def test_support_similarity_cannot_fail_a_short_claim(embedder) -> None:  # type: ignore[no-untyped-def]
    check = SupportSimilarityCheck(embedder, fail_below=0.45, pass_at=0.75)
    # A name alone is far from every sentence of a passage that does not hold it: the cosine says nothing.
    alone = check.check(check_input(QUESTION, "Warsaw [1].", CONTEXTS))
    assert alone.outcome == "inconclusive" and alone.scores["support_similarity"] < 0.45
    assert "short answer" in alone.detail
    # Beside a longer claim, the longer claim decides: fail when it is unsupported, pass when it is supported.
    unsupported = "Warsaw [2]. Employees receive 28 days of paid annual leave [2]."
    mixed = check.check(check_input(QUESTION, unsupported, CONTEXTS))
    assert mixed.outcome == "fail" and "annual leave" in mixed.detail
    both = check.check(check_input(QUESTION, f"Warsaw [1]. {FAITHFUL}", CONTEXTS))
    assert both.outcome == "pass" and both.scores["support_similarity"] >= 0.75


def test_lexical_support_catches_swapped_entities_and_added_claims() -> None:
    check = LexicalSupportCheck(fail_below=0.6, pass_at=0.8)
    assert check.check(check_input(QUESTION, FAITHFUL, CONTEXTS)).outcome == "pass"
    swapped = check.check(check_input(QUESTION, SWAPPED, CONTEXTS))
    assert swapped.outcome == "fail" and "vienna" in swapped.detail and "austria" in swapped.detail
    added = check.check(check_input(QUESTION, ADDED, CONTEXTS))
    assert added.outcome == "fail" and "1920" in added.detail and "geneva" in added.detail
    # Words of the question and near matches (inflections) count as supported; numbers must match exactly.
    near = check.check(
        check_input("Which prizes did Curie win?", "Curie won Nobel Prizes in 1903 and 1911 [2].", CONTEXTS)
    )
    assert near.outcome == "pass", near.detail
    year = check.check(check_input(QUESTION, "Marie Curie was born in Warsaw in 1868 [2].", CONTEXTS))
    assert year.outcome == "fail" and "1868" in year.detail


def test_lexical_support_fails_an_answer_about_a_topic_no_passage_mentions() -> None:
    check = LexicalSupportCheck(fail_below=0.6, pass_at=0.8)
    # The 1.5B model answered this from the nearest sentence, and its judge scored it faithful (1.00).
    heron = "Heron is a picking robot. It can lift items of up to 25 kilograms and runs for ten hours on one charge."
    off_topic = check.check(
        check_input(
            "What is the warranty period of the Heron robot?",
            "The warranty period of the Heron robot is ten hours on one charge [1].",
            [heron],
        )
    )
    assert off_topic.outcome == "fail", off_topic.detail
    assert "warranty" in off_topic.detail and "period" in off_topic.detail
    # Restating question words that the passages do hold is still not a claim.
    on_topic = check.check(
        check_input("How long can the Heron robot run?", "The Heron robot can run for ten hours [1].", [heron])
    )
    assert on_topic.outcome == "pass", on_topic.detail
    # Any inflection of a question word is a mention: "teaches" is what "taught by" says.
    course = "New engineers complete the robot safety course taught by Head of Safety Mei Lin Tan."
    taught = check.check(
        check_input(
            "Who teaches the robot safety course?", "Mei Lin Tan teaches the robot safety course [1].", [course]
        )
    )
    assert taught.outcome != "fail", taught.detail
    atlas = "Atlas is developed by the platform team led by Priya Raman."
    develops = check.check(
        check_input("Which team develops Atlas?", "The platform team led by Priya Raman develops Atlas [1].", [atlas])
    )
    assert develops.outcome != "fail", develops.detail


def test_quoted_spans_must_appear_verbatim() -> None:
    check = QuotedSpansCheck()
    assert check.check(check_input(QUESTION, FAITHFUL, CONTEXTS)).detail == "nothing quoted"
    quoted = 'The passage says "she was born in Warsaw" [2].'
    assert check.check(check_input(QUESTION, quoted, CONTEXTS)).outcome == "pass"
    invented = 'The passage says "she was born in Krakow in 1870" [2].'
    assert check.check(check_input(QUESTION, invented, CONTEXTS)).outcome == "fail"
    # Apostrophes are not quotes (Ragas' own pattern would pair them).
    assert check.check(check_input(QUESTION, "Curie's prize and Poland's pride [2].", CONTEXTS)).outcome == "pass"


# ----- the cascade -----


def test_cheap_stages_fail_fast_and_never_release_alone(embedder, listening_port: socket.socket) -> None:  # type: ignore[no-untyped-def]
    client = client_at(listening_port.getsockname()[1], timeout_s=2.0)
    gate = build_gate(GateSettings(retries=0, timeout_s=2.0), client, embedder)
    assert isinstance(gate, CascadeGate)
    for answer, stage in (
        (SWAPPED, "lexical_support"),
        (ADDED, "support_similarity"),
        (UNCITED, "citation_coverage"),
        ("Marie Curie was not born in Warsaw, Poland [2].", "polarity"),
        ("She won the Nobel Prize in Chemistry in 1903 and the Nobel Prize in Physics in 1911 [2].", "swapped_spans"),
        ("Marie Curie was born in Warsaw, Poland, in 1876 [2].", "numbers"),
    ):
        record = gate.evaluate(QUESTION, answer, CONTEXTS)
        assert record.decision == "abstained", (answer, record.reason)
        failed = [s for s in record.stages if s.outcome == "fail"]
        assert failed and failed[0].name in {stage, "lexical_support", "support_similarity"}, record.stages
        assert record.reason.startswith(failed[0].name)
        assert [s.outcome for s in record.stages[-2:]] == ["skipped", "skipped"]
        assert [s.name for s in record.stages[-2:]] == ["entailment", "relevance"]
    abstention = gate.evaluate(QUESTION, ABSTENTION_TEXT, CONTEXTS)
    assert abstention.decision == "abstained" and abstention.stages[0].name == "precheck"
    assert_never_connected(listening_port)
    # Every cheap stage passes a faithful answer, and still it is not released: the judge (which never answers
    # here) must say every claim is entailed. No verdict: review, never released.
    held = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert held.decision == "review" and held.reason.startswith("gate_error: entailment"), held.reason
    assert {s.outcome for s in held.stages if s.name not in {"citation_repair", "entailment"}} == {"pass"}


def test_stages_and_thresholds_follow_settings(embedder) -> None:  # type: ignore[no-untyped-def]
    client = client_at(closed_port())
    only = build_gate(GateSettings(stages=["citation_coverage"], inconclusive_decision="review"), client, embedder)
    assert isinstance(only, CascadeGate) and [c.name for c in only.checks] == ["citation_coverage"]
    assert only.judge is None and only.verifier is None
    record = only.evaluate(QUESTION, SWAPPED, CONTEXTS)  # citations fine, the only stage passes: not a release
    assert record.decision == "review" and "cheap checks alone never release" in record.reason
    assert [s.name for s in record.stages] == ["citation_repair", "citation_coverage"]
    unsure = build_gate(
        GateSettings(stages=["citation_coverage"], citation_coverage_fail_below=0.0, inconclusive_decision="abstained"),
        client,
        embedder,
    )
    record = unsure.evaluate(QUESTION, UNCITED, CONTEXTS)
    assert record.decision == "abstained" and "no judge stage configured" in record.reason
    assert outcomes(record)["citation_coverage"] == "inconclusive"
    ragas = GateSettings(backend="ragas")
    assert isinstance(build_gate(ragas, client, embedder, judge_factory=RagasGate.from_settings), RagasGate)
    judged = GateSettings(stages=["citation_coverage", "judge"])
    assert isinstance(build_gate(judged, client, embedder, judge_factory=RagasGate.from_settings).judge, RagasGate)
    for needs_ragas in (ragas, judged):  # built without the composition root's judge factory: one clear error
        with pytest.raises(ConfigurationError, match="without a judge factory"):
            build_gate(needs_ragas, client, embedder)
    strict = build_gate(cheap(lexical_support_pass_at=1.0, lexical_support_fail_below=1.0), client, embedder)
    assert strict.evaluate(QUESTION, PARAPHRASE, CONTEXTS).decision == "abstained"
    with pytest.raises(ConfigurationError, match="never release"):
        CascadeGate([CitationCoverageCheck()], inconclusive_decision="released")


@pytest.mark.parametrize(
    "overrides",
    [
        {"support_similarity_fail_below": 0.9, "support_similarity_pass_at": 0.5},
        {"citation_coverage_pass_at": 1.5},
        {"stages": []},
        {"stages": ["made_up"]},
    ],
)
def test_bad_gate_settings_are_one_clear_error(embedder, overrides: dict[str, object]) -> None:  # type: ignore[no-untyped-def]
    from pydantic import ValidationError

    with pytest.raises((ConfigurationError, ValidationError)) as info:
        build_gate(GateSettings(**overrides), client_at(closed_port()), embedder)  # type: ignore[arg-type]
    if isinstance(info.value, ConfigurationError):
        assert "gate" in str(info.value)


# ----- the judge stages: a verdict per claim, relevance; a failing judge means review -----


class _Judge:
    """A scripted claim judge (fast unit test of the cascade's routing; the real judge is tested on Qwen)."""

    version = "scripted"

    def __init__(self, labels: dict[str, VerdictLabel], relevant: bool = True, fail: Exception | None = None) -> None:
        self.labels, self.relevant, self.fail = labels, relevant, fail
        self.claims: list[tuple[str, list[str]]] = []
        self.asked: list[list[str]] = []  # the evidence of each question-answer verdict

    def entailment(self, question: str, claim: str, evidence: Sequence[str]) -> Verdict:
        if self.fail is not None:
            raise self.fail
        self.claims.append((claim, list(evidence)))
        return Verdict(next((v for k, v in self.labels.items() if k in claim), "entailed"), 0.9)

    def relevance(self, question: str, answer: str, evidence: Sequence[str]) -> Verdict:
        self.asked.append(list(evidence))
        return Verdict("entailed", 0.8, text="Warsaw") if self.relevant else Verdict("contradicted", 0.9, text="Paris")


def _cascade(embedder, judge: _Judge) -> CascadeGate:  # type: ignore[no-untyped-def]
    gate = build_gate(cheap(), client_at(closed_port()), embedder)
    assert isinstance(gate, CascadeGate)
    return CascadeGate(gate.checks, ClaimVerifier(judge))


def test_release_needs_every_claim_entailed_and_the_answer_relevant(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = _Judge({})
    two = "Marie Curie was born in Warsaw, Poland [2]. She won the Nobel Prize in Physics in 1903 [2]."
    record = _cascade(embedder, judge).evaluate(QUESTION, two, CONTEXTS)
    assert record.decision == "released", record.reason
    assert [c.verdict for c in record.claims] == ["entailed", "entailed"] and record.relevant is True
    assert all(c.evidence and c.decided_by == "entailment" for c in record.claims)
    span = record.claims[0].evidence[-1]
    assert CONTEXTS[span.passage - 1][span.start : span.end] == span.text and "Warsaw" in span.text
    assert judge.claims[0][1] and all(len(e) <= 4 for _, e in judge.claims), "a few sentences, not passages"
    # One contradicted claim abstains the answer and names it; the later claim is not judged.
    contradicted = _cascade(embedder, _Judge({"Warsaw": "contradicted"})).evaluate(QUESTION, two, CONTEXTS)
    assert contradicted.decision == "abstained" and "claim 1 contradicted" in contradicted.reason
    assert outcomes(contradicted)["relevance"] == "skipped"
    off_topic = _cascade(embedder, _Judge({}, relevant=False)).evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert off_topic.decision == "abstained" and off_topic.reason.startswith("relevance")
    assert "'Paris'" in off_topic.reason, "names what the evidence answers instead"
    assert judge.asked and any("Warsaw" in e for e in judge.asked[0]), "asked over the claims' evidence sentences"


def test_the_question_answer_verdict_also_reads_where_the_passages_answer(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = _Judge({})
    # A true sentence of the wrong passage, cited correctly: the judge must also see the sentence that answers.
    distractor = "Every full-time employee receives 28 days of paid annual leave per year [1]."
    CascadeGate([], ClaimVerifier(judge)).evaluate(QUESTION, distractor, CONTEXTS)
    (asked,) = judge.asked
    assert any("born in Warsaw" in e for e in asked) and any("28 days" in e for e in asked)


def test_a_short_answer_is_judged_by_the_question_answer_verdict(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = _Judge({})
    record = _cascade(embedder, judge).evaluate(QUESTION, "Warsaw [2].", CONTEXTS)
    assert record.decision == "released", record.reason
    assert judge.claims == [], "no entailment call for an entity alone"
    (claim,) = record.claims
    assert (claim.verdict, claim.decided_by) == ("entailed", "relevance") and claim.evidence
    assert outcomes(record)["entailment"] == "skipped"
    # A wrong entity of the passage (the cheap stages left out: they would not see it) is held by the verdict.
    wrong = CascadeGate([], ClaimVerifier(_Judge({}, relevant=False))).evaluate(QUESTION, "Physics [2].", CONTEXTS)
    assert wrong.decision == "abstained" and [c.verdict for c in wrong.claims] == ["contradicted"]


def test_an_answer_that_only_restates_the_question_fails_fast(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = _Judge({})
    record = _cascade(embedder, judge).evaluate(QUESTION, "Marie Curie [2].", CONTEXTS)
    assert record.decision == "abstained" and record.reason.startswith("restates_question")
    assert judge.claims == [] and judge.asked == [], "failed before any judge call"
    # A choice question offers its answer: naming one option is not restating it.
    choice = _cascade(embedder, judge).evaluate("Was Curie born in Warsaw or Paris?", "Warsaw [2].", CONTEXTS)
    assert outcomes(choice)["restates_question"] == "pass" and choice.decision == "released", choice.reason


def test_a_repaired_citation_is_judged_against_the_right_passage_and_recorded(embedder) -> None:  # type: ignore[no-untyped-def]
    judge = _Judge({})
    record = _cascade(embedder, judge).evaluate(QUESTION, WRONG_PASSAGE, CONTEXTS)
    assert record.decision == "released", record.reason
    claim = record.claims[0]
    assert claim.cited == [1] and claim.judged_against == [2] and claim.repair and "[2]" in claim.repair
    assert record.repaired_answer == "Marie Curie was born in Warsaw, Poland. [2]"
    assert all("Warsaw" in e or "Curie" in e for e in judge.claims[0][1])


def test_a_judge_that_fails_sends_the_answer_to_review(embedder) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    gate = build_gate(GateSettings(retries=1, timeout_s=10), client_at(port), embedder)
    record = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert record.decision == "review", record
    stage = next(s for s in record.stages if s.name == "entailment")
    assert stage.outcome == "error" and f"127.0.0.1:{port}" in stage.detail
    assert record.reason.startswith("gate_error: ")
    failing = _cascade(embedder, _Judge({}, fail=ModelOutputError("no verdict")))
    assert failing.evaluate(QUESTION, FAITHFUL, CONTEXTS).decision == "review"


def test_judge_that_never_answers_times_out_then_review(embedder, listening_port: socket.socket) -> None:  # type: ignore[no-untyped-def]
    client = client_at(listening_port.getsockname()[1], timeout_s=30)
    gate = build_gate(GateSettings(retries=1, timeout_s=0.5), client, embedder)
    record = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert record.decision == "review" and record.reason.startswith("gate_error: entailment")
    assert next(s for s in record.stages if s.name == "entailment").duration_ms < 10_000


@pytest.mark.slow
def test_the_qwen_judge_releases_a_paraphrase_and_holds_a_negation(qwen_client: ModelClient, embedder) -> None:  # type: ignore[no-untyped-def]
    gate = build_gate(GateSettings(), qwen_client, embedder)
    record = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert record.decision == "released", record.reason
    assert record.claims and record.claims[0].verdict == "entailed" and record.claims[0].evidence
    assert record.claims[0].probability is not None and record.relevant is True
    # The judge's calls are counted from the server's usage; the same answer again is judged from the cache.
    assert record.judge_prompt_tokens and record.judge_prompt_tokens > 50 and record.judge_completion_tokens
    again = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert again.claims[0].cached and (again.judge_prompt_tokens, again.judge_completion_tokens) == (0, 0)
    # Every word is in the passage; only the judge can see the roles swapped.
    swapped = gate.evaluate("Who was born in Warsaw?", "Warsaw was born in Marie Curie [2].", CONTEXTS)
    assert swapped.decision != "released", swapped.reason


def test_a_comparison_names_its_answer_and_is_not_restating_it() -> None:
    from evals.gate.checks.restates_question import RestatesQuestionCheck

    check = RestatesQuestionCheck()
    question = "Little Caesars and Pizza Hut were founded in the 1950s within a year of each other, which was first?"
    assert check.check(check_input(question, "Pizza Hut [1].", CONTEXTS)).outcome == "pass"
    asks = "What company formed Cooper Firearms of Montana?"
    assert check.check(check_input(asks, "Cooper Firearms of Montana [1].", CONTEXTS)).outcome == "fail"
    assert check.check(check_input(asks, "Kimber Manufacturing [1].", CONTEXTS)).outcome == "pass"
