"""Admission control for model work: per model replica, a bounded number of answers at once; one bounded line of
waiting requests in front of them all.

Each endpoint of ``KGRAG_LLM_BASE_URL`` (one, or several replicas comma-separated) has ``slots`` answers running
at once, each on a worker thread of this queue's own pool (never the pool that serves the read routes), and a
service time measured on it (an EWMA of its completed answers). An answer's model calls go to the replica whose
slot it holds while that one is healthy (:func:`core.replicas.pinned`). Requests that find every slot taken wait
in one line (at most ``queue_depth`` per replica) and take the first slot that frees, on whichever replica: no
request waits behind a slow replica while another is free. A replica the model client has ejected (failing) takes
no new answers until its cool-down ends, unless every replica is ejected.

Refusals, all with ``Retry-After``: beyond the line, 429; a request that could not start in time to finish within
its deadline (nor within ``max_wait_s``), 503 at once, from the estimate; one that waited until it could no longer
finish in time (or ``max_wait_s``), 503: no answer is started that would most likely be cut at its deadline, its
model time wasted. The
estimate of when a request would start plays the line forward: each slot frees when its running answer has had
its replica's service time, then takes the next request ahead for another service time.

A slot is freed when its worker thread really ends, not when the HTTP request does; a request stopped at its
deadline answers 503 at once while its worker ends too (the model call in flight is aborted, :mod:`core.llm`), so
admitted work stays bounded even when a model hangs. Everything here runs on the event loop, except the workers.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from pydantic import BaseModel

from core.deadline import Deadline
from core.errors import (
    ModelUnavailableError,
    OverloadedError,
    QueueFullError,
    RequestCancelledError,
    ShuttingDownError,
)
from core.replicas import pinned, split_urls
from core.settings import AdmissionSettings

T = TypeVar("T")
ModelState = Literal["idle", "busy", "failing"]


class ReplicaStats(BaseModel):
    """One replica's slots, as ``/healthz`` reports them."""

    endpoint: str
    slots: int
    in_flight: int
    service_time_s: float
    measured: int
    busy_s: float
    ejected: bool


class QueueStats(BaseModel):
    """The queue as ``/healthz`` reports it: totals over the replicas, then each one."""

    endpoint: str
    slots: int
    in_flight: int
    waiting: int
    queue_depth: int
    oldest_wait_s: float
    service_time_s: float
    measured: int
    #: Seconds of completed answers (the sum of their service times), since the start.
    busy_s: float
    closed: bool
    replicas: list[ReplicaStats]


@dataclass(eq=False)
class Slots:
    """One replica: its slots, the answers running on them, and what was measured of it."""

    url: str
    slots: int
    service_s: float
    measured: int = 0
    busy_s: float = 0.0
    running: set[Ticket] = field(default_factory=set)

    def record(self, took: float, alpha: float) -> None:
        self.service_s = took if not self.measured else alpha * took + (1 - alpha) * self.service_s
        self.measured += 1
        self.busy_s += took


@dataclass
class _Waiter:
    future: asyncio.Future[Ticket]
    since: float
    deadline: Deadline


@dataclass(eq=False)
class Ticket:
    """One admitted answer on one replica's slot, released by :meth:`AdmissionQueue.finished` when its worker ends."""

    deadline: Deadline
    replica: Slots
    admitted_at: float = field(default_factory=time.monotonic)


class AdmissionQueue:
    """The replicas' slots, the line in front of them and the worker pool (see the module docstring).

    ``ejected``: the endpoints the model client has ejected now (:meth:`core.replicas.ReplicaPool.ejected`)."""

    def __init__(
        self, base_url: str, settings: AdmissionSettings, *, ejected: Callable[[], Collection[str]] | None = None
    ) -> None:
        self.endpoint = base_url
        self.replicas = [Slots(url, settings.slots, settings.initial_service_s) for url in split_urls(base_url)]
        self.depth = settings.queue_depth * len(self.replicas)
        self.max_wait_s = settings.max_wait_s
        self.alpha = settings.ewma_alpha
        self.closed = False
        self.grace_s = 0.0
        self._ejected = ejected or (lambda: ())
        self._turn = 0
        self._waiters: deque[_Waiter] = deque()
        workers = settings.slots * len(self.replicas)
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kgrag-model-work")
        self.last_ok_at: float | None = None
        self.last_failure_at: float | None = None

    # ----- what clients are told -----

    @property
    def measured(self) -> int:
        return sum(r.measured for r in self.replicas)

    @property
    def running(self) -> set[Ticket]:
        return {t for r in self.replicas for t in r.running}

    def usable(self) -> list[Slots]:
        """The replicas that take new answers: those not ejected (all of them, if every one is)."""
        out = set(self._ejected())
        return [r for r in self.replicas if r.url not in out] or list(self.replicas)

    def expected_start(self, ahead: int) -> tuple[float, Slots]:
        """When (seconds from now) and on which replica a request with ``ahead`` requests before it would start:
        each usable slot frees once its answer has run its replica's service time, then serves the next request."""
        now = time.monotonic()
        heap: list[tuple[float, int, Slots]] = []
        for i, r in enumerate(self.usable()):
            heap += [(max(0.0, r.service_s - (now - t.admitted_at)), i, r) for t in r.running]
            heap += [(0.0, i, r)] * max(0, r.slots - len(r.running))
        heapq.heapify(heap)
        for _ in range(ahead):
            at, i, r = heapq.heappop(heap)
            heapq.heappush(heap, (at + r.service_s, i, r))
        at, _, replica = heap[0]
        return at, replica

    def retry_after(self, ahead: int) -> float:
        """Seconds until a request with ``ahead`` requests before it is expected to start (at least 1)."""
        return max(1.0, math.ceil(self.expected_start(ahead)[0]))

    def stats(self) -> QueueStats:
        now = time.monotonic()
        oldest = min((w.since for w in self._waiters if not w.future.done()), default=now)
        out = set(self._ejected())
        usable = self.usable()
        return QueueStats(
            endpoint=self.endpoint,
            slots=sum(r.slots for r in self.replicas),
            in_flight=sum(len(r.running) for r in self.replicas),
            waiting=self.waiting,
            queue_depth=self.depth,
            oldest_wait_s=round(now - oldest, 3),
            service_time_s=round(sum(r.service_s for r in usable) / len(usable), 3),
            measured=self.measured,
            busy_s=round(sum(r.busy_s for r in self.replicas), 3),
            closed=self.closed,
            replicas=[
                ReplicaStats(
                    endpoint=r.url,
                    slots=r.slots,
                    in_flight=len(r.running),
                    service_time_s=round(r.service_s, 3),
                    measured=r.measured,
                    busy_s=round(r.busy_s, 3),
                    ejected=r.url in out,
                )
                for r in self.replicas
            ],
        )

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    def model_state(self) -> ModelState:
        """``busy`` while an answer runs and the last model outcome was a success (or none yet), ``failing`` if the
        last one failed, ``idle`` with nothing running (then only a probe can tell)."""
        if self.last_failure_at is not None and (self.last_ok_at is None or self.last_failure_at > self.last_ok_at):
            return "failing"
        return "busy" if any(r.running for r in self.replicas) else "idle"

    # ----- admission -----

    def _free(self) -> Slots | None:
        """A usable replica with a free slot: the least loaded (share of its slots in use), ties rotating."""
        usable = self.usable()
        count = len(usable)
        rotated = [usable[(self._turn + i) % count] for i in range(count)]
        free = [r for r in rotated if len(r.running) < r.slots]
        if not free:
            return None
        chosen = min(free, key=lambda r: len(r.running) / r.slots)
        self._turn = (usable.index(chosen) + 1) % count
        return chosen

    async def acquire(self, deadline: Deadline) -> Ticket:
        """Wait for a slot; raises 429 (the line is full), 503 (cannot start in time, shutting down) or, when the
        deadline is cancelled while waiting, :class:`~core.errors.RequestCancelledError`."""
        if self.closed:
            raise self._shutting_down()
        if not self.waiting and (replica := self._free()) is not None:
            return self._admit(deadline, replica)
        ahead = self.waiting
        if ahead >= self.depth:
            raise QueueFullError(
                f"{ahead} answers are already waiting for the model at {self.endpoint} (the line holds {self.depth})",
                retry_after_s=self.retry_after(0),
                hint="retry after the Retry-After seconds",
            )
        start, replica = self.expected_start(ahead)
        budget = min(self.max_wait_s, deadline.remaining() - replica.service_s)
        if self.measured and start > budget:
            raise self._refused(ahead, start, budget, replica)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), time.monotonic(), deadline)
        self._waiters.append(waiter)
        try:
            while not waiter.future.done():
                self._dispatch()  # a replica back from its cool-down takes the line's head
                left = min(self.max_wait_s - (time.monotonic() - waiter.since), self._time_to_start(deadline))
                if waiter.future.done() or left <= 0 or deadline.cancelled:
                    break
                await asyncio.wait({waiter.future}, timeout=min(left, 0.25))
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.future.done() and not waiter.future.cancelled():
            return waiter.future.result()  # a ticket, or the shutdown error close() set
        self._abandon(waiter)
        deadline.check()
        raise OverloadedError(
            f"the answer could not start within {time.monotonic() - waiter.since:.0f}s of waiting: {ahead} answers "
            f"were ahead of it on {len(self.replicas)} replica(s) of the model at {self.endpoint}",
            retry_after_s=self.retry_after(self.waiting),
            hint="retry after the Retry-After seconds, or send a longer X-Request-Timeout",
        )

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            self.finished(waiter.future.result(), ok=None)  # a slot was handed over as the request left
        waiter.future.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _admit(self, deadline: Deadline, replica: Slots) -> Ticket:
        ticket = Ticket(deadline, replica)
        if self.closed:
            deadline.shorten(self.grace_s)
        replica.running.add(ticket)
        return ticket

    def _time_to_start(self, deadline: Deadline) -> float:
        """How long a request may still wait and finish within its deadline (once service times are measured: an
        answer started later would most likely be cut, its model time wasted)."""
        if not self.measured:
            return deadline.remaining()
        return deadline.remaining() - min(r.service_s for r in self.usable())

    def _dispatch(self) -> None:
        """Hand free slots to the oldest requests still waiting (those that can still finish in time)."""
        while self._waiters:
            head = self._waiters[0]
            if head.future.done() or self._time_to_start(head.deadline) <= 0:
                self._waiters.popleft()  # left, or too late: its own loop answers it
                continue
            replica = self._free()
            if replica is None:
                return
            self._waiters.popleft()
            head.future.set_result(self._admit(head.deadline, replica))

    def finished(self, ticket: Ticket, *, ok: bool | None, model_failed: bool = False) -> None:
        """Free the ticket's slot (its worker has ended) and hand it to the oldest request still waiting.

        ``ok``: the answer completed (its duration updates its replica's service time); None: stopped or never
        started."""
        replica = ticket.replica
        if ticket not in replica.running:
            return
        replica.running.discard(ticket)
        now = time.monotonic()
        if ok:
            replica.record(now - ticket.admitted_at, self.alpha)
            self.last_ok_at = now
        elif model_failed:
            self.last_failure_at = now
        self._dispatch()

    async def run(
        self, deadline: Deadline, work: Callable[[], T], *, gone: Callable[[], Awaitable[bool]] | None = None
    ) -> T:
        """Wait for a slot, run ``work`` on a worker thread (under the request's deadline, its model calls pinned
        to the slot's replica), return its result; raise at the deadline (503) while the worker ends too.

        ``gone``: whether the client has left, asked once more when the slot is granted, so that no work starts
        for a client that left since the last look of the disconnect watch."""
        ticket = await self.acquire(deadline)
        if gone is not None and await gone():
            deadline.cancel("the client disconnected")
            self.finished(ticket, ok=None)
            deadline.check()

        def bound() -> T:
            with deadline.bound(), pinned(ticket.replica.url):
                return work()

        # The worker runs in the request's context (its span is the parent of the answer's spans).
        future = asyncio.get_running_loop().run_in_executor(self.executor, contextvars.copy_context().run, bound)

        def done(f: asyncio.Future[T]) -> None:
            exc = None if f.cancelled() else f.exception()
            ok = exc is None and not f.cancelled() and not deadline.cancelled
            failed = exc is not None and any(isinstance(e, ModelUnavailableError) for e in (exc, exc.__cause__))
            self.finished(ticket, ok=ok, model_failed=failed)

        future.add_done_callback(done)
        while not future.done():
            if deadline.expired:
                deadline.cancel(deadline.reason)
                deadline.check(self.retry_after(self.waiting))
            await asyncio.wait({future}, timeout=min(0.25, max(deadline.remaining(), 0.01)))
        try:
            return future.result()
        except RequestCancelledError as exc:
            exc.retry_after_s = self.retry_after(self.waiting)
            raise

    # ----- shutdown -----

    def close(self, grace_s: float) -> None:
        """Stop admitting: waiting requests get 503 now; running ones get ``grace_s`` more, then are cancelled."""
        self.closed = True
        self.grace_s = grace_s
        for waiter in self._waiters:
            if not waiter.future.done():
                waiter.future.set_exception(self._shutting_down())
        self._waiters.clear()
        for ticket in self.running:
            ticket.deadline.shorten(grace_s)

    def shutdown(self) -> None:
        """Release the worker pool (running workers end at their next deadline check)."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _shutting_down(self) -> ShuttingDownError:
        return ShuttingDownError(
            "the server is shutting down and admits no new answers",
            retry_after_s=max(1.0, math.ceil(self.grace_s) + 1),
            hint="retry after the Retry-After seconds (against the restarted server)",
        )

    def _refused(self, ahead: int, start: float, budget: float, replica: Slots) -> OverloadedError:
        """Refused at once: the request would start in ``start`` seconds, later than its ``budget`` allows. Retry
        after the time it takes the line to move that far forward (after ``start`` if no wait could do)."""
        if budget < 0:
            why = f"its deadline leaves less than the {replica.service_s:.1f}s an answer takes"
        else:
            why = f"it could wait at most {budget:.0f}s and finish within its deadline"
        return OverloadedError(
            f"the answer could not start in time (refused at once): it would start in about {start:.0f}s, behind "
            f"{ahead} waiting and the answers running on the model at {self.endpoint}, and {why}",
            retry_after_s=max(1.0, math.ceil(start - max(0.0, budget))),
            hint="retry after the Retry-After seconds, or send a longer X-Request-Timeout",
        )
