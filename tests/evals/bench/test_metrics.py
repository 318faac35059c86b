"""The benchmark's metrics on hand-computed examples."""

from __future__ import annotations

import numpy as np
import pytest

from evals.bench.metrics import (
    all_gold_at_k,
    bootstrap_ci,
    exact_match,
    normalize_answer,
    percentile,
    recall_at_k,
    token_f1,
)


def test_recall_at_k_is_the_fraction_of_gold_in_the_top_k() -> None:
    ranked = ["p3", "p1", "p9", "p2", "p7", "p4"]
    assert recall_at_k(ranked, ["p1", "p2"], 2) == 0.5  # only p1 in the top 2
    assert recall_at_k(ranked, ["p1", "p2"], 5) == 1.0
    assert recall_at_k(ranked, ["p1", "p2", "p4", "p5"], 5) == 0.5
    assert recall_at_k(ranked, ["p8"], 5) == 0.0
    assert recall_at_k(["p1"], ["p1", "p2"], 5) == 0.5  # fewer than k ranked


def test_recall_counts_each_gold_once_and_needs_gold() -> None:
    assert recall_at_k(["p1", "p1", "p2"], ["p1", "p1"], 1) == 1.0
    with pytest.raises(ValueError):
        recall_at_k(["p1"], [], 5)


def test_all_gold_at_k_needs_every_gold_passage() -> None:
    ranked = [f"p{i}" for i in range(10)]
    assert all_gold_at_k(ranked, ["p0", "p7"], 8) == 1.0
    assert all_gold_at_k(ranked, ["p0", "p8"], 8) == 0.0


def test_squad_normalisation() -> None:
    assert normalize_answer("The  Finnish markka!") == "finnish markka"
    assert normalize_answer("An apple, a pear") == "apple pear"
    assert normalize_answer("Theory of the Case") == "theory of case"


def test_exact_match_takes_the_best_alias() -> None:
    assert exact_match("the Finnish Markka.", ["markka", "Finnish markka"]) == 1.0
    assert exact_match("Finnish mark", ["markka", "Finnish markka"]) == 0.0


def test_token_f1_on_a_hand_computed_example() -> None:
    # prediction tokens: about 118 trillion dollars (4); gold: about 118 trillion (3); common 3
    # precision 3/4, recall 3/3 -> F1 = 2 * 0.75 * 1 / 1.75 = 6/7
    assert token_f1("about 1.18 trillion dollars", ["about $1.18 trillion"]) == pytest.approx(6 / 7)
    assert token_f1("1842", ["in 1841", "1842"]) == 1.0
    assert token_f1("nothing", ["1842"]) == 0.0
    assert token_f1("the", ["a"]) == 1.0  # both normalise to empty


def test_bootstrap_ci_contains_the_mean_and_is_deterministic() -> None:
    values = [1.0] * 30 + [0.0] * 70
    estimate = bootstrap_ci(values, resamples=1000, seed=3)
    assert estimate.mean == pytest.approx(0.3)
    assert estimate.ci_low < 0.3 < estimate.ci_high
    # normal approximation: 0.3 +- 1.96 * sqrt(0.21 / 100) = +- 0.09
    assert estimate.ci_low == pytest.approx(0.21, abs=0.03)
    assert estimate.ci_high == pytest.approx(0.39, abs=0.03)
    assert bootstrap_ci(values, resamples=1000, seed=3) == estimate


def test_bootstrap_of_constant_values_is_a_point() -> None:
    estimate = bootstrap_ci([0.5, 0.5, 0.5])
    assert (estimate.mean, estimate.ci_low, estimate.ci_high) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError):
        bootstrap_ci([])


def test_percentile_matches_numpy() -> None:
    values = [5.0, 1.0, 3.0, 2.0, 4.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(float(np.percentile(values, 95)))
