"""The workflow engine with real steps: validation at build time, retries, timeouts, fallbacks, concurrency, trace."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from core.errors import InputError, WorkflowBuildError, WorkflowStepError
from pipelines.workflow.builder import Workflow
from pipelines.workflow.model import Condition, RetryPolicy
from tests.spans import children, memory_tracing, one


class Words(BaseModel):
    words: list[str]


class Count(BaseModel):
    n: int


class Text(BaseModel):
    text: str


def split(text: str) -> Words:
    return Words(words=text.split())


def count(words: list[str]) -> Count:
    return Count(n=len(words))


def shout(text: str) -> Text:
    return Text(text=text.upper())


def test_linear_workflow_runs_and_traces_every_step() -> None:
    wf = (
        Workflow("wc", "1", inputs={"text": str})
        .step("split", split)
        .step("count", count, bind={"words": "split.words"})
        .build()
    )
    run = wf.run({"text": "a b c"})
    assert run.output("count", Count).n == 3
    assert [t.step for t in run.trace] == ["split", "count"]
    assert all(t.status == "ok" and t.attempts == 1 and t.duration_ms >= 0 for t in run.trace)
    assert wf.edges() == [("split", "count")]


def test_unknown_step_in_binding_fails_at_build() -> None:
    wf = Workflow("wc", "1", inputs={"text": str}).step("count", count, bind={"words": "splitter.words"})
    with pytest.raises(WorkflowBuildError, match="unknown step 'splitter'"):
        wf.build()


def test_unbound_input_fails_at_build() -> None:
    wf = Workflow("wc", "1", inputs={"text": str}).step("count", count)
    with pytest.raises(WorkflowBuildError, match="parameter 'words' is unbound"):
        wf.build()


def test_unknown_output_field_fails_at_build() -> None:
    wf = Workflow("wc", "1", inputs={"text": str}).step("split", split).step("count", count, bind={"words": "split.w"})
    with pytest.raises(WorkflowBuildError, match="no output field 'w'"):
        wf.build()


def test_type_mismatch_fails_at_build() -> None:
    wf = Workflow("wc", "1", inputs={"text": str}).step("count", count, bind={"words": "inputs.text"})
    with pytest.raises(WorkflowBuildError, match="expects list\\[str\\]"):
        wf.build()


def test_cycle_fails_at_build() -> None:
    def a(text: str) -> Text:
        return Text(text=text)

    wf = Workflow("loop", "1", inputs={}).step("a", a, bind={"text": "b.text"}).step("b", a, bind={"text": "a.text"})
    with pytest.raises(WorkflowBuildError, match="cycle"):
        wf.build()


def test_step_must_return_a_pydantic_model() -> None:
    def bad(text: str) -> str:
        return text

    with pytest.raises(WorkflowBuildError, match="must return a pydantic model"):
        Workflow("w", "1", inputs={"text": str}).step("bad", bad).build()


class Flaky:
    """Fails a set number of times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def run(self, text: str) -> Text:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError(f"transient failure {self.calls}")
        return Text(text=text)


def test_step_that_fails_twice_then_succeeds_is_retried() -> None:
    flaky = Flaky(failures=2)
    wf = Workflow("w", "1", inputs={"text": str}).step("flaky", flaky, retry=RetryPolicy(attempts=3)).build()
    run = wf.run({"text": "ok"})
    assert run.output("flaky", Text).text == "ok"
    assert flaky.calls == 3
    assert run.trace[0].attempts == 3 and run.trace[0].status == "ok"


def test_step_failing_after_retries_fails_the_run_naming_the_step() -> None:
    flaky = Flaky(failures=5)
    wf = Workflow("w", "1", inputs={"text": str}).step("flaky", flaky, retry=RetryPolicy(attempts=2)).build()
    with pytest.raises(WorkflowStepError, match="step 'flaky'") as info:
        wf.run({"text": "x"})
    assert info.value.step == "flaky"
    assert flaky.calls == 2


def test_input_errors_are_not_retried() -> None:
    calls = []

    def strict(text: str) -> Text:
        calls.append(text)
        raise InputError("bad text")

    wf = Workflow("w", "1", inputs={"text": str}).step("strict", strict, retry=RetryPolicy(attempts=3)).build()
    with pytest.raises(InputError):
        wf.run({"text": "x"})
    assert len(calls) == 1


def test_timeout_fires_and_fallback_runs() -> None:
    async def slow(text: str) -> Text:
        await asyncio.sleep(5)
        return Text(text="slow")

    def quick(text: str) -> Text:
        return Text(text="fallback:" + text)

    wf = Workflow("w", "1", inputs={"text": str}).step("slow", slow, timeout_s=0.2, fallback=quick).build()
    t0 = time.perf_counter()
    run = wf.run({"text": "x"})
    assert time.perf_counter() - t0 < 3
    assert run.output("slow", Text).text == "fallback:x"
    assert [(t.step, t.status) for t in run.trace] == [("slow", "timeout"), ("slow.fallback", "ok")]


def test_timeout_without_fallback_fails() -> None:
    async def slow(text: str) -> Text:
        await asyncio.sleep(5)
        return Text(text="slow")

    wf = Workflow("w", "1", inputs={"text": str}).step("slow", slow, timeout_s=0.2).build()
    with pytest.raises(WorkflowStepError, match="timed out"):
        wf.run({"text": "x"})


def test_independent_steps_run_concurrently() -> None:
    async def wait_a(text: str) -> Text:
        await asyncio.sleep(0.5)
        return Text(text="a")

    async def wait_b(text: str) -> Count:
        await asyncio.sleep(0.5)
        return Count(n=1)

    def join(a: str, b: int) -> Text:
        return Text(text=f"{a}{b}")

    wf = (
        Workflow("w", "1", inputs={"text": str})
        .step("a", wait_a)
        .step("b", wait_b)
        .step("join", join, bind={"a": "a.text", "b": "b.n"})
        .build()
    )
    t0 = time.perf_counter()
    run = wf.run({"text": "x"})
    elapsed = time.perf_counter() - t0
    assert run.output("join", Text).text == "a1"
    assert elapsed < 0.9, f"a and b should overlap, took {elapsed:.2f}s"


def test_missing_workflow_input_is_an_input_error() -> None:
    wf = Workflow("w", "1", inputs={"text": str}).step("shout", shout).build()
    with pytest.raises(InputError, match="missing input"):
        wf.run({})


# ----- spans (a tracer given to the run) -----


def test_a_traced_run_is_a_span_with_a_child_per_step_skipped_ones_with_their_reason() -> None:
    tracing, exporter = memory_tracing()
    flaky = Flaky(failures=1)

    async def slow(text: str) -> Text:
        await asyncio.sleep(5)
        return Text(text="slow")

    def quick(text: str) -> Text:
        return Text(text="fallback:" + text)

    def seen_in_thread(text: str) -> Text:
        # a step's thread carries the step's span: what it opens is the step's child
        with tracing.tracer.start_as_current_span("inside"):
            return Text(text=text)

    wf = (
        Workflow("traced", "7", inputs={"text": str})
        .step("split", split)
        .step("flaky", flaky, retry=RetryPolicy(attempts=2, wait_s=0))
        .step("slow", slow, timeout_s=0.2, fallback=quick)
        .step("never", shout, bind={"text": "flaky.text"}, when=Condition(ref="split.words", op="empty"))
        .step("thread", seen_in_thread)
        .build()
    )
    run = wf.run({"text": "a b"}, tracer=tracing.tracer)
    assert run.skipped == {"never"}
    spans = exporter.get_finished_spans()
    root = one(spans, "workflow traced")
    assert root.attributes["kgrag.workflow.version"] == "7"
    steps = {s.name: s for s in children(spans, root)}
    assert set(steps) == {"step split", "step flaky", "step slow", "step never", "step thread"}
    assert steps["step flaky"].attributes["kgrag.step.attempts"] == 2
    assert steps["step flaky"].attributes["kgrag.step.status"] == "ok"
    assert steps["step slow"].attributes["kgrag.step.status"] == "timeout"
    assert [e.name for e in steps["step slow"].events] == ["fallback"]
    never = steps["step never"].attributes
    assert never["kgrag.step.status"] == "skipped" and "condition not met" in never["kgrag.step.skip_reason"]
    assert [c.name for c in children(spans, steps["step thread"])] == ["inside"]
    assert all(s.context.trace_id == root.context.trace_id for s in spans)


def test_a_step_that_fails_for_good_ends_its_span_and_the_run_span_in_error() -> None:
    tracing, exporter = memory_tracing()
    flaky = Flaky(failures=5)
    wf = Workflow("w", "1", inputs={"text": str}).step("flaky", flaky, retry=RetryPolicy(attempts=2)).build()
    with pytest.raises(WorkflowStepError):
        wf.run({"text": "x"}, tracer=tracing.tracer)
    spans = exporter.get_finished_spans()
    step, run = one(spans, "step flaky"), one(spans, "workflow w")
    assert step.status.status_code == StatusCode.ERROR and run.status.status_code == StatusCode.ERROR
    assert step.attributes["kgrag.step.status"] == "failed"
    assert "transient failure 2" in step.attributes["kgrag.step.error"]
    assert step.parent is not None and step.parent.span_id == run.context.span_id
