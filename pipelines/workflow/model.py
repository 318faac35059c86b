"""A workflow's declared parts: steps, their retry policies and run conditions, and the name of the inputs node."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

INPUTS = "inputs"
ConditionOp = Literal["empty", "not_empty", "eq", "ne", "in", "not_in", "true", "false"]


class RetryPolicy(BaseModel):
    """How often a step is tried, and how long to wait between tries. Input errors are never retried."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=1, ge=1)
    wait_s: float = Field(default=0.0, ge=0)


class Condition(BaseModel):
    """A branch condition on an upstream output: ``ref`` is ``"<step>.<field>[.<attr>...]"``.

    ``empty``/``not_empty`` test length (or falsiness), ``eq``/``ne``/``in``/``not_in`` compare with ``value``,
    ``true``/``false`` test truthiness. A condition on a skipped step is not met.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ref: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    op: ConditionOp
    value: Any = None

    @property
    def step(self) -> str:
        return self.ref.split(".", 1)[0]

    def test(self, outputs: Mapping[str, BaseModel]) -> bool:
        """Whether the condition holds for these step outputs."""
        origin, *path = self.ref.split(".")
        if origin not in outputs:
            return False
        value: Any = outputs[origin]
        for attr in path:
            value = getattr(value, attr)
        if self.op in ("empty", "not_empty"):
            empty = len(value) == 0 if hasattr(value, "__len__") else not value
            return empty == (self.op == "empty")
        if self.op in ("true", "false"):
            return bool(value) == (self.op == "true")
        if self.op in ("eq", "ne"):
            return (value == self.value) == (self.op == "eq")
        return (value in self.value) == (self.op == "in")

    def describe(self) -> str:
        return f"{self.ref} {self.op}" + (
            "" if self.op in ("empty", "not_empty", "true", "false") else f" {self.value!r}"
        )


@dataclass(frozen=True)
class StepSpec:
    """A declared step: its callable, how its parameters are bound (alternatives in order), and how it is run."""

    name: str
    func: Callable[..., Any]
    bindings: Mapping[str, tuple[str, ...]]
    retry: RetryPolicy
    timeout_s: float | None
    fallback: Callable[..., Any] | None
    when: Condition | None = None
