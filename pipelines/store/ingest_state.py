"""Per-snapshot bookkeeping of ingestion: which file yielded which documents, and who extracted each chunk."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from core.sqlite import open_sqlite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (file_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, document_ids TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS extracted (chunk_id TEXT PRIMARY KEY, extractor TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_BATCH = 500


@dataclass(frozen=True)
class SourceRecord:
    """What one source file held when it was last ingested: the sha256 of its bytes and its document ids."""

    sha256: str
    document_ids: tuple[str, ...]


class IngestState:
    """The ``state.sqlite`` of one snapshot.

    ``sources`` lets a re-run skip parsing a file whose bytes did not change; ``extracted`` records which extractor
    (name = prompt version and model) produced each chunk's graph facts, ``""`` when extraction failed, so that a
    new prompt or model re-extracts exactly the chunks extracted by another one.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._db = open_sqlite(
            self.path, schema=_SCHEMA, wal=False, error="cannot read {path}: {exc}", hint="re-ingest into a new store"
        )

    # ----- sources -----

    def sources(self) -> dict[str, SourceRecord]:
        """Every recorded source file by file id."""
        rows = self._db.execute("SELECT file_id, sha256, document_ids FROM sources").fetchall()
        return {r[0]: SourceRecord(r[1], tuple(json.loads(r[2]))) for r in rows}

    def put_sources(self, records: dict[str, SourceRecord]) -> None:
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO sources (file_id, sha256, document_ids) VALUES (?, ?, ?)",
                [(k, v.sha256, json.dumps(list(v.document_ids))) for k, v in records.items()],
            )

    def remove_sources(self, file_ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM sources WHERE file_id = ?", [(f,) for f in file_ids])

    # ----- extraction marks -----

    def mark_extracted(self, marks: dict[str, str]) -> None:
        """Record ``chunk id -> extractor name`` (``""`` for a failed extraction)."""
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO extracted (chunk_id, extractor) VALUES (?, ?)", marks.items())

    def forget_chunks(self, chunk_ids: Iterable[str]) -> None:
        with self._db:
            self._db.executemany("DELETE FROM extracted WHERE chunk_id = ?", [(c,) for c in chunk_ids])

    def stale_chunks(self, extractor: str) -> list[str]:
        """Chunks whose facts came from another extractor, or whose extraction failed."""
        rows = self._db.execute("SELECT chunk_id FROM extracted WHERE extractor != ? ORDER BY chunk_id", (extractor,))
        return [r[0] for r in rows]

    # ----- meta -----

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._db.close()
