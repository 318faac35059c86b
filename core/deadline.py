"""A request's deadline and cancellation token, shared by the API (which sets it), the workflow (which checks it
between steps) and the model client (which aborts a call in flight when it passes or is cancelled).

Thread-safe: the API's event loop cancels it while the workflow runs in a worker thread. The work of one request
runs inside :meth:`Deadline.bound`, so that code deep in it (a model call inside a step) finds the request's
deadline with :func:`current_deadline` without every layer in between passing it on: a context variable, which
``asyncio`` tasks and ``asyncio.to_thread`` copy, so it follows the request and never leaks into another one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from core.errors import RequestCancelledError

#: The deadline of the request whose work runs in this context (None outside one).
_CURRENT: ContextVar[Deadline | None] = ContextVar("kgrag_request_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline bound by the request whose work is running here, if any."""
    return _CURRENT.get()


class Deadline:
    """When a request must be done by, and whether it was cancelled (client gone, server shutting down).

    ``check()`` raises :class:`~core.errors.RequestCancelledError` once either happened; the workflow calls it
    between steps and bounds each step's timeout by :meth:`remaining`.
    """

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self._expires = self.started + max(0.0, seconds)
        self._cancelled = threading.Event()
        self._reason = ""

    def remaining(self) -> float:
        """Seconds left (0 once expired or cancelled)."""
        if self._cancelled.is_set():
            return 0.0
        return max(0.0, self._expires - time.monotonic())

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def expired(self) -> bool:
        """Cancelled, or out of time."""
        return self.cancelled or self.passed

    @property
    def passed(self) -> bool:
        """Out of time (whether or not it was also cancelled since: the API cancels a request at its deadline)."""
        return time.monotonic() >= self._expires

    @property
    def reason(self) -> str:
        if self._reason:
            return self._reason
        return "the deadline passed" if self.expired else ""

    def cancel(self, reason: str) -> None:
        """Cancel (first reason wins); the work stops at its next check."""
        if not self._cancelled.is_set():
            self._reason = reason
            self._cancelled.set()

    def shorten(self, seconds: float) -> None:
        """Move the deadline to at most ``seconds`` from now (graceful shutdown)."""
        self._expires = min(self._expires, time.monotonic() + max(0.0, seconds))

    @contextmanager
    def bound(self) -> Iterator[Deadline]:
        """Make this the :func:`current_deadline` of the code run inside (and of the tasks and threads it starts)."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)

    def check(self, retry_after_s: float = 1.0) -> None:
        """Raise :class:`RequestCancelledError` if the request was cancelled or its deadline passed."""
        if self.expired:
            raise self.stopped(retry_after_s)

    def stopped(self, retry_after_s: float = 1.0) -> RequestCancelledError:
        """The error of work stopped by this deadline (its reason, or that it passed)."""
        return RequestCancelledError(
            f"the request was stopped after {self.elapsed():.1f}s: {self.reason or 'the deadline passed'}",
            retry_after_s=retry_after_s,
            hint="retry later, or send a longer X-Request-Timeout (within KGRAG_API__REQUEST_TIMEOUT_S)",
        )
