"""The gate's labelled proof set: deterministic, 100 questions x (1 faithful + 3 hallucinated), and each variant
differs from the faithful answer the way it claims."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evals.bench.proof import build
from evals.bench.proof import text as tx
from evals.bench.proof.items import DEFAULT_SET, VARIANTS, ProofItem, load_items

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_EVAL = REPO_ROOT.parent / "shared" / "eval"
MINI = REPO_ROOT / "tests" / "evals" / "data" / "musique_mini"
CITATION = re.compile(r"\s*\[(\d+)\]")


def _body(answer: str) -> str:
    """The answer without its citation markers and final period."""
    return CITATION.sub("", answer).strip().rstrip(".")


def _by_question(items: list[ProofItem]) -> dict[str, dict[str, ProofItem]]:
    grouped: dict[str, dict[str, ProofItem]] = {}
    for item in items:
        grouped.setdefault(item.question_id, {})[item.variant] = item
    return grouped


@pytest.fixture(scope="module")
def items() -> list[ProofItem]:
    return load_items(DEFAULT_SET)


def test_the_committed_set_holds_100_questions_with_one_faithful_and_three_hallucinated_answers(
    items: list[ProofItem],
) -> None:
    assert DEFAULT_SET.stat().st_size < 1_000_000
    grouped = _by_question(items)
    assert len(grouped) == 100 and len(items) == 400
    assert len({i.id for i in items}) == 400
    for variants in grouped.values():
        assert tuple(variants) == VARIANTS
        assert {v: i.label for v, i in variants.items()} == {
            "faithful": "faithful",
            "wrong_entity": "hallucinated",
            "unsupported_claim": "hallucinated",
            "distractor_answer": "hallucinated",
        }
        first = variants["faithful"]
        assert all(i.contexts == first.contexts and i.question == first.question for i in variants.values())
        assert len(first.contexts) == len(first.source_ids) >= 2 + build.DISTRACTORS - 1
        assert len(set(first.source_ids)) == len(first.source_ids)


def test_faithful_answers_state_the_gold_answer_and_cite_the_passage_that_says_it(items: list[ProofItem]) -> None:
    for item in (i for i in items if i.variant == "faithful"):
        cited = {int(n) for n in CITATION.findall(item.answer)}
        assert cited == {item.gold_index}, item.id
        passage = item.contexts[item.gold_index - 1]
        assert tx.find_answer(item.answer, item.gold_answers) is not None, item.id
        assert tx.find_answer(passage, item.gold_answers) is not None, item.id
        body = _body(item.answer)
        # verbatim from the cited passage, except a leading pronoun replaced by the passage's subject
        assert any(body.split(" ", k)[-1] in passage for k in range(5)), item.id


def test_wrong_entity_swaps_in_a_name_the_gold_passage_never_mentions(items: list[ProofItem]) -> None:
    grouped = _by_question(items)
    for variants in grouped.values():
        faithful, wrong = variants["faithful"], variants["wrong_entity"]
        swapped, span = wrong.detail["swapped_in"], wrong.detail["gold_span"]
        passage = wrong.contexts[wrong.gold_index - 1]
        assert swapped and swapped in wrong.answer and wrong.answer != faithful.answer, wrong.id
        assert not tx.contains_any(passage, [swapped]), wrong.id
        assert wrong.answer == faithful.answer.replace(span, swapped, 1), wrong.id
        assert {int(n) for n in CITATION.findall(wrong.answer)} == {wrong.gold_index}


def test_unsupported_claim_adds_a_cited_sentence_that_no_context_supports(items: list[ProofItem]) -> None:
    for variants in _by_question(items).values():
        faithful, added = variants["faithful"], variants["unsupported_claim"]
        claim = added.detail["claim"]
        assert added.answer == f"{faithful.answer} {claim}", added.id
        assert CITATION.search(claim), added.id
        fabricated = added.detail["fabricated"].split("|")
        assert fabricated and all(value in claim for value in fabricated), added.id
        assert any(re.fullmatch(r"\d[\d,]*", value) for value in fabricated), added.id  # a date or number
        for context in added.contexts:
            assert _body(claim) not in context
            assert not any(value in context for value in fabricated), added.id


def test_distractor_answer_is_a_distractor_sentence_without_the_gold_answer_citing_the_gold_passage(
    items: list[ProofItem],
) -> None:
    for item in (i for i in items if i.variant == "distractor_answer"):
        source = item.detail["distractor_id"]
        assert source in item.source_ids and item.source_ids.index(source) != item.gold_index - 1, item.id
        distractor = item.contexts[item.source_ids.index(source)]
        tail = _body(item.answer).split(" ", 4)[-1]
        assert tail in distractor, item.id
        assert not tx.contains_any(_body(item.answer), item.gold_answers), item.id
        assert tail not in item.contexts[item.gold_index - 1], item.id
        assert {int(n) for n in CITATION.findall(item.answer)} == {item.gold_index}


def test_the_builder_is_deterministic(tmp_path: Path) -> None:
    (tmp_path / "musique").symlink_to(MINI, target_is_directory=True)
    first, skipped = build.build_set(tmp_path, count=3, datasets=("musique",))
    second, _ = build.build_set(tmp_path, count=3, datasets=("musique",))
    assert not skipped and len(first) == 3
    assert json.dumps(first) == json.dumps(second)
    assert [g["question_id"] for g in first] == [
        json.loads(line)["id"] for line in (MINI / "questions.jsonl").read_text("utf-8").splitlines()
    ]


@pytest.mark.skipif(not SHARED_EVAL.is_dir(), reason="shared/eval is not next to the repository")
def test_rebuilding_from_shared_eval_reproduces_the_committed_file_and_spares_the_calibration_questions(
    tmp_path: Path,
) -> None:
    out = tmp_path / "proof_set.jsonl"
    build.main(["--eval-dir", str(SHARED_EVAL), "--out", str(out)])
    assert out.read_bytes() == DEFAULT_SET.read_bytes()
    musique = [json.loads(line)["id"] for line in (SHARED_EVAL / "musique" / "questions.jsonl").open()]
    used = {json.loads(line)["question_id"] for line in out.open()}
    assert not used & set(musique[build.MUSIQUE_MAX_INDEX :])


def test_sentences_do_not_break_after_initials_or_abbreviations() -> None:
    text = 'E. B. White was born on Dec. 10, 1899. He met President James K. Polk. "It ended." Then it did.'
    assert tx.sentences(text) == [
        "E. B. White was born on Dec. 10, 1899.",
        "He met President James K. Polk.",
        '"It ended."',
        "Then it did.",
    ]


def test_a_missing_eval_dir_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from core.errors import InputError

    with pytest.raises(InputError, match="does not exist") as caught:
        build.build_set(tmp_path / "nowhere")
    assert "--eval-dir" in str(caught.value)
