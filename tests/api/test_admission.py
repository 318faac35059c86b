"""The admission queue's arithmetic and ordering, in-process (the HTTP behaviour is in test_admission_api.py)."""

from __future__ import annotations

import asyncio

import pytest

from api.admission import AdmissionQueue
from core.deadline import Deadline
from core.errors import QueueFullError, ShuttingDownError
from core.settings import AdmissionSettings


def queue(**kw: object) -> AdmissionQueue:
    return AdmissionQueue("http://m/v1", AdmissionSettings(**kw))  # type: ignore[arg-type]


def test_retry_after_is_the_service_time_times_the_queue_ahead_over_the_slots() -> None:
    q = queue(slots=2, initial_service_s=10)
    assert q.retry_after(1) == 5 and q.retry_after(4) == 20 and q.retry_after(0) == 5
    assert queue(initial_service_s=0.2).retry_after(1) == 1, "at least one second"


def test_service_time_is_an_ewma_of_completed_answers_only() -> None:
    async def go() -> AdmissionQueue:
        q = queue(ewma_alpha=0.5)
        for seconds in (0.2, 0.0):
            ticket = await q.acquire(Deadline(10))
            ticket.admitted_at -= seconds
            q.finished(ticket, ok=True)
        stopped = await q.acquire(Deadline(10))
        stopped.admitted_at -= 100
        q.finished(stopped, ok=None)
        return q

    q = asyncio.run(go())
    assert q.measured == 2 and q.service_s == pytest.approx(0.1, abs=0.01)


def test_waiters_are_admitted_in_order_and_a_full_queue_is_429() -> None:
    async def go() -> list[str]:
        q = queue(slots=1, queue_depth=2)
        order: list[str] = []
        first = await q.acquire(Deadline(10))

        async def wait(name: str) -> None:
            ticket = await q.acquire(Deadline(10))
            order.append(name)
            q.finished(ticket, ok=True)

        tasks = [asyncio.create_task(wait("a")), asyncio.create_task(wait("b"))]
        await asyncio.sleep(0.05)
        assert q.stats().waiting == 2 and q.model_state() == "busy"
        with pytest.raises(QueueFullError) as full:
            await q.acquire(Deadline(10))
        assert full.value.retry_after_s >= 10 and full.value.http_status == 429
        q.finished(first, ok=True)
        await asyncio.gather(*tasks)
        return order

    assert asyncio.run(go()) == ["a", "b"]


def test_close_refuses_the_waiting_and_shortens_the_running() -> None:
    async def go() -> None:
        q = queue(slots=1, queue_depth=2)
        running = await q.acquire(Deadline(100))
        waiting = asyncio.create_task(q.acquire(Deadline(100)))
        await asyncio.sleep(0.05)
        q.close(0.5)
        with pytest.raises(ShuttingDownError):
            await waiting
        assert running.deadline.remaining() <= 0.5
        with pytest.raises(ShuttingDownError):
            await q.acquire(Deadline(100))
        q.shutdown()

    asyncio.run(go())
