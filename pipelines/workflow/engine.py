"""The workflow engine: a declared DAG of typed steps, validated when built, run with retries, timeouts,
fallbacks and a per-step trace.

A step is a function, or an object with a ``run`` method, whose parameters are type-annotated and whose return
annotation is a pydantic model. Each parameter is bound either to a workflow input (``"inputs.question"``) or to a
field of an upstream step's output (``"retrieve.passages"``), or to a list of such sources, the first one whose step
ran being used (``["gate_strict.record", "gate.record"]``). A step may carry a branch condition (:class:`Condition`,
``when=``) on an upstream output; a step whose condition is not met, or whose inputs all come from skipped steps, is
skipped and recorded as ``skipped``. :meth:`Workflow.build` checks every binding, condition, type and the absence of
cycles, so a broken declaration fails at start-up, not mid-request.

Run with a ``tracer``, a run is a span ``workflow <name>`` with a child span ``step <name>`` per step (status,
attempts, error; a skipped step is an instant span with its ``kgrag.step.skip_reason``); what a step calls (a
model, a retriever) nests inside its span, the step's thread carrying the span's context.
"""

from __future__ import annotations

import asyncio
import graphlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pydantic_core
from pydantic import BaseModel
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_fixed

from core.deadline import Deadline
from core.errors import InputError, KgragError, ModelCircuitOpenError, RequestCancelledError, WorkflowStepError
from core.spans import instant, span
from core.types import StepStatus, TraceEntry
from pipelines.workflow.model import INPUTS, StepSpec
from pipelines.workflow.signatures import Signature, signature_of

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer


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


def _retryable(exc: BaseException, deadline: Deadline | None) -> bool:
    if deadline is not None and deadline.expired:
        return False
    return not isinstance(exc, (InputError, RequestCancelledError, ModelCircuitOpenError))


def _bounded(timeout_s: float | None, deadline: Deadline | None) -> float | None:
    """A step's timeout, cut to what is left of the request's deadline."""
    if deadline is None:
        return timeout_s
    left = deadline.remaining()
    return left if timeout_s is None else min(timeout_s, left)


class CompiledWorkflow:
    """A validated workflow, ready to run any number of times (it holds no per-run state)."""

    def __init__(
        self,
        name: str,
        version: str,
        inputs: dict[str, Any],
        steps: dict[str, StepSpec],
        signatures: dict[str, Signature],
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

    def run(
        self, inputs: Mapping[str, Any], *, deadline: Deadline | None = None, tracer: Tracer | None = None
    ) -> WorkflowRun:
        """Run synchronously (from code that has no event loop)."""
        return asyncio.run(self.arun(inputs, deadline=deadline, tracer=tracer))

    async def arun(
        self, inputs: Mapping[str, Any], *, deadline: Deadline | None = None, tracer: Tracer | None = None
    ) -> WorkflowRun:
        """Run the steps, independent ones concurrently; raise on the first step that fails for good.

        With a ``deadline``: no step starts once it has expired or was cancelled (:class:`RequestCancelledError`),
        each step's timeout is cut to the time left, and a step that failed is not retried past it. The deadline
        is bound (:meth:`Deadline.bound`) while the steps run, so a model call in flight in a step is aborted when
        it passes or is cancelled. With a ``tracer``: the run and each step are spans.
        """
        if deadline is None:
            return await self._traced_run(inputs, None, tracer)
        with deadline.bound():
            return await self._traced_run(inputs, deadline, tracer)

    async def _traced_run(
        self, inputs: Mapping[str, Any], deadline: Deadline | None, tracer: Tracer | None
    ) -> WorkflowRun:
        missing = set(self.inputs) - set(inputs)
        if missing:
            raise InputError(f"workflow {self.name!r} is missing input(s): {', '.join(sorted(missing))}")
        attributes = {"kgrag.workflow.name": self.name, "kgrag.workflow.version": self.version}
        with span(tracer, f"workflow {self.name}", attributes):
            return await self._arun(inputs, deadline, tracer)

    async def _arun(self, inputs: Mapping[str, Any], deadline: Deadline | None, tracer: Tracer | None) -> WorkflowRun:
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
                        instant(
                            tracer,
                            f"step {name}",
                            {"kgrag.step.name": name, "kgrag.step.status": "skipped", "kgrag.step.skip_reason": reason},
                        )
                        sorter.done(name)
                        continue
                    if deadline is not None:
                        deadline.check()
                    kwargs = self._kwargs(name, inputs, run.outputs)
                    pending[asyncio.create_task(self._traced_step(name, kwargs, run, deadline, tracer))] = name
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

    async def _traced_step(
        self, name: str, kwargs: dict[str, Any], run: WorkflowRun, deadline: Deadline | None, tracer: Tracer | None
    ) -> BaseModel:
        """The step in a span (when traced) that ends with the step's status, attempts and error from its trace."""
        with span(tracer, f"step {name}", {"kgrag.step.name": name}) as opened:
            try:
                return await self._run_step(name, kwargs, run, deadline)
            finally:
                if opened.is_recording():
                    for entry in run.trace:
                        if entry.step == name:
                            opened.set_attributes(
                                {"kgrag.step.status": entry.status, "kgrag.step.attempts": entry.attempts}
                            )
                            if entry.error:
                                opened.set_attribute("kgrag.step.error", entry.error)
                        elif entry.step == f"{name}.fallback":
                            opened.add_event("fallback", {"kgrag.step.status": entry.status})

    async def _run_step(
        self, name: str, kwargs: dict[str, Any], run: WorkflowRun, deadline: Deadline | None = None
    ) -> BaseModel:
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
                retry=retry_if_exception(lambda exc: _retryable(exc, deadline)),
                reraise=True,
            ):
                with attempt:
                    attempts += 1
                    if deadline is not None:
                        deadline.check()
                    result = await self._call(spec.func, sig.is_async, kwargs, _bounded(spec.timeout_s, deadline))
        except Exception as exc:
            if deadline is not None and deadline.expired:
                record("cancelled" if deadline.cancelled else "timeout", deadline.reason)
                deadline.check()
            status: StepStatus = "timeout" if isinstance(exc, TimeoutError) else "failed"
            detail = f"timed out after {spec.timeout_s}s" if status == "timeout" else f"{type(exc).__name__}: {exc}"
            if spec.fallback is not None and not isinstance(exc, InputError):
                record(status, detail)
                fb_sig = signature_of(name, spec.fallback)
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
