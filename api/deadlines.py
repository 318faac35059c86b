"""A request's deadline (``X-Request-Timeout``, capped by ``KGRAG_API__REQUEST_TIMEOUT_S``) and the watch that
cancels it when the client disconnects, around model work run through the admission queue."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from api.admission import AdmissionQueue
from api.state import app_state
from core.deadline import Deadline
from core.errors import InputError

T = TypeVar("T")
TIMEOUT_HEADER = "x-request-timeout"
DISCONNECT_POLL_S = 0.25


def request_deadline(request: Request) -> Deadline:
    """The deadline a request asked for in ``X-Request-Timeout`` (seconds), never longer than the setting."""
    cap = app_state(request).settings.api.request_timeout_s
    raw = request.headers.get(TIMEOUT_HEADER)
    if raw is None:
        return Deadline(cap)
    try:
        asked = float(raw)
    except ValueError:
        asked = math.nan
    if not math.isfinite(asked) or asked <= 0:
        raise InputError(
            f"X-Request-Timeout must be a positive number of seconds, not {raw[:40]!r}",
            hint=f"send e.g. X-Request-Timeout: 30 (at most {cap:g})",
        )
    return Deadline(min(asked, cap))


async def _watch_disconnect(request: Request, deadline: Deadline) -> None:
    while not deadline.expired:
        if await request.is_disconnected():
            deadline.cancel("the client disconnected")
            return
        await asyncio.sleep(DISCONNECT_POLL_S)


async def run_model_work(request: Request, deadline: Deadline, work: Callable[[], T]) -> T:
    """Run blocking model work once admitted by the app's queue; the deadline is cancelled if the client leaves."""
    queue: AdmissionQueue = app_state(request).admission
    watch = asyncio.create_task(_watch_disconnect(request, deadline))
    try:
        return await queue.run(deadline, work, gone=request.is_disconnected)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
