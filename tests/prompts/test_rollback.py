"""Automatic rollback: the pass-rate decision, and split labels refused (the rollback on outcomes read from a real
audit store: tests/pipelines/store/test_recent_outcomes.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import PromptError
from prompts.registry import FilePromptRegistry
from prompts.rollback import Outcome, RollbackMonitor, RollbackPolicy, decide
from tests.prompt_copies import registry_with_answer_v2

POLICY = RollbackPolicy(window=20, margin=0.1, min_answers=10)


def outcomes(version: int, passed: int, failed: int) -> list[Outcome]:
    return [Outcome(version=version, passed=True)] * passed + [Outcome(version=version, passed=False)] * failed


def test_drop_beyond_the_margin_rolls_back() -> None:
    d = decide("answer", "production", 2, 1, outcomes(1, 18, 2) + outcomes(2, 12, 8), POLICY)
    assert d.rollback and (d.previous_rate, d.current_rate) == (0.9, 0.6)
    assert "v2 60.0% over its last 20 answers is 30.0% below v1's 90.0%" in d.reason


def test_drop_within_the_margin_keeps_the_version() -> None:
    d = decide("answer", "production", 2, 1, outcomes(1, 18, 2) + outcomes(2, 17, 3), POLICY)
    assert not d.rollback and "within the margin" in d.reason


def test_too_few_answers_or_no_previous_version_never_rolls_back() -> None:
    assert not decide("answer", "production", 2, 1, outcomes(1, 18, 2) + outcomes(2, 0, 9), POLICY).rollback
    assert not decide("answer", "production", 2, None, outcomes(2, 0, 20), POLICY).rollback


def test_only_the_newest_window_counts() -> None:
    # v2 failed a lot long ago, then recovered: its last 20 answers all passed.
    history = outcomes(1, 18, 2) + outcomes(2, 0, 30) + outcomes(2, 20, 0)
    assert not decide("answer", "production", 2, 1, history, POLICY).rollback


@pytest.fixture
def registry(tmp_path: Path) -> FilePromptRegistry:
    return registry_with_answer_v2(tmp_path)


def test_rollback_refuses_split_labels(registry: FilePromptRegistry) -> None:
    registry.set_split("answer", "production", {1: 50, 2: 50}, actor="alice")
    with pytest.raises(PromptError, match="is a split"):
        RollbackMonitor(registry, POLICY).check("answer", "production", [])
