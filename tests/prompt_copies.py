"""A copy of the packaged prompts for tests that add and promote versions of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from prompts.registry import FilePromptRegistry, default_templates_dir


def copy_packaged_prompts(templates: Path, labels: Path) -> None:
    """Copy the packaged templates to ``templates`` and write ``labels`` with every label pointing at version 1: a
    registry as it was before any promotion, whatever the packaged ``labels.yaml`` says today (tests that write
    their own ``answer.v2.yaml`` and promote it start from there). No label log is copied."""
    shutil.copytree(default_templates_dir(), templates)
    packaged = yaml.safe_load((default_templates_dir().parent / "labels.yaml").read_text(encoding="utf-8"))
    first = {prompt: dict.fromkeys(targets, 1) for prompt, targets in packaged.items()}
    labels.write_text(yaml.safe_dump(first, sort_keys=True), encoding="utf-8")


def registry_with_answer_v2(root: Path) -> FilePromptRegistry:
    """:func:`copy_packaged_prompts` under ``root`` with ``answer.v2.yaml`` a copy of v1 (production still at v1)."""
    templates = root / "templates"
    copy_packaged_prompts(templates, root / "labels.yaml")
    v1 = (templates / "answer.v1.yaml").read_text(encoding="utf-8")
    (templates / "answer.v2.yaml").write_text(v1.replace("version: 1", "version: 2"), encoding="utf-8")
    return FilePromptRegistry(templates)


def answer_prompts_at(root: Path, version: int) -> Path:
    """The packaged templates copied under ``root`` with the packaged labels, except ``answer`` and
    ``answer_strict`` production at ``version``: for tests of one answer prompt's view (v2 shows whole passages and
    writes free text with [n] markers; v3 shows numbered sentences and replies with a JSON object) that must not
    change when another version is promoted. Returns the templates directory (``KGRAG_PROMPTS__DIRECTORY``)."""
    templates = root / "templates"
    shutil.copytree(default_templates_dir(), templates)
    labels = yaml.safe_load((default_templates_dir().parent / "labels.yaml").read_text(encoding="utf-8"))
    labels["answer"] = {"production": version}
    labels["answer_strict"] = {"production": version}
    (root / "labels.yaml").write_text(yaml.safe_dump(labels, sort_keys=True), encoding="utf-8")
    return templates
