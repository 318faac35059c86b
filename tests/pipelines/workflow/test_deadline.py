"""The workflow engine under a request deadline: no step starts after it passed or was cancelled, a step's timeout
is cut to the time left, and a failing step is not retried past it."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from core.deadline import Deadline
from core.errors import RequestCancelledError
from pipelines.workflow.builder import Workflow
from pipelines.workflow.model import RetryPolicy
from tests.pipelines.workflow.test_engine import Flaky, Text


def test_no_step_starts_after_the_deadline_was_cancelled() -> None:
    deadline = Deadline(30)
    ran: list[str] = []

    def first(text: str) -> Text:
        ran.append("first")
        deadline.cancel("the client disconnected")
        return Text(text=text)

    def second(text: str) -> Text:
        ran.append("second")
        return Text(text=text)

    wf = (
        Workflow("w", "1", inputs={"text": str})
        .step("first", first)
        .step("second", second, bind={"text": "first.text"})
    )
    with pytest.raises(RequestCancelledError, match="client disconnected"):
        wf.build().run({"text": "x"}, deadline=deadline)
    assert ran == ["first"]


def test_a_step_times_out_at_the_deadline_not_at_its_own_timeout() -> None:
    release = threading.Event()

    def slow(text: str) -> Text:
        release.wait(10)
        return Text(text=text)

    wf = Workflow("w", "1", inputs={"text": str}).step("slow", slow, timeout_s=60).build()
    loop = asyncio.new_event_loop()
    t0 = time.monotonic()
    try:
        with pytest.raises(RequestCancelledError, match="deadline passed"):
            loop.run_until_complete(wf.arun({"text": "x"}, deadline=Deadline(0.3)))
        assert time.monotonic() - t0 < 5, "raised at the deadline (the step's thread runs on until it returns)"
    finally:
        release.set()
        loop.close()


def test_a_failing_step_is_not_retried_past_the_deadline() -> None:
    flaky = Flaky(failures=5)
    wf = Workflow("w", "1", inputs={"text": str}).step("flaky", flaky, retry=RetryPolicy(attempts=5, wait_s=0.3))
    with pytest.raises(RequestCancelledError):
        wf.build().run({"text": "x"}, deadline=Deadline(0.4))
    assert flaky.calls <= 2
    assert Deadline(5).remaining() > 4 and Deadline(0).expired
