"""Declarative workflows: a YAML file validated by pydantic, built into the same engine as the Python builder.

A declaration names each step's *component* (a key the caller supplies objects for when building), its bindings,
retry policy, timeout, fallback component and branch condition. Shape-only uses (``kgrag workflow show`` and
``graph``) need no components at all. The packaged declarations live in ``pipelines/workflow/definitions/<name>.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import WorkflowBuildError
from pipelines.workflow.builder import Workflow
from pipelines.workflow.engine import CompiledWorkflow
from pipelines.workflow.model import INPUTS, Condition, RetryPolicy

#: The input type names a YAML declaration may use (types of workflow inputs, not components).
INPUT_TYPES: Mapping[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "list[str]": list[str],
    "any": Any,
}
_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


def default_workflows_dir() -> Path:
    """The ``pipelines/workflow/definitions`` folder shipped with the package."""
    return Path(__file__).resolve().parent / "definitions"


class StepDecl(BaseModel):
    """One declared step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    component: str = Field(min_length=1)
    description: str = ""
    bind: dict[str, str | list[str]] = Field(default_factory=dict)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout_s: float | None = Field(default=None, gt=0)
    fallback: str | None = None
    when: Condition | None = None

    def sources(self) -> list[str]:
        """Every binding source, alternatives included."""
        return [s for v in self.bind.values() for s in ([v] if isinstance(v, str) else v)]


class WorkflowSpec(BaseModel):
    """A whole workflow declaration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    version: str = Field(min_length=1)
    description: str = ""
    inputs: dict[str, str] = Field(default_factory=dict)
    steps: list[StepDecl] = Field(min_length=1)

    @classmethod
    def load(cls, path: Path) -> WorkflowSpec:
        """Read and validate a YAML declaration; any problem raises WorkflowBuildError naming the file."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise WorkflowBuildError(f"workflow file {path} does not exist") from exc
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise WorkflowBuildError(f"workflow file {path} is not valid UTF-8 YAML: {exc}") from exc
        try:
            spec = cls.model_validate(data)
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
            raise WorkflowBuildError(
                f"workflow file {path} is invalid: {where}",
                hint="required keys: name, version, steps (each with name and component)",
            ) from exc
        unknown = sorted(t for t in spec.inputs.values() if t not in INPUT_TYPES)
        if unknown:
            raise WorkflowBuildError(
                f"workflow file {path} uses unknown input type(s): {', '.join(unknown)}",
                hint=f"input types: {', '.join(INPUT_TYPES)}",
            )
        return spec

    def without(self, steps: Iterable[str], *, version_suffix: str) -> WorkflowSpec:
        """The same declaration less some steps, as a distinct version (e.g. a branch switched off by settings)."""
        drop = set(steps)
        return self.model_copy(
            update={"steps": [s for s in self.steps if s.name not in drop], "version": self.version + version_suffix}
        )

    def edges(self) -> list[tuple[str, str, str]]:
        """(upstream, downstream, label) for every data dependency ("") and branch condition (its text)."""
        edges: set[tuple[str, str, str]] = set()
        for step in self.steps:
            for source in step.sources():
                origin = source.split(".", 1)[0]
                if origin != INPUTS:
                    edges.add((origin, step.name, ""))
            if step.when is not None:
                edges.add((step.when.step, step.name, "when " + step.when.describe()))
        return sorted(edges)

    def build(self, components: Mapping[str, Any], *, timeouts: Mapping[str, float] | None = None) -> CompiledWorkflow:
        """Build with the given components (by the names the declaration uses); validation as in the builder.

        ``timeouts`` overrides declared step timeouts by step name (for limits that come from settings).
        """
        unknown_steps = sorted(set(timeouts or {}) - {s.name for s in self.steps})
        if unknown_steps:
            raise WorkflowBuildError(f"timeout override(s) for unknown step(s): {', '.join(unknown_steps)}")
        wanted = {s.component for s in self.steps} | {s.fallback for s in self.steps if s.fallback}
        missing = sorted(wanted - set(components))
        if missing:
            raise WorkflowBuildError(
                f"workflow {self.name!r} needs component(s) nobody supplied: {', '.join(missing)}",
                hint=f"supplied: {', '.join(sorted(components)) or '(none)'}",
            )
        workflow = Workflow(self.name, self.version, inputs={k: INPUT_TYPES[v] for k, v in self.inputs.items()})
        for step in self.steps:
            workflow.step(
                step.name,
                components[step.component],
                bind=step.bind,
                retry=step.retry,
                timeout_s=(timeouts or {}).get(step.name, step.timeout_s),
                fallback=components[step.fallback] if step.fallback else None,
                when=step.when,
            )
        return workflow.build()


def list_workflows(directory: Path | None = None) -> list[WorkflowSpec]:
    """Every declaration in the folder, sorted by name."""
    folder = directory or default_workflows_dir()
    return sorted((WorkflowSpec.load(p) for p in folder.glob("*.yaml")), key=lambda s: s.name)


def find_workflow(name: str, directory: Path | None = None) -> WorkflowSpec:
    """The declaration named ``name``; an unknown name raises WorkflowBuildError listing the known ones."""
    specs = list_workflows(directory)
    for spec in specs:
        if spec.name == name:
            return spec
    raise WorkflowBuildError(
        f"unknown workflow {name!r}", hint=f"known workflows: {', '.join(s.name for s in specs) or '(none)'}"
    )
