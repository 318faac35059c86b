"""The answer workflow's typed step names are checked against its YAML declaration when it is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import WorkflowBuildError
from pipelines.answer.names import STRICT_STEPS, AnswerStep, check_declared
from pipelines.workflow.spec import WorkflowSpec, default_workflows_dir

ANSWER_YAML = default_workflows_dir() / "answer.yaml"


def test_the_packaged_declaration_has_exactly_the_typed_steps() -> None:
    spec = WorkflowSpec.load(ANSWER_YAML)
    assert [s.name for s in spec.steps] == [s.value for s in AnswerStep]
    check_declared(spec, strict_retry=True)
    check_declared(spec.without(STRICT_STEPS, version_suffix="-x"), strict_retry=False)


def test_a_renamed_step_fails_at_build_naming_both_sides(tmp_path: Path) -> None:
    renamed = tmp_path / "answer.yaml"
    text = ANSWER_YAML.read_text(encoding="utf-8").replace("- name: retrieve\n", "- name: fetch\n")
    renamed.write_text(text.replace("retrieve.items", "fetch.items"), encoding="utf-8")
    spec = WorkflowSpec.load(renamed)  # a valid workflow on its own
    with pytest.raises(WorkflowBuildError) as info:
        check_declared(spec, strict_retry=True)
    assert "unknown step(s) fetch" in info.value.message and "missing step(s) retrieve" in info.value.message
    assert "AnswerStep" in (info.value.hint or "")


def test_strict_steps_are_required_only_with_the_strict_retry() -> None:
    without = WorkflowSpec.load(ANSWER_YAML).without(STRICT_STEPS, version_suffix="-x")
    with pytest.raises(WorkflowBuildError, match="missing step"):
        check_declared(without, strict_retry=True)
    with pytest.raises(WorkflowBuildError, match="unknown step"):
        check_declared(WorkflowSpec.load(ANSWER_YAML), strict_retry=False)
