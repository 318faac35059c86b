"""Label moves are logged (who, when, from, to); split labels route requests deterministically by id."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from core.errors import PromptError
from prompts.registry import FilePromptRegistry
from tests.prompt_copies import copy_packaged_prompts


@pytest.fixture
def registry(tmp_path: Path) -> FilePromptRegistry:
    """The packaged prompts copied to tmp_path, plus an answer v2 (a different system text)."""
    templates = tmp_path / "templates"
    copy_packaged_prompts(templates, tmp_path / "labels.yaml")
    v1 = (templates / "answer.v1.yaml").read_text(encoding="utf-8")
    v2 = v1.replace("version: 1", "version: 2").replace("one to three short sentences", "one short sentence")
    (templates / "answer.v2.yaml").write_text(v2, encoding="utf-8")
    return FilePromptRegistry(templates)


def test_promote_moves_the_label_and_logs_who_when_from_to(registry: FilePromptRegistry) -> None:
    event = registry.promote("answer", 2, "production", actor="alice", reason="shorter answers")
    assert (event.actor, event.prompt, event.label, event.from_, event.to, event.kind) == (
        "alice", "answer", "production", "1", "2", "promote"
    )  # fmt: skip
    assert registry.resolve("answer").version == 2
    assert FilePromptRegistry(registry.directory).resolve("answer").version == 2, "persisted in labels.yaml"
    registry.promote("answer", 1, "staging", actor="bob")
    lines = registry.label_store.log_path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["from"] for line in lines] == ["1", None]
    assert json.loads(lines[0])["at"].endswith("+00:00") and json.loads(lines[0])["reason"] == "shorter answers"
    assert [e.actor for e in registry.history("answer")] == ["alice", "bob"]
    assert [e.label for e in registry.history("answer", "staging")] == ["staging"]
    assert registry.labels()["answer"] == {"production": 2, "staging": 1}
    assert registry.resolve("extraction").version == 1, "other prompts keep their labels"


def test_promote_refuses_unknown_versions_and_missing_actor(registry: FilePromptRegistry) -> None:
    with pytest.raises(PromptError, match="has no version 9"):
        registry.promote("answer", 9, "production", actor="alice")
    with pytest.raises(PromptError, match="needs an actor"):
        registry.promote("answer", 2, "production", actor=" ")
    assert registry.history() == [] and registry.resolve("answer").version == 1


def test_split_share_is_within_two_points_over_10k_request_ids(registry: FilePromptRegistry) -> None:
    registry.set_split("answer", "production", {1: 80, 2: 20}, actor="alice")
    ids = [uuid.uuid4().hex for _ in range(10_000)]
    counts = Counter(registry.resolve("answer", "production", request_id=i).version for i in ids)
    assert abs(counts[2] / len(ids) * 100 - 20) <= 2, counts
    assert abs(counts[1] / len(ids) * 100 - 80) <= 2, counts
    again = [registry.resolve("answer", "production", request_id=i).version for i in ids[:500]]
    assert again == [registry.resolve("answer", "production", request_id=i).version for i in ids[:500]]
    assert registry.resolve("answer", "production").version == 1, "no request id: the largest share"
    assert registry.history("answer")[-1].to == "split v1 80%, v2 20%"


def test_split_with_sequential_ids_is_also_balanced(registry: FilePromptRegistry) -> None:
    registry.set_split("answer", "canary", {1: 90, 2: 10}, actor="alice")
    counts = Counter(registry.resolve("answer", "canary", request_id=str(i)).version for i in range(10_000))
    assert abs(counts[2] / 100 - 10) <= 2, counts


def test_invalid_splits_are_refused_with_a_clear_error(registry: FilePromptRegistry) -> None:
    with pytest.raises(PromptError, match="shares must sum to 100"):
        registry.set_split("answer", "production", {1: 50, 2: 30}, actor="alice")
    with pytest.raises(PromptError, match="has no version 99"):
        registry.set_split("answer", "production", {1: 50, 99: 50}, actor="alice")
    (registry.labels_path).write_text("answer:\n  production: {split: {1: 70}}\n", encoding="utf-8")
    registry.reload()
    with pytest.raises(PromptError, match="labels.yaml is invalid.*sum to 100"):
        registry.resolve("answer")
