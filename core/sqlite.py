"""The one way kgrag opens a SQLite file: shared across threads, WAL journal, schema applied, a damaged file turned
into a :class:`~core.errors.StoreCorruptError` that says what the file is and how to recover."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from core.errors import StoreCorruptError


def open_sqlite(
    path: Path,
    *,
    schema: str,
    error: str,
    hint: str | None = None,
    autocommit: bool = False,
    wal: bool = True,
    pragmas: Sequence[str] = (),
) -> sqlite3.Connection:
    """A connection to ``path`` (its folder created) with ``pragmas``, the WAL journal and ``schema`` applied.

    ``error`` is the message of the StoreCorruptError raised when the file cannot be opened or read; it may name
    ``{path}`` and ``{exc}``. ``autocommit`` opens the connection without implicit transactions.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None if autocommit else "DEFERRED")
    except sqlite3.Error as exc:
        raise StoreCorruptError(error.format(path=path, exc=exc), hint=hint) from exc
    try:
        for pragma in pragmas:
            conn.execute(f"PRAGMA {pragma}")
        if wal:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.executescript(schema)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreCorruptError(error.format(path=path, exc=exc), hint=hint) from exc
    return conn
