"""Graceful shutdown: on the first SIGTERM (or SIGINT) stop admitting model work, and give the answers in flight
``KGRAG_API__SHUTDOWN_GRACE_S`` before their deadlines cancel them; uvicorn's own handler then drains and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

from api.admission import AdmissionQueue

log = logging.getLogger("kgrag.api")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def install_shutdown_hook(queue: AdmissionQueue, grace_s: float) -> Callable[[], None]:
    """Chain a handler in front of the current SIGTERM/SIGINT handlers (uvicorn's); returns the undo. A no-op off
    the main thread (an API served from a test thread gets no signals)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if not queue.closed:
            running = len(queue.running)
            log.warning("signal %d: admitting no new answers; %d in flight get %gs", signum, running, grace_s)
            loop.call_soon_threadsafe(queue.close, grace_s)
        before = previous[signal.Signals(signum)]
        if callable(before):
            before(signum, frame)

    for sig in SIGNALS:
        signal.signal(sig, on_signal)

    def undo() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, handler)

    return undo
