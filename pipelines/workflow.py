"""The workflow engine: a declared DAG of typed steps, validated when built, run with retries, timeouts,
fallbacks and a per-step trace.

A step is a function, or an object with a ``run`` method, whose parameters are type-annotated and whose return
annotation is a pydantic model. Each parameter is bound either to a workflow input (``"inputs.question"``) or to a
field of an upstream step's output (``"retrieve.passages"``), or to a list of such sources, the first one whose step
ran being used (``["gate_strict.record", "gate.record"]``). A step may carry a branch condition (:class:`Condition`,
``when=``) on an upstream output; a step whose condition is not met, or whose inputs all come from skipped steps, is
skipped and recorded as ``skipped``. :meth:`Workflow.build` checks every binding, condition, type and the absence of
cycles, so a broken declaration fails at start-up, not mid-request.
"""

from __future__ import annotations

import asyncio
import graphlib
import hashlib
import inspect
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_fixed

from core.errors import InputError, KgragError, WorkflowBuildError, WorkflowStepError
from core.types import StepStatus, TraceEntry

INPUTS = "inputs"


class RetryPolicy(BaseModel):
    """How often a step is tried, and how long to wait between tries. Input errors are never retried."""

    model_config = ConfigDict(frozen=True)

    attempts: int = Field(default=1, ge=1)
    wait_s: float = Field(default=0.0, ge=0)


ConditionOp = Literal["empty", "not_empty", "eq", "ne", "in", "not_in", "true", "false"]


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


@dataclass(frozen=True)
class _Signature:
    params: dict[str, Any]
    output: type[BaseModel]
    is_async: bool


def _callable_of(component: Any) -> Callable[..., Any]:
    if inspect.isfunction(component) or inspect.ismethod(component):
        return component  # type: ignore[no-any-return]
    run = getattr(component, "run", None)
    if callable(run):
        return run  # type: ignore[no-any-return]
    raise WorkflowBuildError(f"step component {component!r} is neither a function nor an object with run()")


def _signature(step: str, func: Callable[..., Any]) -> _Signature:
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
    return _Signature(params=params, output=output, is_async=inspect.iscoroutinefunction(func))


def _compatible(provided: Any, expected: Any) -> bool:
    if provided == expected or expected is Any:
        return True
    if inspect.isclass(provided) and inspect.isclass(expected):
        return issubclass(provided, expected)
    return False


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
            func=_callable_of(component),
            bindings=bindings,
            retry=retry or RetryPolicy(),
            timeout_s=timeout_s,
            fallback=_callable_of(fallback) if fallback is not None else None,
            when=when,
        )
        return self

    def build(self) -> CompiledWorkflow:
        """Validate bindings, types and acyclicity; return a runnable workflow or raise WorkflowBuildError."""
        signatures = {name: _signature(name, spec.func) for name, spec in self._steps.items()}
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
                fb = _signature(f"{name} (fallback)", spec.fallback)
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
        self, name: str, param: str, expected: Any, source: str, signatures: Mapping[str, _Signature]
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
        if not _compatible(provided, expected):
            raise WorkflowBuildError(
                f"step {name!r}: parameter {param!r} expects {expected!r} but {source!r} provides {provided!r}"
            )
        return origin, attr


@dataclass
class WorkflowRun:
    """The outcome of one run: each step's output and the trace of every step."""

    workflow: str
    version: str
    outputs: dict[str, BaseModel] = field(default_factory=dict)
    trace: list[TraceEntry] = field(default_factory=list)
    skipped: set[str] = field(default_factory=set)

    def output(self, step: str, kind: type[BaseModel]) -> Any:
        value = self.outputs[step]
        assert isinstance(value, kind)
        return value

    def maybe(self, step: str, kind: type[BaseModel]) -> Any:
        """The step's output, or None if it was skipped (or never declared)."""
        return self.output(step, kind) if step in self.outputs else None


def content_id(value: Any) -> str:
    """A short, stable id of a value's content: the first 16 hex digits of the sha256 of its JSON."""
    try:
        raw = pydantic_core.to_json(value, fallback=repr)
    except Exception:  # pragma: no cover - to_json with a fallback handles any object
        raw = repr(value).encode("utf-8")
    return hashlib.sha256(raw).hexdigest()[:16]


def _retryable(exc: BaseException) -> bool:
    return not isinstance(exc, InputError)


class CompiledWorkflow:
    """A validated workflow, ready to run any number of times (it holds no per-run state)."""

    def __init__(
        self,
        name: str,
        version: str,
        inputs: dict[str, Any],
        steps: dict[str, StepSpec],
        signatures: dict[str, _Signature],
        bindings: dict[str, dict[str, tuple[tuple[str, str], ...]]],
        graph: dict[str, set[str]],
        order: tuple[str, ...],
    ) -> None:
        self.name = name
        self.version = version
        self.inputs = inputs
        self.steps = steps
        self._signatures = signatures
        self._bindings = bindings
        self.graph = graph
        self.order = order

    def edges(self) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs, for display."""
        return sorted((src, dst) for dst, srcs in self.graph.items() for src in srcs)

    def _skip_reason(self, step: str, run: WorkflowRun) -> str | None:
        for param, sources in self._bindings[step].items():
            if not any(origin == INPUTS or origin in run.outputs for origin, _ in sources):
                names = ", ".join(sorted({o for o, _ in sources}))
                return f"input {param!r} unavailable: upstream step(s) {names} skipped"
        when = self.steps[step].when
        if when is not None:
            if when.step in run.skipped:
                return f"condition {when.describe()} not evaluated: step {when.step!r} skipped"
            if not when.test(run.outputs):
                return f"condition not met: {when.describe()}"
        return None

    def run(self, inputs: Mapping[str, Any]) -> WorkflowRun:
        """Run synchronously (from code that has no event loop)."""
        return asyncio.run(self.arun(inputs))

    async def arun(self, inputs: Mapping[str, Any]) -> WorkflowRun:
        """Run the steps, independent ones concurrently; raise on the first step that fails for good."""
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise InputError(f"workflow {self.name!r} is missing input(s): {', '.join(sorted(missing))}")
        run = WorkflowRun(self.name, self.version)
        sorter = graphlib.TopologicalSorter(self.graph)
        sorter.prepare()
        pending: dict[asyncio.Task[BaseModel], str] = {}
        try:
            while sorter.is_active():
                for name in sorter.get_ready():
                    reason = self._skip_reason(name, run)
                    if reason is not None:
                        run.skipped.add(name)
                        now = datetime.now(UTC).isoformat()
                        run.trace.append(
                            TraceEntry(
                                step=name, started_at=now, duration_ms=0.0, status="skipped", attempts=0, reason=reason
                            )
                        )
                        sorter.done(name)
                        continue
                    kwargs = self._kwargs(name, inputs, run.outputs)
                    pending[asyncio.create_task(self._run_step(name, kwargs, run))] = name
                if not pending:
                    continue
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    name = pending.pop(task)
                    run.outputs[name] = task.result()
                    sorter.done(name)
        finally:
            for task in pending:
                task.cancel()
        return run

    def _kwargs(self, step: str, inputs: Mapping[str, Any], outputs: dict[str, BaseModel]) -> dict[str, Any]:
        kwargs = {}
        for param, sources in self._bindings[step].items():
            origin, attr = next((o, a) for o, a in sources if o == INPUTS or o in outputs)
            kwargs[param] = inputs[attr] if origin == INPUTS else getattr(outputs[origin], attr)
        return kwargs

    async def _call(
        self, func: Callable[..., Any], is_async: bool, kwargs: dict[str, Any], timeout_s: float | None
    ) -> Any:
        coro = func(**kwargs) if is_async else asyncio.to_thread(func, **kwargs)
        return await asyncio.wait_for(coro, timeout=timeout_s)

    async def _run_step(self, name: str, kwargs: dict[str, Any], run: WorkflowRun) -> BaseModel:
        spec = self.steps[name]
        sig = self._signatures[name]
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        attempts = 0
        input_ids = {param: content_id(value) for param, value in kwargs.items()}

        def record(status: StepStatus, error: str | None = None, step: str = name, output: Any = None) -> None:
            run.trace.append(
                TraceEntry(
                    step=step,
                    started_at=started.isoformat(),
                    duration_ms=round((time.perf_counter() - t0) * 1000, 3),
                    status=status,
                    attempts=attempts,
                    error=error,
                    input_ids=input_ids if step == name else {k: input_ids[k] for k in fb_kwargs},
                    output_id=content_id(output) if output is not None else None,
                )
            )

        fb_kwargs: dict[str, Any] = {}

        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(spec.retry.attempts),
                wait=wait_fixed(spec.retry.wait_s),
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    result = await self._call(spec.func, sig.is_async, kwargs, spec.timeout_s)
        except Exception as exc:
            status: StepStatus = "timeout" if isinstance(exc, TimeoutError) else "failed"
            detail = f"timed out after {spec.timeout_s}s" if status == "timeout" else f"{type(exc).__name__}: {exc}"
            if spec.fallback is not None and not isinstance(exc, InputError):
                record(status, detail)
                fb_sig = _signature(name, spec.fallback)
                fb_kwargs = {k: v for k, v in kwargs.items() if k in fb_sig.params}
                t0 = time.perf_counter()
                attempts = 1
                result = await self._call(spec.fallback, fb_sig.is_async, fb_kwargs, spec.timeout_s)
                checked = self._checked(name, sig.output, result)
                record("ok", step=f"{name}.fallback", output=checked)
                return checked
            record(status, detail)
            if isinstance(exc, KgragError):
                raise
            raise WorkflowStepError(f"step {name!r} of workflow {self.name!r} failed: {detail}", step=name) from exc
        checked = self._checked(name, sig.output, result)
        record("ok", output=checked)
        return checked

    @staticmethod
    def _checked(name: str, output: type[BaseModel], result: Any) -> BaseModel:
        if not isinstance(result, output):
            raise WorkflowStepError(
                f"step {name!r} returned {type(result).__name__}, expected {output.__name__}", step=name
            )
        return result
