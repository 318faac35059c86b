"""The audit store: every answer record, written before the answer is returned, never updated in place."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from core.errors import AnswerNotFoundError
from core.types import AnswerRecord


class AuditStore(Protocol):
    """Append-only storage of answer records keyed by answer id."""

    def save(self, record: AnswerRecord) -> None: ...

    def get(self, answer_id: str) -> AnswerRecord: ...

    def count(self) -> int: ...


class SqliteAuditStore:
    """Answer records in an embedded SQLite file; inserting an existing id fails rather than overwrite it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS answers (answer_id TEXT PRIMARY KEY, created_at TEXT NOT NULL,"
            " question TEXT NOT NULL, decision TEXT NOT NULL, record TEXT NOT NULL)"
        )

    def save(self, record: AnswerRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO answers (answer_id, created_at, question, decision, record) VALUES (?, ?, ?, ?, ?)",
                (
                    record.answer_id,
                    record.created_at,
                    record.question,
                    record.provenance.gate.decision,
                    record.model_dump_json(),
                ),
            )

    def get(self, answer_id: str) -> AnswerRecord:
        with self._lock:
            row = self._db.execute("SELECT record FROM answers WHERE answer_id = ?", (answer_id,)).fetchone()
        if row is None:
            raise AnswerNotFoundError(f"no answer with id {answer_id!r}")
        return AnswerRecord.model_validate_json(row[0])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
