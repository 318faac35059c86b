"""The file-backed prompt registry: immutable ``<name>.v<version>.yaml`` templates plus a ``labels.yaml`` map.

Templates are read on first use (never at import time), validated as a whole, and cached. Each template file
declares the variables its Jinja2 ``system`` and ``user`` texts use; a template whose texts use a variable it
does not declare, or declares one it does not use, fails to load with :class:`~core.errors.PromptError`.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import PromptError
from core.types import sha256_text
from prompts.base import PromptTemplate, RenderedPrompt
from prompts.constants import ABSTENTION_TEXT
from prompts.guardrails import Guardrails, load_guardrails
from prompts.labels import LabelEvent, LabelStore, Split, Target

__all__ = ["ABSTENTION_TEXT", "FilePromptRegistry", "default_templates_dir"]

_FILE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_-]*)\.v(?P<version>[1-9][0-9]*)\.yaml$")
_NAME = r"^[a-z][a-z0-9_-]*$"


def default_templates_dir() -> Path:
    """The ``prompts/templates`` folder shipped with the package."""
    return Path(__file__).resolve().parent / "templates"


class _TemplateFile(BaseModel):
    """The schema of a template file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(pattern=_NAME)
    version: int = Field(ge=1)
    description: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    inputs: list[str]
    system: str
    user: str
    #: A JSON schema the reply must follow (sent as ``response_format``); the reply is then a JSON object.
    output_schema: dict[str, Any] | None = None


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "(file)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class FilePromptRegistry:
    """Prompt versions stored as YAML files in ``directory`` with labels in ``labels_path``.

    ``directory`` defaults to the packaged ``prompts/templates``; ``labels_path`` defaults to
    ``<directory>/../labels.yaml``. Nothing is read until the first call that needs the templates.
    """

    def __init__(self, directory: Path | None = None, *, labels_path: Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_templates_dir()
        self.labels_path = Path(labels_path) if labels_path is not None else self.directory.parent / "labels.yaml"
        self.label_store = LabelStore(self.labels_path)
        self._env = _environment()
        self._lock = threading.Lock()
        self._templates: dict[tuple[str, int], PromptTemplate] | None = None
        self._labels: dict[str, dict[str, Target]] | None = None
        self._compiled: dict[tuple[str, int, str], tuple[jinja2.Template, jinja2.Template]] = {}

    # ----- loading -----

    def _load(self) -> tuple[dict[tuple[str, int], PromptTemplate], dict[str, dict[str, Target]]]:
        with self._lock:
            if self._templates is None or self._labels is None:
                templates = self._load_templates()
                labels = self._load_labels()
                self._templates, self._labels = templates, labels
            return self._templates, self._labels

    def reload(self) -> None:
        """Forget what was loaded; the next call reads the directory and the labels file again."""
        with self._lock:
            self._templates = None
            self._labels = None
            self._compiled.clear()

    def _load_templates(self) -> dict[tuple[str, int], PromptTemplate]:
        if not self.directory.is_dir():
            raise PromptError(
                f"prompt template directory {self.directory} does not exist",
                hint="set KGRAG_PROMPTS__DIRECTORY to a folder of <name>.v<version>.yaml files, or leave it unset",
            )
        templates: dict[tuple[str, int], PromptTemplate] = {}
        for path in sorted(self.directory.iterdir()):
            if path.suffix not in (".yaml", ".yml") or not path.is_file() or _is_sidecar(path):
                continue
            template = self.load_file(path)
            templates[(template.name, template.version)] = template
        return templates

    def load_file(self, path: Path) -> PromptTemplate:
        """Read and validate one template file; any problem raises :class:`PromptError` naming the file."""
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise PromptError(
                f"prompt template file {path} is not named <name>.v<version>.yaml",
                hint="rename it, e.g. answer.v2.yaml (lowercase name, version >= 1)",
            )
        raw = path.read_bytes()
        try:
            data = yaml.safe_load(raw.decode("utf-8"))
        except (UnicodeDecodeError, yaml.YAMLError) as exc:
            raise PromptError(f"prompt template file {path} is not valid UTF-8 YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise PromptError(f"prompt template file {path} must hold a YAML mapping")
        try:
            spec = _TemplateFile.model_validate(data)
        except ValidationError as exc:
            raise PromptError(
                f"prompt template file {path} is invalid: {_validation_summary(exc)}",
                hint="required keys: name, version, description, owner, inputs, system, user (optional: output_schema)",
            ) from exc
        if spec.name != match["name"] or spec.version != int(match["version"]):
            raise PromptError(
                f"prompt template file {path} declares name {spec.name!r} version {spec.version}, "
                f"but its file name says {match['name']!r} version {match['version']}",
                hint="the file name must be <name>.v<version>.yaml of the name and version inside it",
            )
        if spec.output_schema is not None and spec.output_schema.get("type") != "object":
            raise PromptError(
                f"prompt template file {path}: output_schema must describe a JSON object (type: object)",
                hint="the reply is parsed as one JSON object; put the fields under `properties`",
            )
        duplicates = sorted({i for i in spec.inputs if spec.inputs.count(i) > 1})
        if duplicates:
            raise PromptError(f"prompt template file {path} declares input(s) twice: {', '.join(duplicates)}")
        used: set[str] = set()
        for part in ("system", "user"):
            source = getattr(spec, part)
            try:
                ast = self._env.parse(source)
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(
                    f"prompt template file {path}: {part} is not a valid Jinja2 template: "
                    f"{exc.message} (line {exc.lineno})"
                ) from exc
            used |= jinja2.meta.find_undeclared_variables(ast)
        used -= set(self._env.globals)
        declared = set(spec.inputs)
        undeclared = sorted(used - declared)
        unused = sorted(declared - used)
        if undeclared:
            raise PromptError(
                f"prompt template file {path} uses variable(s) not declared in inputs: {', '.join(undeclared)}",
                hint="add them to `inputs`, or remove them from the template",
            )
        if unused:
            raise PromptError(
                f"prompt template file {path} declares input(s) its template does not use: {', '.join(unused)}",
                hint="remove them from `inputs`, or use them in `system` or `user`",
            )
        return PromptTemplate(
            name=spec.name,
            version=spec.version,
            description=spec.description.strip(),
            owner=spec.owner,
            inputs=tuple(spec.inputs),
            system=spec.system,
            user=spec.user,
            output_schema=spec.output_schema,
            sha256=hashlib.sha256(raw).hexdigest(),
        )

    def _load_labels(self) -> dict[str, dict[str, Target]]:
        return self.label_store.read()

    # ----- lookup -----

    def list(self) -> builtins.list[PromptTemplate]:
        """Every template version, sorted by name then version."""
        templates, _ = self._load()
        return [templates[key] for key in sorted(templates)]

    def labels(self) -> dict[str, dict[str, int]]:
        """A copy of the label map: name -> label -> version (a split label shows its largest share's version)."""
        _, labels = self._load()
        return {
            name: {label: t if isinstance(t, int) else t.main() for label, t in versions.items()}
            for name, versions in labels.items()
        }

    def targets(self) -> dict[str, dict[str, Target]]:
        """The label map as declared: name -> label -> version or :class:`~prompts.labels.Split`."""
        _, labels = self._load()
        return {name: dict(versions) for name, versions in labels.items()}

    def promote(self, name: str, version: int, label: str, *, actor: str, reason: str = "") -> LabelEvent:
        """Point ``label`` at an existing version; the move is logged (who, when, from, to)."""
        self.get(name, version)
        event = self.label_store.move(name, label, version, actor=actor, reason=reason)
        self.reload()
        return event

    def set_split(
        self, name: str, label: str, shares: Mapping[int, float], *, actor: str, reason: str = ""
    ) -> LabelEvent:
        """Split ``label``'s traffic between existing versions by percentage (deterministic by request id)."""
        try:
            split = Split(split=dict(shares))
        except ValidationError as exc:
            raise PromptError(f"invalid split for {name!r} label {label!r}: {_validation_summary(exc)}") from exc
        for version in split.split:
            self.get(name, version)
        event = self.label_store.move(name, label, split, actor=actor, kind="split", reason=reason)
        self.reload()
        return event

    def guardrails(self, name: str) -> Guardrails | None:
        """The guardrails declared beside the templates for prompt ``name`` (``<name>.guardrails.yaml``), if any."""
        return load_guardrails(self.directory, name)

    def history(self, name: str | None = None, label: str | None = None) -> builtins.list[LabelEvent]:
        """Every logged label move, oldest first."""
        return self.label_store.history(name, label)

    def get(self, name: str, version: int) -> PromptTemplate:
        """One exact version; an unknown name or version raises :class:`PromptError` listing what exists."""
        templates, _ = self._load()
        template = templates.get((name, version))
        if template is not None:
            return template
        versions = sorted(v for (n, v) in templates if n == name)
        if not versions:
            raise PromptError(
                f"unknown prompt {name!r} in {self.directory}",
                hint=f"known prompts: {', '.join(sorted({n for n, _ in templates})) or '(none)'}",
            )
        raise PromptError(
            f"prompt {name!r} has no version {version}",
            hint=f"known versions of {name!r}: {', '.join(str(v) for v in versions)}",
        )

    def resolve(self, name: str, label: str = "production", *, request_id: str | None = None) -> PromptTemplate:
        """The version ``label`` points to for ``name``; unknown names or labels raise :class:`PromptError`.

        A split label picks a version deterministically from ``request_id`` (the same id always gets the same
        version); without one it resolves to the version with the largest share.
        """
        templates, labels = self._load()
        if name not in labels:
            known = sorted(set(labels) | {n for n, _ in templates})
            raise PromptError(
                f"unknown prompt {name!r}: it has no labels in {self.labels_path}",
                hint=f"known prompts: {', '.join(known) or '(none)'}",
            )
        if label not in labels[name]:
            raise PromptError(
                f"prompt {name!r} has no label {label!r}",
                hint=f"labels of {name!r}: {', '.join(sorted(labels[name])) or '(none)'}",
            )
        target = labels[name][label]
        if isinstance(target, Split):
            version = target.pick(f"{name}\x00{label}\x00{request_id}") if request_id is not None else target.main()
        else:
            version = target
        try:
            return self.get(name, version)
        except PromptError as exc:
            raise PromptError(
                f"label {label!r} of prompt {name!r} points to version {version}, which does not exist",
                hint=exc.hint,
            ) from exc

    # ----- rendering -----

    def _compile(self, template: PromptTemplate) -> tuple[jinja2.Template, jinja2.Template]:
        key = (template.name, template.version, template.sha256)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = (self._env.from_string(template.system), self._env.from_string(template.user))
            except jinja2.TemplateSyntaxError as exc:
                raise PromptError(
                    f"prompt {template.name!r} v{template.version} is not a valid Jinja2 template: {exc.message}"
                ) from exc
            self._compiled[key] = compiled
        return compiled

    def render(self, template: PromptTemplate, **inputs: Any) -> RenderedPrompt:
        """Render with exactly the declared inputs; a missing or unexpected one raises :class:`PromptError`."""
        declared = set(template.inputs)
        missing = sorted(declared - set(inputs))
        extra = sorted(set(inputs) - declared)
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing input(s): {', '.join(missing)}")
            if extra:
                problems.append(f"unexpected input(s): {', '.join(extra)}")
            raise PromptError(
                f"prompt {template.name!r} v{template.version} rendered with wrong inputs: {'; '.join(problems)}",
                hint=f"it takes exactly: {', '.join(template.inputs) or '(no inputs)'}",
            )
        system_t, user_t = self._compile(template)
        try:
            system = system_t.render(**inputs).strip()
            user = user_t.render(**inputs).strip()
        except jinja2.UndefinedError as exc:
            raise PromptError(
                f"prompt {template.name!r} v{template.version} could not be rendered: {exc.message}",
                hint="check the shape of the inputs (for example a passage without 'text')",
            ) from exc
        messages = ({"role": "system", "content": system}, {"role": "user", "content": user})
        return RenderedPrompt(
            template=template.ref(),
            messages=messages,
            rendered_sha256=_messages_sha256(messages),
            output_schema=template.output_schema,
        )


def _is_sidecar(path: Path) -> bool:
    """Guardrail and golden-case files that sit beside the templates (``<name>.guardrails.yaml``, ...)."""
    return path.name.endswith((".guardrails.yaml", ".golden.yaml"))


def _messages_sha256(messages: tuple[Mapping[str, str], ...]) -> str:
    """sha256 of the canonical JSON of the rendered messages (what the model was sent)."""
    return sha256_text(json.dumps([dict(m) for m in messages], ensure_ascii=False, sort_keys=True))
