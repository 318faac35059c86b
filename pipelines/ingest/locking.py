"""One ingestion run per store: an exclusive lock on ``ingest.lock``, which names its holder's pid.

The lock is a kernel ``flock``: it is released when its holder exits, however it exits (``kill -9`` included), so a
lock file left by a dead process is simply taken over; the report says whose it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from core.errors import StoreBusyError


class IngestLock:
    """Exclusive, non-blocking lock on one file; ``acquire`` raises :class:`StoreBusyError` when it is held."""

    def __init__(self, path: Path, *, purpose: str = "ingest") -> None:
        self.path = Path(path)
        self.purpose = purpose
        self._fd: int | None = None
        #: Pid written in the lock file by a previous holder that is gone (set by ``acquire``).
        self.taken_over_from: int | None = None

    def _holder(self) -> dict[str, object]:
        try:
            value = json.loads(self.path.read_text("utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = self._holder()
            raise StoreBusyError(
                f"another kgrag run (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                f"{holder.get('purpose', 'ingest')} since {holder.get('started_at', '?')}) holds {self.path}",
                hint="wait for it to finish; the lock is released as soon as that process exits",
            ) from None
        previous = self._holder().get("pid")
        if isinstance(previous, int) and previous != os.getpid():
            self.taken_over_from = previous
        info = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "purpose": self.purpose,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> IngestLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
