"""Extraction results cached by (chunk text hash, extractor name): a prompt or model change misses the cache.

The extractor name carries the prompt version and model (``llm:extraction.v2:qwen...``, ``offline-v1``). Entries are
content-addressed, so the cache lives outside the snapshots and survives crashes: work done before a ``kill -9``
is not paid for again. Extractions with an error are never cached.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from core.sqlite import open_sqlite
from core.types import Extraction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS extractions (
    chunk_sha256 TEXT NOT NULL, extractor TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (chunk_sha256, extractor)
);
"""
_BATCH = 500
#: Chunk id written into cached payloads; replaced by the id of the chunk that reads the entry.
_PLACEHOLDER = "\x00chunk"


def rebind(extraction: Extraction, chunk_id: str) -> Extraction:
    """The same extraction, attributed to another chunk with the same text."""
    old = extraction.chunk_id
    return extraction.model_copy(
        update={
            "chunk_id": chunk_id,
            "mentions": [
                m.model_copy(update={"chunk_id": chunk_id}) if m.chunk_id == old else m for m in extraction.mentions
            ],
            "facts": [
                f.model_copy(update={"chunk_id": chunk_id}) if f.chunk_id == old else f for f in extraction.facts
            ],
        }
    )


class SqliteExtractionCache:
    """Extractions keyed by ``(chunk sha256, extractor name)`` in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_sqlite(
            self.path,
            schema=_SCHEMA,
            error="cannot read the extraction cache {path}: {exc}",
            hint="delete the file (it is only a cache)",
        )

    def get_many(self, chunk_sha256s: Sequence[str], extractor: str) -> dict[str, Extraction]:
        """Cached extractions by chunk sha256 (chunk id left as a placeholder: use :func:`rebind`)."""
        found: dict[str, Extraction] = {}
        keys = list(dict.fromkeys(chunk_sha256s))
        with self._lock:
            for i in range(0, len(keys), _BATCH):
                batch = keys[i : i + _BATCH]
                marks = ", ".join("?" * len(batch))
                rows = self._db.execute(
                    f"SELECT chunk_sha256, payload FROM extractions WHERE extractor = ? AND chunk_sha256 IN ({marks})",
                    [extractor, *batch],
                ).fetchall()
                for sha, payload in rows:
                    found[sha] = Extraction.model_validate_json(payload)
        return found

    def put_many(self, items: Sequence[tuple[str, Extraction]]) -> None:
        """Store ``(chunk sha256, extraction)`` pairs; failed extractions are ignored."""
        rows = [
            (sha, ex.extractor, rebind(ex, _PLACEHOLDER).model_dump_json()) for sha, ex in items if ex.error is None
        ]
        if not rows:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO extractions (chunk_sha256, extractor, payload) VALUES (?, ?, ?)", rows
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM extractions").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
