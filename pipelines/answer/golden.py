"""Golden cases of a prompt run through the real answer workflow, and the answer outcomes automatic rollback reads.

Golden cases live beside the templates in ``<name>.golden.yaml``. :func:`run_golden` pins the prompt to one version
(in a private copy of the prompts folder, so production labels are untouched), answers every case through the same
factory the API uses, writes the records to a private audit file (so tests never count as production traffic), and
reports each case's gate decision and scores.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from statistics import mean

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import PromptError
from core.settings import Settings
from core.types import GateDecision
from pipelines.answer.service import AnswerService
from pipelines.store.base import AuditStore
from pipelines.store.sql_audit import SqliteAuditStore
from prompts.registry import FilePromptRegistry, default_templates_dir

GOLDEN_LABEL = "golden-test"

#: Builds the answer service for (pinned settings, the audit store to record into).
AnswerServiceBuilder = Callable[[Settings, AuditStore], AnswerService]


class Expectation(BaseModel):
    """What a good answer to a golden case looks like."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    decision: GateDecision = "released"
    contains: list[str] = Field(default_factory=list, description="Substrings the answer must hold (any case).")


class GoldenCase(BaseModel):
    """One question with its expectation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    question: str = Field(min_length=1)
    expect: Expectation = Field(default_factory=Expectation)


class GoldenFile(BaseModel):
    """``<name>.golden.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str
    cases: list[GoldenCase] = Field(min_length=1)


class CaseResult(BaseModel):
    """How one case went."""

    question: str
    prompt_version: int = Field(description="The prompt version the answer's provenance names.")
    decision: GateDecision
    expected: GateDecision
    answer: str
    faithfulness: float | None
    answer_relevancy: float | None
    passed: bool
    missing: list[str]


class GoldenReport(BaseModel):
    """All cases of one prompt version."""

    prompt: str
    version: int
    results: list[CaseResult]

    @property
    def pass_rate(self) -> float:
        return sum(r.passed for r in self.results) / len(self.results)

    @property
    def release_rate(self) -> float:
        return sum(r.decision == "released" for r in self.results) / len(self.results)

    def mean_score(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.results if getattr(r, name) is not None]
        return round(mean(values), 4) if values else None


def load_golden(directory: Path, prompt: str) -> GoldenFile:
    """The golden cases stored beside the templates of ``prompt``; a missing or bad file raises PromptError."""
    path = directory / f"{prompt}.golden.yaml"
    if not path.is_file():
        raise PromptError(f"prompt {prompt!r} has no golden cases", hint=f"add {path} with a list of cases")
    try:
        golden = GoldenFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise PromptError(f"golden file {path} is not valid UTF-8 YAML: {exc}") from exc
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PromptError(f"golden file {path} is invalid: {where}") from exc
    if golden.prompt != prompt:
        raise PromptError(f"golden file {path} declares prompt {golden.prompt!r}, not {prompt!r}")
    return golden


def pinned_prompts(source: Path, into: Path, prompt: str, version: int, base_label: str) -> Path:
    """Copy the prompts folder into ``into`` with a label pinning ``prompt`` to ``version`` (others: base_label)."""
    registry = FilePromptRegistry(source)
    registry.get(prompt, version)
    templates = into / "templates"
    shutil.copytree(source, templates)
    labels = {
        name: {GOLDEN_LABEL: targets[base_label]}
        for name, targets in registry.labels().items()
        if base_label in targets
    }
    labels.setdefault(prompt, {})[GOLDEN_LABEL] = version
    (into / "labels.yaml").write_text(yaml.safe_dump(labels, sort_keys=True), encoding="utf-8")
    return templates


def run_golden(
    settings: Settings,
    prompt: str,
    version: int,
    *,
    build_service: AnswerServiceBuilder,
    on_case: Callable[[CaseResult], None] | None = None,
) -> GoldenReport:
    """Answer each golden case with ``prompt`` pinned to ``version``; report decisions and gate scores.

    ``build_service`` (from the composition root) builds the answer service for the pinned settings, recording into
    the run's own audit store.
    """
    source = settings.prompts.directory or default_templates_dir()
    golden = load_golden(source, prompt)
    with tempfile.TemporaryDirectory(prefix="kgrag-golden-") as tmp:
        root = Path(tmp)
        templates = pinned_prompts(source, root, prompt, version, settings.prompts.label)
        # The pinned version alone is tested: no strict retry replaces its failed drafts with another prompt's.
        pinned = settings.model_copy(
            update={
                "prompts": settings.prompts.model_copy(
                    update={"directory": templates, "label": GOLDEN_LABEL, "strict_retry": False}
                )
            }
        )
        audit = SqliteAuditStore(root / "golden-audit.sqlite")
        try:
            service = build_service(pinned, audit)
            results = []
            for case in golden.cases:
                record = service.answer(case.question)
                gate = record.provenance.gate
                missing = [c for c in case.expect.contains if c.lower() not in record.answer.lower()]
                result = CaseResult(
                    question=case.question,
                    prompt_version=record.provenance.prompt.version,
                    decision=gate.decision,
                    expected=case.expect.decision,
                    answer=record.answer,
                    faithfulness=gate.scores.faithfulness,
                    answer_relevancy=gate.scores.answer_relevancy,
                    passed=gate.decision == case.expect.decision and not missing,
                    missing=missing,
                )
                results.append(result)
                if on_case is not None:
                    on_case(result)
        finally:
            audit.close()
    return GoldenReport(prompt=prompt, version=version, results=results)
