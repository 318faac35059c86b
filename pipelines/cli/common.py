"""What the ``kgrag`` command modules share: the ``--store`` option, settings for a store, rich progress bars."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, TaskID

from core.settings import Settings, load_settings

StoreOption = Annotated[
    Path | None, typer.Option("--store", help="Store directory (default: KGRAG_STORE_DIR or ./store).")
]


def settings_for(store: Path | None) -> Settings:
    """The settings, with ``store`` as the store directory when given."""
    settings = load_settings()
    return settings.model_copy(update={"store_dir": store}) if store else settings


class RichProgress:
    """Rich progress bars, one per ingestion stage."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    def start(self, stage: str, total: int) -> None:
        self.tasks[stage] = self.progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        self.progress.advance(self.tasks[stage], amount)
