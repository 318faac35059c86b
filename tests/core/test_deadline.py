"""The request deadline: cancellation, time running out, and the binding that lets a model call deep in a workflow
step find its request's deadline (a context variable that follows tasks and ``asyncio.to_thread``)."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.deadline import Deadline, current_deadline
from core.errors import RequestCancelledError


def test_cancelled_and_passed_are_told_apart() -> None:
    cancelled = Deadline(60)
    cancelled.cancel("the client disconnected")
    assert cancelled.expired and cancelled.cancelled and not cancelled.passed and cancelled.remaining() == 0
    out = Deadline(0.01)
    time.sleep(0.02)
    assert out.expired and out.passed and not out.cancelled and out.reason == "the deadline passed"
    out.cancel("ignored: the first reason wins")  # the API cancels a request at its deadline: still "passed"
    assert out.passed and out.reason == "ignored: the first reason wins"
    with pytest.raises(RequestCancelledError, match="stopped after .*s: the client disconnected"):
        cancelled.check()


def test_the_bound_deadline_follows_tasks_and_threads_and_no_further() -> None:
    deadline = Deadline(60)

    async def read() -> Deadline | None:
        return current_deadline()

    async def inside() -> list[Deadline | None]:
        in_task = await asyncio.create_task(read())
        in_thread = await asyncio.to_thread(current_deadline)
        return [current_deadline(), in_task, in_thread]

    assert current_deadline() is None
    with deadline.bound():
        seen = asyncio.run(inside())
    assert seen == [deadline] * 3 and current_deadline() is None
