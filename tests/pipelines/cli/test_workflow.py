"""The real ``kgrag workflow`` and ``kgrag prompts`` commands in subprocesses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prompts.registry import FilePromptRegistry
from tests.pipelines.cli.test_main import assert_clear_error, kgrag
from tests.prompt_copies import copy_packaged_prompts


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    templates = tmp_path / "templates"
    copy_packaged_prompts(templates, tmp_path / "labels.yaml")
    v1 = (templates / "answer.v1.yaml").read_text(encoding="utf-8")
    v2 = v1.replace("version: 1", "version: 2").replace("one to three short sentences", "one short sentence")
    (templates / "answer.v2.yaml").write_text(v2, encoding="utf-8")
    return templates


def test_workflow_show_and_graph() -> None:
    show = kgrag("workflow", "show", "answer")
    assert show.returncode == 0, show.stderr
    assert "answer version 3" in show.stdout
    assert "gate -> assemble_strict  [when gate.retryable true]" in show.stdout
    assert "assemble.passages not_empty" in show.stdout
    mermaid = kgrag("workflow", "graph", "answer", "--format", "mermaid")
    assert mermaid.returncode == 0 and mermaid.stdout.startswith("flowchart TD")
    assert '    gate -.->|"when gate.retryable true"| assemble_strict' in mermaid.stdout
    dot = kgrag("workflow", "graph", "answer", "--format", "dot")
    assert dot.returncode == 0 and dot.stdout.startswith('digraph "answer v3" {')
    listing = kgrag("workflow", "list")
    assert listing.returncode == 0 and "answer" in listing.stdout


def test_workflow_bad_input_is_one_clear_line() -> None:
    assert_clear_error(kgrag("workflow", "show", "nope"), 1, "unknown workflow 'nope'")
    bad = kgrag("workflow", "graph", "answer", "--format", "png")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "png" in bad.stderr


def test_prompts_list_show_diff(prompts_dir: Path) -> None:
    listing = kgrag("prompts", "list", "--prompts-dir", str(prompts_dir))
    assert listing.returncode == 0, listing.stderr
    assert "answer_strict" in listing.stdout and "production" in listing.stdout
    show = kgrag("prompts", "show", "answer", "--prompts-dir", str(prompts_dir))
    assert show.returncode == 0 and "answer v1" in show.stdout and "guardrails:" in show.stdout
    assert "The documents do not answer this question." in show.stdout
    diff = kgrag("prompts", "diff", "answer", "1", "2", "--prompts-dir", str(prompts_dir))
    assert diff.returncode == 0, diff.stderr
    assert "--- answer.v1" in diff.stdout and "+++ answer.v2" in diff.stdout
    changed = [ln for ln in diff.stdout.splitlines() if ln[:1] in "+-" and not ln.startswith(("---", "+++"))]
    assert len(changed) == 2 and "one short sentence" in changed[1]
    assert_clear_error(
        kgrag("prompts", "diff", "answer", "1", "7", "--prompts-dir", str(prompts_dir)), 1, "no version 7"
    )


def test_prompts_promote_split_history(prompts_dir: Path) -> None:
    promoted = kgrag("prompts", "promote", "answer", "2", "--label", "production", "--actor", "carol",
                     "--reason", "shorter", "--prompts-dir", str(prompts_dir))  # fmt: skip
    assert promoted.returncode == 0, promoted.stderr
    assert "answer production: 1 -> 2 by carol" in promoted.stdout
    assert FilePromptRegistry(prompts_dir).resolve("answer").version == 2
    split = kgrag("prompts", "split", "answer", "--label", "canary", "--share", "1=90", "--share", "2=10",
                  "--actor", "carol", "--prompts-dir", str(prompts_dir))  # fmt: skip
    assert split.returncode == 0 and "split v1 90%, v2 10%" in split.stdout
    history = kgrag("prompts", "history", "answer", "--prompts-dir", str(prompts_dir))
    assert history.returncode == 0 and history.stdout.count("carol") == 2
    log = [json.loads(line) for line in (prompts_dir.parent / "labels.log.jsonl").read_text().splitlines()]
    assert [(e["label"], e["from"], e["to"]) for e in log] == [
        ("production", "1", "2"),
        ("canary", None, "split v1 90%, v2 10%"),
    ]
    bad = kgrag("prompts", "split", "answer", "--label", "x", "--share", "1:90", "--prompts-dir", str(prompts_dir))
    assert_clear_error(bad, 2, "is not VERSION=PERCENT")
    assert_clear_error(
        kgrag("prompts", "promote", "answer", "5", "--label", "production", "--prompts-dir", str(prompts_dir)),
        1,
        "has no version 5",
    )


def test_rollback_check_without_an_audit_store_is_a_clear_error(tmp_path: Path) -> None:
    assert_clear_error(kgrag("prompts", "rollback-check", "answer", "--store", str(tmp_path)), 2, "no audit store")


def test_prompts_test_with_an_unknown_version_fails_before_any_work(tmp_path: Path) -> None:
    assert_clear_error(kgrag("prompts", "test", "answer", "9", "--store", str(tmp_path)), 1, "has no version 9")
