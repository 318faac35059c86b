"""A step's typed signature, read from its annotations, and the type rule that bindings are checked with."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from core.errors import WorkflowBuildError


@dataclass(frozen=True)
class Signature:
    params: dict[str, Any]
    output: type[BaseModel]
    is_async: bool


def callable_of(component: Any) -> Callable[..., Any]:
    if inspect.isfunction(component) or inspect.ismethod(component):
        return component  # type: ignore[no-any-return]
    run = getattr(component, "run", None)
    if callable(run):
        return run  # type: ignore[no-any-return]
    raise WorkflowBuildError(f"step component {component!r} is neither a function nor an object with run()")


def signature_of(step: str, func: Callable[..., Any]) -> Signature:
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:  # a forward reference that cannot be resolved
        raise WorkflowBuildError(f"step {step!r}: cannot resolve type annotations: {exc}") from exc
    output = hints.pop("return", None)
    if not (inspect.isclass(output) and issubclass(output, BaseModel)):
        raise WorkflowBuildError(f"step {step!r} must return a pydantic model, not {output!r}")
    params: dict[str, Any] = {}
    for name, param in inspect.signature(func).parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise WorkflowBuildError(f"step {step!r}: *args/**kwargs parameters cannot be bound")
        if name not in hints:
            raise WorkflowBuildError(f"step {step!r}: parameter {name!r} has no type annotation")
        params[name] = hints[name]
    return Signature(params=params, output=output, is_async=inspect.iscoroutinefunction(func))


def compatible(provided: Any, expected: Any) -> bool:
    if provided == expected or expected is Any:
        return True
    if inspect.isclass(provided) and inspect.isclass(expected):
        return issubclass(provided, expected)
    return False
