"""Several replicas of one model: ``KGRAG_LLM_BASE_URL`` may list OpenAI-compatible endpoints, comma-separated.

A request goes to the least loaded healthy endpoint (fewest requests in flight from this process; ties rotate). An
endpoint that fails (connection error, timeout, HTTP 5xx) is ejected for a cool-down and the request is retried on
another; after the cool-down it takes requests again. An endpoint that fails again when it comes back is ejected for
twice as long each time, up to a maximum (a dead server is tried every 30, 60, 120 ... s, not every 30 s, and each
try is an answer sent elsewhere after a failure); one success ends the doubling. When every endpoint is ejected,
they are still tried (soonest back first) rather than refusing the request unseen. With a single URL there is
nothing to choose and nothing is ejected: the request goes to that endpoint, as before.

The work of one answer may be *pinned* to an endpoint (:func:`pinned`: the API admits each answer onto one replica's
slots): its model calls go there while it is healthy, and to the least loaded other one when it is not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from core.errors import ConfigurationError

#: The endpoint the work running in this context was admitted onto (None: any).
_PINNED: ContextVar[str | None] = ContextVar("kgrag_pinned_endpoint", default=None)


@contextmanager
def pinned(url: str | None) -> Iterator[None]:
    """Send the model calls made inside (and in the tasks and threads it starts) to ``url`` while it is healthy."""
    token = _PINNED.set(url)
    try:
        yield
    finally:
        _PINNED.reset(token)


def pinned_endpoint() -> str | None:
    """The endpoint the running work is pinned to, if any."""
    return _PINNED.get()


def split_urls(value: str) -> list[str]:
    """The endpoints of a comma-separated ``KGRAG_LLM_BASE_URL``, in order (blank entries and repeats dropped)."""
    urls = list(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))
    if not urls:
        raise ConfigurationError(
            "KGRAG_LLM_BASE_URL names no endpoint", hint="set it to http://127.0.0.1:8080/v1 or a comma-separated list"
        )
    return urls


@dataclass
class Replica:
    """One endpoint and what this process knows of it."""

    url: str
    in_flight: int = 0
    served: int = 0
    failures: int = 0
    #: Ejections in a row without a success between them (the next cool-down doubles with each).
    ejections: int = 0
    ejected_until: float = 0.0
    last_error: str = field(default="")


class ReplicaPool:
    """Chooses an endpoint per request (least loaded, healthy first) and ejects failing ones for ``cooldown_s``,
    doubled for each ejection in a row up to ``max_cooldown_s``.

    Thread-safe: the API calls the model from many threads at once.
    """

    def __init__(
        self,
        urls: list[str],
        *,
        cooldown_s: float = 30.0,
        max_cooldown_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise ConfigurationError("a model replica pool needs at least one endpoint")
        self.replicas = [Replica(url) for url in urls]
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max(max_cooldown_s, cooldown_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._turn = 0  # rotates ties, so that one-at-a-time requests alternate

    def order(self, exclude: set[str] | None = None) -> list[Replica]:
        """Endpoints to try, best first: the :func:`pinned` one if healthy, healthy ones by requests in flight (ties
        rotated), then ejected ones by when their cool-down ends."""
        with self._lock:
            return self._order(exclude or set())

    def _order(self, exclude: set[str]) -> list[Replica]:
        now, count = self._clock(), len(self.replicas)
        rotated = [self.replicas[(self._turn + i) % count] for i in range(count)]
        candidates = [r for r in rotated if r.url not in exclude]
        healthy = sorted((r for r in candidates if r.ejected_until <= now), key=lambda r: r.in_flight)
        ejected = sorted((r for r in candidates if r.ejected_until > now), key=lambda r: r.ejected_until)
        pin = _PINNED.get()
        healthy.sort(key=lambda r: r.url != pin)  # the pinned endpoint first while it is healthy (a stable sort)
        return healthy + ejected

    def acquire(self, exclude: set[str] | None = None) -> Replica | None:
        """The best endpoint not in ``exclude``, counted as in flight; None when every one is excluded."""
        with self._lock:
            ranked = self._order(exclude or set())
            if not ranked:
                return None
            chosen = ranked[0]
            chosen.in_flight += 1
            self._turn = (self.replicas.index(chosen) + 1) % len(self.replicas)
            return chosen

    def release(self, replica: Replica, error: str | None = None) -> None:
        """The request on ``replica`` ended: served, or failed with ``error`` (which ejects it, if there are others)."""
        with self._lock:
            replica.in_flight -= 1
            if error is None:
                replica.served += 1
                replica.ejections = 0
                replica.ejected_until = 0.0
                return
            replica.failures += 1
            replica.last_error = error
            if len(self.replicas) == 1:
                return
            now = self._clock()
            if replica.ejected_until <= now:  # a new ejection (not another request that was in flight then)
                replica.ejections += 1
            cooldown = min(self.cooldown_s * 2 ** (replica.ejections - 1), self.max_cooldown_s)  # ejections >= 1
            replica.ejected_until = max(replica.ejected_until, now + cooldown)

    def ejected(self) -> list[str]:
        """The endpoints now in their cool-down."""
        now = self._clock()
        with self._lock:
            return [r.url for r in self.replicas if r.ejected_until > now]
