"""The Python way to declare a workflow: add typed steps, then build() checks them and compiles the graph."""

from __future__ import annotations

import graphlib
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import WorkflowBuildError
from pipelines.workflow.engine import CompiledWorkflow
from pipelines.workflow.model import INPUTS, Condition, RetryPolicy, StepSpec
from pipelines.workflow.signatures import Signature, callable_of, compatible, signature_of


class Workflow:
    """A workflow declaration: named, versioned, with typed inputs and steps. Call :meth:`build` to validate it."""

    def __init__(self, name: str, version: str, inputs: Mapping[str, Any]) -> None:
        self.name = name
        self.version = version
        self.inputs = dict(inputs)
        self._steps: dict[str, StepSpec] = {}

    def step(
        self,
        name: str,
        component: Any,
        *,
        bind: Mapping[str, str | Sequence[str]] | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float | None = None,
        fallback: Any | None = None,
        when: Condition | None = None,
    ) -> Workflow:
        """Declare a step. Unbound parameters default to the workflow input of the same name.

        A binding is one source or a list of alternatives (the first whose step ran is used); ``when`` makes the
        step run only if the condition on an upstream output holds (otherwise it is recorded as skipped).
        """
        if name in self._steps or name == INPUTS:
            raise WorkflowBuildError(f"step name {name!r} is used twice or reserved")
        bindings: dict[str, tuple[str, ...]] = {}
        for param, source in (bind or {}).items():
            alternatives = (source,) if isinstance(source, str) else tuple(source)
            if not alternatives:
                raise WorkflowBuildError(f"step {name!r}: parameter {param!r} is bound to an empty list")
            bindings[param] = alternatives
        self._steps[name] = StepSpec(
            name=name,
            func=callable_of(component),
            bindings=bindings,
            retry=retry or RetryPolicy(),
            timeout_s=timeout_s,
            fallback=callable_of(fallback) if fallback is not None else None,
            when=when,
        )
        return self

    def build(self) -> CompiledWorkflow:
        """Validate bindings, types and acyclicity; return a runnable workflow or raise WorkflowBuildError."""
        signatures = {name: signature_of(name, spec.func) for name, spec in self._steps.items()}
        resolved: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {}
        graph: dict[str, set[str]] = {}
        for name, spec in self._steps.items():
            sig = signatures[name]
            unknown = set(spec.bindings) - set(sig.params)
            if unknown:
                raise WorkflowBuildError(f"step {name!r} binds unknown parameter(s): {', '.join(sorted(unknown))}")
            resolved[name] = {}
            graph[name] = set()
            for param, expected in sig.params.items():
                default = (f"{INPUTS}.{param}",) if param in self.inputs else ()
                sources = spec.bindings.get(param, default)
                if not sources:
                    raise WorkflowBuildError(
                        f"step {name!r}: parameter {param!r} is unbound",
                        hint=f"bind it to a workflow input or to '<step>.<field>' (inputs: {sorted(self.inputs)})",
                    )
                pairs = []
                for source in sources:
                    origin, attr = self._check_source(name, param, expected, source, signatures)
                    if origin != INPUTS:
                        graph[name].add(origin)
                    pairs.append((origin, attr))
                resolved[name][param] = tuple(pairs)
            if spec.when is not None:
                origin, _, attr = spec.when.ref.partition(".")
                if origin not in signatures or origin == name:
                    raise WorkflowBuildError(
                        f"step {name!r}: condition {spec.when.ref!r} names unknown step {origin!r}"
                    )
                fields = signatures[origin].output.model_fields
                if attr.split(".")[0] not in fields:
                    raise WorkflowBuildError(
                        f"step {name!r}: condition {spec.when.ref!r}: step {origin!r} has no output field "
                        f"{attr.split('.')[0]!r} (fields: {sorted(fields)})"
                    )
                if spec.when.op in ("in", "not_in") and not isinstance(spec.when.value, list | tuple | set):
                    raise WorkflowBuildError(f"step {name!r}: condition op {spec.when.op!r} needs a list value")
                graph[name].add(origin)
            if spec.fallback is not None:
                fb = signature_of(f"{name} (fallback)", spec.fallback)
                if fb.params.keys() - sig.params.keys() or not issubclass(fb.output, sig.output):
                    raise WorkflowBuildError(
                        f"step {name!r}: its fallback must take a subset of its inputs and return {sig.output.__name__}"
                    )
        try:
            order = tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError as exc:
            cycle = " -> ".join(exc.args[1])
            raise WorkflowBuildError(f"workflow {self.name!r} has a cycle: {cycle}") from exc
        return CompiledWorkflow(
            self.name, self.version, dict(self.inputs), dict(self._steps), signatures, resolved, graph, order
        )

    def _check_source(
        self, name: str, param: str, expected: Any, source: str, signatures: Mapping[str, Signature]
    ) -> tuple[str, str]:
        origin, _, attr = source.partition(".")
        if origin == INPUTS:
            if attr not in self.inputs:
                raise WorkflowBuildError(f"step {name!r}: {source!r} is not a workflow input")
            provided = self.inputs[attr]
        else:
            if origin not in signatures:
                raise WorkflowBuildError(f"step {name!r}: binding {source!r} names unknown step {origin!r}")
            fields = signatures[origin].output.model_fields
            if attr not in fields:
                raise WorkflowBuildError(
                    f"step {name!r}: step {origin!r} has no output field {attr!r} (fields: {sorted(fields)})"
                )
            provided = fields[attr].annotation
        if not compatible(provided, expected):
            raise WorkflowBuildError(
                f"step {name!r}: parameter {param!r} expects {expected!r} but {source!r} provides {provided!r}"
            )
        return origin, attr
