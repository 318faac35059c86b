"""``run_benchmark(rerank=True)``: every mode also runs behind the LLM rerank stage, in the same run."""

from __future__ import annotations

import pytest

from core.settings import load_settings
from evals.bench.harness import run_benchmark
from tests.conftest import RunningModelServer
from tests.evals.bench.test_harness import MINI


@pytest.mark.integration
def test_rerank_modes_are_reported_beside_the_plain_ones(smol_server: RunningModelServer) -> None:
    settings = load_settings(llm_base_url=smol_server.base_url, llm_model=smol_server.name)
    settings.retrieval.rerank_candidates = 4
    report = run_benchmark(MINI, ["dense"], settings, limit=1, resamples=50, rerank=True)
    assert list(report["modes"]) == ["dense", "dense+rerank"]
    assert report["config"]["rerank"] is True
    (question,) = report["questions"]
    plain, reranked = question["modes"]["dense"]["ranked"], question["modes"]["dense+rerank"]["ranked"]
    assert sorted(plain[:4]) == sorted(reranked[:4])  # only the first 4 candidates are reordered
    assert plain[4:] == reranked[4:]
    assert "delta_vs_dense" in report["modes"]["dense+rerank"]
