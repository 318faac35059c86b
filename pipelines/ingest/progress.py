"""How ingestion reports progress: a reporter per stage (rich bars in the CLI, job records in the API)."""

from __future__ import annotations

from typing import Protocol


class ProgressReporter(Protocol):
    """Receives progress of the long stages (the CLI shows them as rich progress bars)."""

    def start(self, stage: str, total: int) -> None: ...

    def advance(self, stage: str, amount: int = 1) -> None: ...


class NoProgress:
    """A reporter that shows nothing (library use, tests, the API's background jobs)."""

    def start(self, stage: str, total: int) -> None:
        return None

    def advance(self, stage: str, amount: int = 1) -> None:
        return None
