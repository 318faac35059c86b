"""The local engine (the default): parse, chunk and embed in this process, one file and one batch at a time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from core.errors import ConfigurationError
from core.settings import ChunkingSettings
from pipelines.ingest.engines.base import EngineName, ParsedFile
from pipelines.ingest.parsers import parse_file
from pipelines.ingest.progress import ProgressReporter
from retrieval.base import Embedder


class LocalEngine:
    """Parses files lazily in order (chunking is left to the driver) and embeds in batches of ``embed_batch``."""

    name: EngineName = "local"

    def __init__(self, embedder: Embedder, embed_batch: int = 256) -> None:
        if embed_batch < 1:
            raise ConfigurationError(f"the embedding batch must be at least 1, got {embed_batch}")
        self.embedder = embedder
        self.embed_batch = embed_batch

    def parse(
        self, files: Sequence[tuple[Path, str]], chunking: ChunkingSettings, progress: ProgressReporter
    ) -> Iterator[ParsedFile]:
        for path, file_id in files:
            parsed = parse_file(path, file_id)
            progress.advance("files")
            yield ParsedFile(path, file_id, parsed)

    def embed(self, texts: Sequence[str], progress: ProgressReporter) -> np.ndarray:
        parts = []
        for i in range(0, len(texts), self.embed_batch):
            batch = list(texts[i : i + self.embed_batch])
            parts.append(self.embedder.embed(batch))
            progress.advance("embeddings", len(batch))
        if not parts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.vstack(parts)

    def close(self) -> None:
        return None
