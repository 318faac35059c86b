"""A request's deadline and cancellation token, shared by the API (which sets it) and the workflow (which checks it).

Thread-safe: the API's event loop cancels it while the workflow runs in a worker thread.
"""

from __future__ import annotations

import threading
import time

from core.errors import RequestCancelledError


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
        return self.cancelled or time.monotonic() >= self._expires

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

    def check(self, retry_after_s: float = 1.0) -> None:
        """Raise :class:`RequestCancelledError` if the request was cancelled or its deadline passed."""
        if self.expired:
            raise RequestCancelledError(
                f"the request was stopped after {self.elapsed():.1f}s: {self.reason}",
                retry_after_s=retry_after_s,
                hint="retry later, or send a longer X-Request-Timeout (within KGRAG_API__REQUEST_TIMEOUT_S)",
            )
