"""Admission control for model work: a bounded queue per model endpoint, in front of a bounded worker pool.

At most ``slots`` answers run at once (each in a worker thread of this queue's own pool, never the pool that serves
the read routes); at most ``queue_depth`` wait. A request beyond the queue is refused at once with 429; one that
cannot start within its wait budget (``max_wait_s``, and its own deadline) gets 503. Both carry ``Retry-After``:
the measured service time (an EWMA of recent answers) times the answers ahead, divided by the slots.

A slot is freed when its worker thread really ends, not when the HTTP request does: a request stopped at its
deadline answers 503 at once while its worker finishes the step it is in (the workflow checks the deadline between
steps), so admitted work stays bounded even when the model hangs. Everything here runs on the event loop, except
the workers.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections import deque
from collections.abc import Callable
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
from core.settings import AdmissionSettings

T = TypeVar("T")
ModelState = Literal["idle", "busy", "failing"]


class QueueStats(BaseModel):
    """The queue as ``/healthz`` reports it."""

    endpoint: str
    slots: int
    in_flight: int
    waiting: int
    queue_depth: int
    oldest_wait_s: float
    service_time_s: float
    measured: int
    closed: bool


@dataclass
class _Waiter:
    future: asyncio.Future[Ticket]
    since: float
    deadline: Deadline


@dataclass(eq=False)
class Ticket:
    """One admitted answer: its slot is released by :meth:`AdmissionQueue.finished` when its worker ends."""

    deadline: Deadline
    admitted_at: float = field(default_factory=time.monotonic)


class AdmissionQueue:
    """The bounded queue and worker pool of one model endpoint (see the module docstring)."""

    def __init__(self, endpoint: str, settings: AdmissionSettings) -> None:
        self.endpoint = endpoint
        self.slots = settings.slots
        self.depth = settings.queue_depth
        self.max_wait_s = settings.max_wait_s
        self.alpha = settings.ewma_alpha
        self.service_s = settings.initial_service_s
        self.measured = 0
        self.closed = False
        self.grace_s = 0.0
        self.running: set[Ticket] = set()
        self._waiters: deque[_Waiter] = deque()
        self.executor = ThreadPoolExecutor(max_workers=settings.slots, thread_name_prefix="kgrag-model-work")
        self.last_ok_at: float | None = None
        self.last_failure_at: float | None = None

    # ----- what clients are told -----

    def retry_after(self, ahead: int) -> float:
        """Seconds until a request with ``ahead`` answers before it could start (at least 1)."""
        return max(1.0, math.ceil(self.service_s * max(1, ahead) / self.slots))

    def expected_wait(self, ahead: int) -> float:
        """Expected seconds before a request that finds ``ahead`` waiting starts: the rounds before it, less what the
        oldest running answer has done already."""
        if len(self.running) < self.slots and ahead == 0:
            return 0.0
        done = max((time.monotonic() - t.admitted_at for t in self.running), default=0.0)
        rounds = ahead // self.slots + 1
        return max(0.0, rounds * self.service_s - min(done, self.service_s))

    def stats(self) -> QueueStats:
        now = time.monotonic()
        oldest = min((w.since for w in self._waiters if not w.future.done()), default=now)
        return QueueStats(
            endpoint=self.endpoint,
            slots=self.slots,
            in_flight=len(self.running),
            waiting=self.waiting,
            queue_depth=self.depth,
            oldest_wait_s=round(now - oldest, 3),
            service_time_s=round(self.service_s, 3),
            measured=self.measured,
            closed=self.closed,
        )

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._waiters if not w.future.done())

    def model_state(self) -> ModelState:
        """``busy`` while an answer runs and the last model outcome was a success (or none yet), ``failing`` if the
        last one failed, ``idle`` with nothing running (then only a probe can tell)."""
        if self.last_failure_at is not None and (self.last_ok_at is None or self.last_failure_at > self.last_ok_at):
            return "failing"
        return "busy" if self.running else "idle"

    # ----- admission -----

    async def acquire(self, deadline: Deadline) -> Ticket:
        """Wait for a slot; raises 429 (queue full), 503 (cannot start in time, shutting down) or, when the deadline
        is cancelled while waiting, :class:`~core.errors.RequestCancelledError`."""
        if self.closed:
            raise self._shutting_down()
        if len(self.running) < self.slots and not self.waiting:
            return self._admit(deadline)
        ahead = self.waiting
        if ahead >= self.depth:
            raise QueueFullError(
                f"{ahead} answers are already waiting for the model at {self.endpoint} (the queue holds {self.depth})",
                retry_after_s=self.retry_after(ahead + 1),
                hint="retry after the Retry-After seconds",
            )
        budget = min(self.max_wait_s, deadline.remaining())
        if self.measured and self.expected_wait(ahead) > budget:
            raise self._overloaded(ahead, budget)
        waiter = _Waiter(asyncio.get_running_loop().create_future(), time.monotonic(), deadline)
        self._waiters.append(waiter)
        try:
            while not waiter.future.done():
                left = min(budget - (time.monotonic() - waiter.since), deadline.remaining())
                if left <= 0 or deadline.cancelled:
                    break
                await asyncio.wait({waiter.future}, timeout=min(left, 0.25))
        except BaseException:
            self._abandon(waiter)
            raise
        if waiter.future.done() and not waiter.future.cancelled():
            return waiter.future.result()  # a ticket, or the shutdown error close() set
        self._abandon(waiter)
        deadline.check()
        raise self._overloaded(ahead, budget, waited=True)

    def _abandon(self, waiter: _Waiter) -> None:
        if waiter.future.done() and not waiter.future.cancelled() and waiter.future.exception() is None:
            self.finished(waiter.future.result(), ok=None)  # a slot was handed over as the request left
        waiter.future.cancel()
        if waiter in self._waiters:
            self._waiters.remove(waiter)

    def _admit(self, deadline: Deadline) -> Ticket:
        ticket = Ticket(deadline)
        if self.closed:
            deadline.shorten(self.grace_s)
        self.running.add(ticket)
        return ticket

    def finished(self, ticket: Ticket, *, ok: bool | None, model_failed: bool = False) -> None:
        """Free the ticket's slot (its worker has ended) and hand it to the oldest request still waiting.

        ``ok``: the answer completed (its duration updates the service time); None: stopped or never started."""
        if ticket not in self.running:
            return
        self.running.discard(ticket)
        now = time.monotonic()
        if ok:
            took = now - ticket.admitted_at
            self.service_s = took if not self.measured else self.alpha * took + (1 - self.alpha) * self.service_s
            self.measured += 1
            self.last_ok_at = now
        elif model_failed:
            self.last_failure_at = now
        while self._waiters and len(self.running) < self.slots:
            waiter = self._waiters.popleft()
            if not waiter.future.done() and not waiter.deadline.expired:
                waiter.future.set_result(self._admit(waiter.deadline))

    async def run(self, deadline: Deadline, work: Callable[[], T]) -> T:
        """Wait for a slot, run ``work`` on a worker thread, return its result; raise at the deadline (503) while the
        worker finishes its current step and then frees the slot."""
        ticket = await self.acquire(deadline)
        # The worker runs in the request's context (its span is the parent of the answer's spans).
        future = asyncio.get_running_loop().run_in_executor(self.executor, contextvars.copy_context().run, work)

        def done(f: asyncio.Future[T]) -> None:
            exc = None if f.cancelled() else f.exception()
            ok = exc is None and not f.cancelled() and not deadline.cancelled
            self.finished(ticket, ok=ok, model_failed=isinstance(exc, ModelUnavailableError))

        future.add_done_callback(done)
        while not future.done():
            if deadline.expired:
                deadline.cancel(deadline.reason)
                deadline.check(self.retry_after(self.waiting + 1))
            await asyncio.wait({future}, timeout=min(0.25, max(deadline.remaining(), 0.01)))
        try:
            return future.result()
        except RequestCancelledError as exc:
            exc.retry_after_s = self.retry_after(self.waiting + 1)
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

    def _overloaded(self, ahead: int, budget: float, *, waited: bool = False) -> OverloadedError:
        how = "after waiting for it" if waited else "(refused at once)"
        return OverloadedError(
            f"the answer could not start within {budget:.0f}s {how}: {ahead} answers were ahead of it and each takes "
            f"about {self.service_s:.1f}s on the model at {self.endpoint}",
            retry_after_s=self.retry_after(ahead + 1),
            hint="retry after the Retry-After seconds, or send a longer X-Request-Timeout",
        )
