"""The circuit breaker on the model endpoint: pybreaker's state machine, fed with each model call's outcome.

pybreaker's own ``call`` holds the breaker's lock for the whole guarded call, which would serialise concurrent
answers; so the model call runs outside it and only its outcome goes through the breaker (an instant call that
returns or raises), which counts consecutive failures, opens, half-opens after the cool-down and closes on a success.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Literal, TypeVar

import pybreaker
from pydantic import BaseModel

from core.errors import ModelCircuitOpenError, ModelUnavailableError
from core.settings import BreakerSettings

T = TypeVar("T")
BreakerState = Literal["closed", "open", "half_open"]
STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")


class BreakerStats(BaseModel):
    """The breaker as ``/healthz`` reports it."""

    enabled: bool
    state: BreakerState
    consecutive_failures: int
    failures_to_open: int
    cooldown_s: float
    retry_after_s: float
    opened: int


class _Listener(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self, owner: ModelBreaker) -> None:
        self.owner = owner

    def state_change(self, cb: pybreaker.CircuitBreaker, old: object, new: pybreaker.CircuitBreakerState) -> None:
        if new.name == pybreaker.STATE_OPEN:
            self.owner.opened_at = time.monotonic()
            self.owner.opened += 1


class ModelBreaker:
    """Opens after ``settings.failures`` consecutive :class:`ModelUnavailableError`; while open (``cooldown_s``),
    :meth:`check` and :meth:`call` raise :class:`ModelCircuitOpenError` with the remaining cool-down."""

    def __init__(self, endpoint: str, settings: BreakerSettings) -> None:
        self.endpoint = endpoint
        self.enabled = settings.enabled
        self.cooldown_s = settings.cooldown_s
        self.opened = 0
        self.opened_at = 0.0
        self._lock = threading.Lock()
        self._cb = pybreaker.CircuitBreaker(
            fail_max=settings.failures,
            reset_timeout=settings.cooldown_s,
            name=endpoint,
            listeners=[_Listener(self)],
        )

    @property
    def state(self) -> BreakerState:
        current = self._cb.current_state
        if current == pybreaker.STATE_OPEN:
            return "open"
        return "half_open" if current == pybreaker.STATE_HALF_OPEN else "closed"

    def retry_after_s(self) -> float:
        """Seconds left of the cool-down (0 unless open and cooling down)."""
        if self.state != "open":
            return 0.0
        return max(0.0, self.cooldown_s - (time.monotonic() - self.opened_at))

    def stats(self) -> BreakerStats:
        return BreakerStats(
            enabled=self.enabled,
            state=self.state,
            consecutive_failures=self._cb.fail_counter,
            failures_to_open=self._cb.fail_max,
            cooldown_s=self.cooldown_s,
            retry_after_s=round(self.retry_after_s(), 3),
            opened=self.opened,
        )

    def check(self) -> None:
        """Fail fast while the breaker is open and cooling down; past the cool-down the next call is the probe."""
        if not self.enabled:
            return
        left = self.retry_after_s()
        if left > 0:
            raise ModelCircuitOpenError(
                f"the model server at {self.endpoint} failed {self._cb.fail_max} times in a row; answers are "
                f"refused for {math.ceil(left)}s more, then one is let through to probe it",
                retry_after_s=left,
                hint="retry after the Retry-After seconds; check the model server (`kgrag model status`)",
            )

    def call(self, work: Callable[[], T]) -> T:
        """Run one model call under the breaker: refused while open, its outcome counted."""
        if not self.enabled:
            return work()
        self.check()
        try:
            result = work()
        except ModelUnavailableError as exc:
            self._record(exc)
            raise
        self._record(None)
        return result

    def _record(self, failure: ModelUnavailableError | None) -> None:
        def outcome() -> None:
            if failure is not None:
                raise failure

        # The call's own outcome is what its caller sees; the breaker has only to count it.
        with self._lock, contextlib.suppress(pybreaker.CircuitBreakerError, ModelUnavailableError):
            self._cb.call(outcome)
