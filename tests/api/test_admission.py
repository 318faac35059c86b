"""The admission queue's arithmetic, ordering and replica choice, in-process (the HTTP behaviour is in
test_admission_api.py, against real servers)."""

from __future__ import annotations

import asyncio

import pytest

from api.admission import AdmissionQueue
from core.deadline import Deadline, current_deadline
from core.errors import OverloadedError, QueueFullError, ShuttingDownError
from core.replicas import pinned_endpoint
from core.settings import AdmissionSettings

A, B = "http://a/v1", "http://b/v1"


def queue(url: str = "http://m/v1", ejected: set[str] | None = None, **kw: object) -> AdmissionQueue:
    return AdmissionQueue(url, AdmissionSettings(**kw), ejected=lambda: ejected or set())  # type: ignore[arg-type]


def test_retry_after_plays_the_line_forward_from_what_the_running_answers_have_done() -> None:
    async def go() -> None:
        q = queue(slots=2, initial_service_s=10)
        assert q.retry_after(0) == 1 and q.retry_after(2) == 10 and q.retry_after(4) == 20, "two free slots"
        one = queue(slots=1, initial_service_s=10)
        ticket = await one.acquire(Deadline(100))
        ticket.admitted_at -= 4  # the running answer has had 4 of its 10 s
        assert one.retry_after(0) == 6 and one.retry_after(1) == 16 and one.retry_after(2) == 26
        assert queue(initial_service_s=0.2).retry_after(0) == 1, "at least one second"

    asyncio.run(go())


def test_each_replica_has_its_slots_and_its_own_service_time() -> None:
    async def go() -> None:
        q = queue(f"{A},{B}", slots=1, initial_service_s=10)
        first, second = await q.acquire(Deadline(100)), await q.acquire(Deadline(100))
        assert {first.replica.url, second.replica.url} == {A, B}, "two replicas serve two answers at once"
        slow = next(r for r in q.replicas if r.url == B)
        slow.service_s = 30
        assert q.expected_start(0)[0] == pytest.approx(10, abs=0.5) and q.expected_start(0)[1].url == A
        assert q.expected_start(1)[0] == pytest.approx(20, abs=0.5), "A frees at 10 and again at 20, before B"
        assert q.expected_start(2)[0] == pytest.approx(30, abs=0.5)
        stats = q.stats()
        assert stats.slots == 2 and stats.in_flight == 2 and stats.queue_depth == 16
        assert [r.endpoint for r in stats.replicas] == [A, B] and all(r.in_flight == 1 for r in stats.replicas)

    asyncio.run(go())


def test_the_line_is_shared_and_the_first_slot_that_frees_takes_its_head() -> None:
    async def go() -> None:
        q = queue(f"{A},{B}", slots=1)
        on_a, on_b = await q.acquire(Deadline(100)), await q.acquire(Deadline(100))
        if on_a.replica.url != A:
            on_a, on_b = on_b, on_a
        waiting = asyncio.create_task(q.acquire(Deadline(100)))
        await asyncio.sleep(0.05)
        assert q.waiting == 1
        q.finished(on_b, ok=True)
        assert (await waiting).replica.url == B, "it took B's slot, the one that freed"

    asyncio.run(go())


def test_an_ejected_replica_takes_no_new_answer_unless_every_one_is() -> None:
    async def go() -> None:
        ejected = {B}
        q = queue(f"{A},{B}", ejected=ejected, slots=1)
        assert (await q.acquire(Deadline(100))).replica.url == A
        waiting = asyncio.create_task(q.acquire(Deadline(100)))
        await asyncio.sleep(0.05)
        assert not waiting.done(), "B's free slot is not used while B is ejected"
        assert [r.ejected for r in q.stats().replicas] == [False, True]
        ejected.clear()  # B's cool-down ends: the waiting request takes its slot at its next look (0.25 s)
        assert (await asyncio.wait_for(waiting, 2)).replica.url == B
        everyone = queue(f"{A},{B}", ejected={A, B}, slots=1)
        assert (await everyone.acquire(Deadline(100))).replica.url in {A, B}

    asyncio.run(go())


def test_a_request_that_could_not_finish_in_time_is_refused_at_once_one_that_could_waits() -> None:
    async def go() -> None:
        q = queue(slots=1, queue_depth=4, max_wait_s=60, initial_service_s=10)
        measured = await q.acquire(Deadline(100))
        q.finished(measured, ok=True)  # one answer measured: the estimate is used from now on
        q.replicas[0].service_s = 10
        await q.acquire(Deadline(100))
        with pytest.raises(OverloadedError) as short:
            await q.acquire(Deadline(5))
        assert "its deadline leaves less than" in str(short.value) and short.value.retry_after_s == 10
        with pytest.raises(OverloadedError) as tight:
            await q.acquire(Deadline(15))  # would start in 10 s, and needs 10 more: 20 > 15
        assert "refused at once" in str(tight.value) and tight.value.retry_after_s == 5, "when it could wait"
        fits = asyncio.create_task(q.acquire(Deadline(30)))
        await asyncio.sleep(0.05)
        assert q.waiting == 1 and not fits.done()
        fits.cancel()

    asyncio.run(go())


def test_service_time_is_an_ewma_of_completed_answers_and_busy_time_their_sum() -> None:
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
    assert q.measured == 2 and q.replicas[0].service_s == pytest.approx(0.1, abs=0.01)
    assert q.stats().busy_s == pytest.approx(0.2, abs=0.01), "the stopped answer is not counted"


def test_work_runs_under_its_deadline_pinned_to_its_replica() -> None:
    async def go() -> tuple[object, object, Deadline]:
        q = queue(f"{A},{B}", ejected={A}, slots=1)
        deadline = Deadline(10)
        seen = await q.run(deadline, lambda: (current_deadline(), pinned_endpoint()))
        q.shutdown()
        return seen[0], seen[1], deadline

    bound, endpoint, deadline = asyncio.run(go())
    assert bound is deadline and endpoint == B


def test_waiters_are_admitted_in_order_and_a_full_line_is_429() -> None:
    async def go() -> list[str]:
        q = queue(slots=1, queue_depth=2, initial_service_s=10)
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
        assert full.value.retry_after_s == 10 and full.value.http_status == 429, "when the head of the line starts"
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


def test_a_waiting_request_gives_up_once_it_could_no_longer_finish_in_time() -> None:
    async def go() -> float:
        q = queue(slots=1, queue_depth=4, initial_service_s=0.5)
        measured = await q.acquire(Deadline(100))
        q.finished(measured, ok=True)
        q.replicas[0].service_s = 0.5
        await q.acquire(Deadline(100))  # runs past its estimate, and never ends here
        started = asyncio.get_running_loop().time()
        with pytest.raises(OverloadedError, match="could not start"):
            await q.acquire(Deadline(1.2))  # fits when it arrives (start ~0.5 s + 0.5 s <= 1.2 s)
        return asyncio.get_running_loop().time() - started

    waited = asyncio.run(go())
    assert 0.5 <= waited < 1.1, "it left when 0.5 s of its 1.2 s were no longer enough, before its deadline"
