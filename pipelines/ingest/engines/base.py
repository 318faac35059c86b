"""The ingestion engine protocol: the data-parallel stages of a run (parse + chunk changed files, embed new chunks).

The driver (:class:`pipelines.ingest.ingestor.Ingestor`) keeps everything that needs the store: change detection, the
snapshot, FAISS/BM25/graph writes, extraction, the lock and the run report. An engine only turns files into
documents (and chunks) and texts into vectors, so every engine yields the same store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from core.settings import ChunkingSettings
from core.types import Chunk
from pipelines.ingest.parsers import ParsedSource
from pipelines.ingest.progress import ProgressReporter

if TYPE_CHECKING:
    import numpy as np

EngineName = Literal["local", "ray"]


@dataclass
class ParsedFile:
    """One parsed source file; ``chunks`` holds each document's chunks when the engine chunked them already."""

    path: Path
    file_id: str
    parsed: ParsedSource
    chunks: dict[str, list[Chunk]] | None = None


class IngestEngine(Protocol):
    """Runs parsing, chunking and embedding for an ingestion run; results equal across engines."""

    name: EngineName

    def parse(
        self, files: Sequence[tuple[Path, str]], chunking: ChunkingSettings, progress: ProgressReporter
    ) -> Iterator[ParsedFile]:
        """Parse ``files`` (path, file id), yielding one :class:`ParsedFile` per file in the given order (an engine
        that chunks along the way uses ``chunking``); advances the ``files`` progress stage once per file."""
        ...

    def embed(self, texts: Sequence[str], progress: ProgressReporter) -> np.ndarray:
        """Embed ``texts`` into a ``(len(texts), dimension)`` float32 array, rows in input order; advances the
        ``embeddings`` stage (which the caller has started)."""
        ...

    def close(self) -> None:
        """Release what the engine started for a run (a local Ray instance); the engine may be used again."""
        ...
