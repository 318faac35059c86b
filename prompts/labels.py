"""Prompt labels: which version a label points to (or how it splits traffic), and the append-only log of moves.

``labels.yaml`` maps prompt name -> label -> either a version (``production: 1``) or an A/B split by percentage
(``canary: {split: {1: 90, 2: 10}}``). Every change made through :class:`LabelStore` rewrites ``labels.yaml``
atomically and appends one JSON line to the log beside it (``labels.log.jsonl``): who, when, from, to, and why.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.errors import PromptError

LABELS_HEADER = (
    "# Which version of each prompt a label resolves to (or an A/B split: {split: {version: percent}}).\n"
    "# Template files are immutable once released (add <name>.v<N+1>.yaml instead of editing). Move labels with\n"
    "# `kgrag prompts promote`, which records every move in labels.log.jsonl beside this file.\n"
)


class Split(BaseModel):
    """Traffic split of one label between versions, in percent (summing to 100)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    split: dict[int, float]

    @field_validator("split")
    @classmethod
    def _shares(cls, value: dict[int, float]) -> dict[int, float]:
        if not value:
            raise ValueError("a split needs at least one version")
        if any(v < 1 for v in value) or any(p < 0 for p in value.values()):
            raise ValueError("versions must be >= 1 and shares >= 0")
        if abs(sum(value.values()) - 100.0) > 1e-6:
            raise ValueError(f"shares must sum to 100, not {sum(value.values()):g}")
        return value

    def pick(self, key: str) -> int:
        """The version for ``key``: a deterministic bucket in [0, 100) walked along the versions in order."""
        bucket = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") % 1_000_000 / 10_000
        total = 0.0
        for version in sorted(self.split):
            total += self.split[version]
            if bucket < total:
                return version
        return max(v for v, p in self.split.items() if p > 0)

    def main(self) -> int:
        """The version with the largest share (used when no request id is given)."""
        return min(self.split, key=lambda v: (-self.split[v], v))

    def describe(self) -> str:
        return ", ".join(f"v{v} {p:g}%" for v, p in sorted(self.split.items()))


Target = int | Split
EventKind = Literal["promote", "split", "rollback"]


class LabelEvent(BaseModel):
    """One label move, as appended to the log."""

    at: str
    actor: str
    prompt: str
    label: str
    kind: EventKind
    from_: str | None = Field(default=None, alias="from")
    to: str
    reason: str = ""

    model_config = ConfigDict(populate_by_name=True)


def describe(target: Target | None) -> str | None:
    """A label target as text: ``"1"`` or ``"split v1 90%, v2 10%"``."""
    if target is None:
        return None
    return str(target) if isinstance(target, int) else f"split {target.describe()}"


class _LabelsFile(BaseModel):
    model_config = ConfigDict(strict=False)

    labels: dict[str, dict[str, Target]]


class LabelStore:
    """Reads and changes ``labels.yaml``; every change is appended to ``log_path`` (JSON lines)."""

    def __init__(self, path: Path, log_path: Path | None = None) -> None:
        self.path = Path(path)
        self.log_path = Path(log_path) if log_path is not None else self.path.with_name("labels.log.jsonl")

    def read(self) -> dict[str, dict[str, Target]]:
        if not self.path.is_file():
            raise PromptError(
                f"prompt labels file {self.path} does not exist",
                hint="create it with a mapping name -> label -> version, e.g. {answer: {production: 1}}",
            )
        try:
            data = yaml.safe_load(self.path.read_text(encoding="utf-8")) or {}
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PromptError(f"prompt labels file {self.path} is not valid UTF-8 YAML: {exc}") from exc
        try:
            labels = _LabelsFile.model_validate({"labels": data}).labels
        except ValidationError as exc:
            where = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors())
            raise PromptError(
                f"prompt labels file {self.path} is invalid: {where}",
                hint="expected name -> label -> integer version, or {split: {version: percent, ...}} summing to 100",
            ) from exc
        for versions in labels.values():
            for label, target in versions.items():
                if isinstance(target, bool) or (isinstance(target, int) and target < 1):
                    raise PromptError(f"prompt labels file {self.path}: label {label!r} must point to a version >= 1")
        return labels

    def move(
        self, prompt: str, label: str, target: Target, *, actor: str, kind: EventKind = "promote", reason: str = ""
    ) -> LabelEvent:
        """Point ``label`` of ``prompt`` at ``target``, rewrite the file atomically, and log the move."""
        if not actor.strip():
            raise PromptError("a label move needs an actor", hint="pass --actor NAME (who is moving the label)")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            try:
                labels = self.read()
                previous = labels.get(prompt, {}).get(label)
                labels.setdefault(prompt, {})[label] = target
                self._write(labels)
                event = LabelEvent.model_validate(
                    {
                        "at": datetime.now(UTC).isoformat(),
                        "actor": actor,
                        "prompt": prompt,
                        "label": label,
                        "kind": kind,
                        "from": describe(previous),
                        "to": describe(target) or "",
                        "reason": reason,
                    }
                )
                log.write(event.model_dump_json(by_alias=True) + "\n")
                log.flush()
                os.fsync(log.fileno())
            finally:
                fcntl.flock(log, fcntl.LOCK_UN)
        return event

    def history(self, prompt: str | None = None, label: str | None = None) -> list[LabelEvent]:
        """Logged moves, oldest first, optionally for one prompt and label."""
        if not self.log_path.is_file():
            return []
        events = []
        for number, line in enumerate(self.log_path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = LabelEvent.model_validate_json(line)
            except ValidationError as exc:
                raise PromptError(f"label log {self.log_path} line {number} is not a label event: {exc}") from exc
            if (prompt is None or event.prompt == prompt) and (label is None or event.label == label):
                events.append(event)
        return events

    def _write(self, labels: dict[str, dict[str, Target]]) -> None:
        plain = {
            name: {
                label: t if isinstance(t, int) else {"split": dict(sorted(t.split.items()))} for label, t in v.items()
            }
            for name, v in sorted(labels.items())
        }
        text = LABELS_HEADER + yaml.safe_dump(plain, sort_keys=True, default_flow_style=False)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".labels.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, self.path)
