"""Types and protocol of the prompt registry."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from core.types import PromptRef
from prompts.guardrails import Guardrails


class PromptTemplate(BaseModel):
    """One immutable version of a prompt, loaded from ``prompts/templates/<name>.v<version>.yaml``.

    ``inputs`` declares the variables the template uses; a missing or extra one fails at load time.
    ``sha256`` is the hash of the template file's content. ``output_schema``, when set, is the JSON schema the
    model's reply must follow (sent as ``response_format``; the reply is one JSON object).
    """

    model_config = ConfigDict(frozen=True)

    name: str
    version: int
    description: str
    owner: str
    inputs: tuple[str, ...]
    system: str
    user: str
    sha256: str
    output_schema: dict[str, Any] | None = None

    def ref(self) -> PromptRef:
        return PromptRef(name=self.name, version=self.version, sha256=self.sha256)


class RenderedPrompt(BaseModel):
    """A template rendered with its inputs: chat messages plus the version they came from."""

    model_config = ConfigDict(frozen=True)

    template: PromptRef
    messages: tuple[dict[str, str], ...]
    rendered_sha256: str
    #: The template's reply schema (None: free text).
    output_schema: dict[str, Any] | None = None

    def as_messages(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.messages]


class PromptRegistry(Protocol):
    """Serves prompt versions by name and version or by label (``production``, ``staging``...)."""

    def get(self, name: str, version: int) -> PromptTemplate: ...

    def resolve(self, name: str, label: str = "production", *, request_id: str | None = None) -> PromptTemplate:
        """The version a label points to; a split label picks deterministically by ``request_id``."""
        ...

    def guardrails(self, name: str) -> Guardrails | None:
        """The guardrails attached to prompt ``name``, or None if it has none."""
        ...

    def render(self, template: PromptTemplate, **inputs: Any) -> RenderedPrompt:
        """Render with exactly the declared inputs; a missing or unexpected one raises ``PromptError``."""
        ...
