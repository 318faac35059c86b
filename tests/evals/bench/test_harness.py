"""``kgrag bench`` end to end on three real MuSiQue questions, its JSON schema, and its bad-input errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import InputError, ModelOutputError
from core.settings import load_settings
from evals.bench.answers import SCORED, contains_gold, failed_row, parse_variant, summarise
from evals.bench.harness import MODES, parse_modes, run_benchmark
from pipelines.cli.main import app
from tests.conftest import RunningModelServer
from tests.prompt_copies import answer_prompts_at

MINI = Path(__file__).resolve().parents[1] / "data" / "musique_mini"
runner = CliRunner()


def said(output: str) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(output.split())


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    out = tmp_path_factory.mktemp("bench") / "report.json"
    result = runner.invoke(app, ["bench", "--dataset", str(MINI), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "musique_mini" in result.output and "graph" in result.output and "recall@5" in result.output
    return dict(json.loads(out.read_text("utf-8")))


def test_every_mode_runs_every_question_in_one_run(report: dict) -> None:  # type: ignore[type-arg]
    assert report["schema_version"] == 2
    assert "answers" not in report
    assert report["dataset"] == {"path": str(MINI), "name": "musique_mini", "questions": 3, "passages": 60}
    assert list(report["modes"]) == list(MODES)
    assert report["ingest"]["seconds"] > 0 and report["ingest"]["chunks"] >= 60
    assert report["ingest"]["graph_build_s"] is not None
    for mode, row in report["modes"].items():
        for metric in ("recall@2", "recall@5", "all_gold@8"):
            estimate = row[metric]
            assert 0.0 <= estimate["ci_low"] <= estimate["mean"] <= estimate["ci_high"] <= 1.0, (mode, metric)
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p95"]
        assert "em" not in row  # answers were not asked for
        if mode != "dense":
            delta = row["delta_vs_dense"]["recall@5"]
            assert delta["ci_low"] <= delta["mean"] <= delta["ci_high"]
            paired = sum(q["modes"][mode]["recall@5"] - q["modes"]["dense"]["recall@5"] for q in report["questions"])
            assert delta["mean"] == pytest.approx(paired / 3, abs=1e-6)
    assert len(report["questions"]) == 3


def test_per_question_scores_agree_with_the_ranked_passages(report: dict) -> None:  # type: ignore[type-arg]
    for row in report["questions"]:
        gold = set(row["gold_passage_ids"])
        for mode, result in row["modes"].items():
            ranked = result["ranked"]
            assert len(ranked) == len(set(ranked)) == 8, mode  # one entry per passage, top 8
            assert result["recall@5"] == len(gold & set(ranked[:5])) / len(gold)
            assert result["all_gold@8"] == float(gold <= set(ranked))
    means = [
        sum(q["modes"]["dense"]["recall@5"] for q in report["questions"]) / 3,
        report["modes"]["dense"]["recall@5"]["mean"],
    ]
    assert means[0] == pytest.approx(means[1])
    # the dense retriever finds at least one gold passage of each of these questions in its top 5
    assert all(q["modes"]["dense"]["recall@5"] > 0 for q in report["questions"])


def test_bad_input_is_one_clear_error(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["bench", "--dataset", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "does not exist" in said(missing.output) and "Traceback" not in missing.output
    unknown = runner.invoke(app, ["bench", "--dataset", str(MINI), "--modes", "dense,magic"])
    assert unknown.exit_code == 2 and "magic" in said(unknown.output)
    (tmp_path / "questions.jsonl").write_text('{"question": "q?", "gold_passage_ids": ["x"]}\n', "utf-8")
    (tmp_path / "corpus.jsonl").write_text('{"id": "y", "text": "not the gold one"}\n', "utf-8")
    bad_gold = runner.invoke(app, ["bench", "--dataset", str(tmp_path)])
    assert bad_gold.exit_code == 2 and "gold passage" in said(bad_gold.output)
    (tmp_path / "questions.jsonl").write_text("{not json\n", "utf-8")
    bad_json = runner.invoke(app, ["bench", "--dataset", str(tmp_path)])
    assert bad_json.exit_code == 2 and "questions.jsonl:1" in said(bad_json.output)


def test_parse_modes_keeps_order_and_rejects_unknown() -> None:
    assert parse_modes("graph, dense,graph") == ["graph", "dense"]
    with pytest.raises(InputError):
        parse_modes("")


def test_contains_gold_matches_whole_normalised_words() -> None:
    assert contains_gold("It was the Walt Disney Pictures [1].", ["Walt Disney Pictures."]) == 1.0
    assert contains_gold("Hank Williams, Jr.", ["Hank Williams, Jr."]) == 1.0
    assert contains_gold("Disneyland", ["Disney"]) == 0.0  # a word inside another is not the answer
    assert contains_gold("", ["Disney"]) == 0.0


def test_variants_override_one_setting_and_reject_bad_ones() -> None:
    base = load_settings()
    variant = parse_variant("retrieval.mode=hybrid", base)
    assert variant.name == "retrieval.mode=hybrid" and variant.settings.retrieval.mode == "hybrid"
    assert variant.settings.retrieval.top_k == base.retrieval.top_k
    for bad in ("retrieval.mode", "retrieval.nope=1", "nope.mode=x", "retrieval.mode=fastest"):
        with pytest.raises(InputError):
            parse_variant(bad, base)


@pytest.mark.integration
def test_answers_run_through_the_answer_service_per_variant(smol_server: RunningModelServer, tmp_path: Path) -> None:
    # The tiny model writes v2's free text: v3's JSON reply often runs past its tokens (then a row is an "error",
    # tested below); the plumbing of the benchmark is the point here.
    settings = load_settings(
        llm_base_url=smol_server.base_url,
        llm_model=smol_server.name,
        llm_max_tokens=32,
        prompts={"directory": answer_prompts_at(tmp_path, 2)},
    )
    result = run_benchmark(MINI, ["dense"], settings, answers=True, limit=2, resamples=100)
    answers = result["answers"]
    assert answers["variants"] == ["default", "retrieval.mode=hybrid"]
    assert answers["settings"]["retrieval.mode=hybrid"]["retrieval_mode"] == "hybrid"
    for question in answers["questions"]:
        for name in answers["variants"]:
            row = question[name]
            # Each answer went through the workflow: a gate decision, a stored record, the steps' times.
            assert row["decision"] in ("released", "abstained", "review") and row["answer_id"]
            assert row["generation_ms"] > 0 and row["retrieval_ms"] > 0
            assert row["released_right"] + row["released_wrong"] + row["held_right"] + row["held_wrong"] == 1.0
            assert 0.0 <= row["em"] <= row["f1"] <= 1.0
    summary = answers["summary"]["default"]
    table = sum(summary[k]["mean"] for k in ("released_right", "released_wrong", "held_right", "held_wrong"))
    assert table == pytest.approx(1.0, abs=1e-5)
    assert sum(summary["decisions"].values()) == 2
    paired = answers["summary"]["retrieval.mode=hybrid"]["paired_vs_default"]
    assert set(paired) == {"f1", "released_right", "released_wrong"}


def test_an_unusable_model_reply_is_a_held_wrong_row_not_the_end_of_the_run() -> None:
    row = failed_row(ModelOutputError("model 'm' did not reply with the JSON object"), 3.0)
    assert row["decision"] == "error" and "JSON object" in row["reason"] and row["held_wrong"] == 1.0
    assert row["released_right"] == row["released_wrong"] == 0.0 and set(SCORED) <= set(row)
    summary = summarise([row, {**row, "decision": "abstained"}], resamples=10)
    assert summary["decisions"] == {"abstained": 1, "error": 1} and summary["released"] == 0
    assert row["judge_prompt_tokens"] == 0 and summary["judge_tokens"] == {"mean": 0.0, "p50": 0}
