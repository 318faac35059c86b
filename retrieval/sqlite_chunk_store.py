"""Documents and chunks in one SQLite file: the citation source of truth and the chunk <-> vector id mapping."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.errors import InputError
from core.sqlite import open_sqlite
from core.types import Chunk, Document

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    media_type TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    vector_id INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    document_id TEXT NOT NULL REFERENCES documents(id),
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    "start" INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    ordinal INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_by_document ON chunks(document_id, ordinal);
"""

_CHUNK_COLUMNS = 'vector_id, id, document_id, source, title, text, "start", "end", ordinal, sha256'
_DOCUMENT_COLUMNS = "id, source, title, text, sha256, media_type"
#: Stay well under SQLite's limit on bound parameters per statement.
_BATCH = 500
_ITER_PAGE = 1000


def _chunk(row: Sequence[Any]) -> Chunk:
    return Chunk(
        id=row[1],
        document_id=row[2],
        source=row[3],
        title=row[4],
        text=row[5],
        start=row[6],
        end=row[7],
        ordinal=row[8],
        sha256=row[9],
    )


def _document(row: Sequence[Any]) -> Document:
    return Document(id=row[0], source=row[1], title=row[2], text=row[3], sha256=row[4], media_type=row[5])


class SqliteChunkStore:
    """Stores documents and their chunks in the SQLite file ``path``; each chunk gets an int vector id.

    Vector ids come from an ``AUTOINCREMENT`` key, so an id is never handed out twice, even after the chunk that
    held it was deleted: a stale id in the vector index can never point at a different chunk. One connection is
    shared by all threads and serialised by a lock.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn = open_sqlite(
            self.path,
            schema=_SCHEMA,
            autocommit=True,
            # synchronous OFF: a private copy published atomically later, commits need not reach the disk each time
            pragmas=("foreign_keys = ON",) + (() if durable else ("synchronous = OFF",)),
            error="the chunk store {path} is not a readable SQLite database: {exc}",
            hint="re-run ingestion into a new store directory",
        )

    # ----- writing -----

    def put_document(self, document: Document, chunks: Sequence[Chunk]) -> tuple[list[int], list[int]]:
        """Store a document and its chunks, replacing any older version of the same document id.

        Returns ``(vector_ids, replaced_vector_ids)``: the new vector id of each chunk, in order, and the vector
        ids of the older version's chunks that were removed. Everything happens in one transaction.
        """
        self._validate(document, chunks)

        with self._lock, self._transaction():
            replaced = self._delete_locked(document.id)
            self._conn.execute(
                f"INSERT INTO documents ({_DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                (document.id, document.source, document.title, document.text, document.sha256, document.media_type),
            )
            vector_ids: list[int] = []
            for chunk in chunks:
                try:
                    cursor = self._conn.execute(
                        'INSERT INTO chunks (id, document_id, source, title, text, "start", "end", ordinal, sha256) '
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            chunk.id,
                            chunk.document_id,
                            chunk.source,
                            chunk.title,
                            chunk.text,
                            chunk.start,
                            chunk.end,
                            chunk.ordinal,
                            chunk.sha256,
                        ),
                    )
                except sqlite3.IntegrityError as exc:
                    raise InputError(
                        f"chunk id {chunk.id} is already used by another document",
                        hint="chunk ids must be unique across the store",
                    ) from exc
                assert cursor.lastrowid is not None
                vector_ids.append(int(cursor.lastrowid))
        return vector_ids, replaced

    def update_document(
        self, document: Document, chunks: Sequence[Chunk]
    ) -> tuple[list[int], list[bool], list[tuple[str, int]]]:
        """Store a new version of a document, keeping the rows (and vector ids) of chunks whose id is unchanged.

        Chunk ids are content-addressed, so an unchanged id means unchanged text; its offsets and ordinal are
        updated. Returns ``(vector_ids, kept, removed)``: the vector id of each chunk in order, whether each chunk
        was already stored, and ``(chunk id, vector id)`` of the older version's chunks that are gone.
        """
        self._validate(document, chunks)
        with self._lock, self._transaction():
            old = dict(
                self._conn.execute("SELECT id, vector_id FROM chunks WHERE document_id = ?", (document.id,)).fetchall()
            )
            self._conn.execute(
                f"INSERT INTO documents ({_DOCUMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                "source = excluded.source, title = excluded.title, text = excluded.text, sha256 = excluded.sha256, "
                "media_type = excluded.media_type",
                (document.id, document.source, document.title, document.text, document.sha256, document.media_type),
            )
            new_ids = {c.id for c in chunks}
            removed = [(cid, int(vid)) for cid, vid in old.items() if cid not in new_ids]
            self._conn.executemany("DELETE FROM chunks WHERE id = ?", [(cid,) for cid, _ in removed])
            vector_ids: list[int] = []
            kept: list[bool] = []
            for chunk in chunks:
                values = (chunk.source, chunk.title, chunk.text, chunk.start, chunk.end, chunk.ordinal, chunk.sha256)
                if chunk.id in old:
                    self._conn.execute(
                        'UPDATE chunks SET source = ?, title = ?, text = ?, "start" = ?, "end" = ?, ordinal = ?, '
                        "sha256 = ? WHERE id = ?",
                        (*values, chunk.id),
                    )
                    vector_ids.append(int(old[chunk.id]))
                    kept.append(True)
                    continue
                try:
                    cursor = self._conn.execute(
                        'INSERT INTO chunks (id, document_id, source, title, text, "start", "end", ordinal, sha256) '
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (chunk.id, chunk.document_id, *values),
                    )
                except sqlite3.IntegrityError as exc:
                    raise InputError(
                        f"chunk id {chunk.id} is already used by another document",
                        hint="chunk ids must be unique across the store",
                    ) from exc
                assert cursor.lastrowid is not None
                vector_ids.append(int(cursor.lastrowid))
                kept.append(False)
        return vector_ids, kept, removed

    def _validate(self, document: Document, chunks: Sequence[Chunk]) -> None:
        for chunk in chunks:
            if chunk.document_id != document.id:
                raise InputError(f"chunk {chunk.id} belongs to document {chunk.document_id}, not {document.id}")
            if not 0 <= chunk.start <= chunk.end <= len(document.text):
                raise InputError(f"chunk {chunk.id} spans [{chunk.start}, {chunk.end}) outside document {document.id}")
            if document.text[chunk.start : chunk.end] != chunk.text:
                raise InputError(f"chunk {chunk.id} text is not document {document.id} text[start:end]")
        if len({c.id for c in chunks}) != len(chunks):
            raise InputError(f"duplicate chunk ids in document {document.id}")

    def delete_document(self, document_id: str) -> list[int]:
        """Delete a document and its chunks; return the removed chunks' vector ids (``[]`` if it was absent)."""
        with self._lock, self._transaction():
            return self._delete_locked(document_id)

    def _delete_locked(self, document_id: str) -> list[int]:
        rows = self._conn.execute(
            "SELECT vector_id FROM chunks WHERE document_id = ? ORDER BY ordinal, vector_id", (document_id,)
        ).fetchall()
        self._conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
        self._conn.execute("DELETE FROM documents WHERE id = ?", (document_id,))
        return [int(row[0]) for row in rows]

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises. Call with the lock held."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ----- reading -----

    def get_document(self, document_id: str) -> Document | None:
        """The document with this id, or ``None``."""
        with self._lock:
            row = self._conn.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE id = ?", (document_id,)
            ).fetchone()
        return _document(row) if row else None

    def list_documents(self) -> list[Document]:
        """Every stored document, ordered by id."""
        with self._lock:
            rows = self._conn.execute(f"SELECT {_DOCUMENT_COLUMNS} FROM documents ORDER BY id").fetchall()
        return [_document(row) for row in rows]

    def get_chunk(self, chunk_id: str) -> Chunk | None:
        """The chunk with this id, or ``None``."""
        with self._lock:
            row = self._conn.execute(f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE id = ?", (chunk_id,)).fetchone()
        return _chunk(row) if row else None

    def chunks_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, Chunk]:
        """Map each known vector id to its chunk; unknown ids are left out."""
        result: dict[int, Chunk] = {}
        for row in self._select_in("vector_id", [int(v) for v in vector_ids]):
            result[int(row[0])] = _chunk(row)
        return result

    def chunk_ids_by_vector_ids(self, vector_ids: Sequence[int]) -> dict[int, str]:
        """Map each known vector id to its chunk's id (the texts are not read); unknown ids are left out."""
        rows = self._select_in("vector_id", [int(v) for v in vector_ids], columns="vector_id, id")
        return {int(vector_id): chunk_id for vector_id, chunk_id in rows}

    def get_chunks(self, chunk_ids: Sequence[str]) -> dict[str, Chunk]:
        """Map each known chunk id to its chunk; unknown ids are left out."""
        return {row[1]: _chunk(row) for row in self._select_in("id", list(chunk_ids))}

    def _select_in(self, column: str, keys: list[Any], columns: str = _CHUNK_COLUMNS) -> list[Sequence[Any]]:
        """``columns`` of the chunks whose ``column`` is one of ``keys``, in batches under SQLite's parameter limit."""
        rows: list[Sequence[Any]] = []
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(unique), _BATCH):
                batch = unique[i : i + _BATCH]
                marks = ", ".join("?" * len(batch))
                rows.extend(
                    self._conn.execute(f"SELECT {columns} FROM chunks WHERE {column} IN ({marks})", batch).fetchall()
                )
        return rows

    def iter_chunks(self) -> Iterator[Chunk]:
        """Every chunk, in vector id (insertion) order, read page by page."""
        last = -1
        while True:
            with self._lock:
                rows = self._conn.execute(
                    f"SELECT {_CHUNK_COLUMNS} FROM chunks WHERE vector_id > ? ORDER BY vector_id LIMIT ?",
                    (last, _ITER_PAGE),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                yield _chunk(row)
            last = int(rows[-1][0])

    def chunk_ids(self) -> list[str]:
        """Every chunk id, in vector id order (that of :meth:`iter_chunks`); no texts are read."""
        with self._lock:
            return [str(row[0]) for row in self._conn.execute("SELECT id FROM chunks ORDER BY vector_id")]

    def document_hashes(self) -> dict[str, str]:
        """``document id -> sha256`` of every stored document (one query; no texts are read)."""
        with self._lock:
            return dict(self._conn.execute("SELECT id, sha256 FROM documents").fetchall())

    def chunk_ids_for_document(self, document_id: str) -> list[str]:
        """The ids of a document's chunks, in chunk order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal, vector_id", (document_id,)
            ).fetchall()
        return [str(row[0]) for row in rows]

    def document_count(self) -> int:
        """How many documents are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def chunk_count(self) -> int:
        """How many chunks are stored."""
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    # ----- lifecycle -----

    def flush_to_disk(self) -> None:
        """Move the write-ahead log into the database file and fsync it (before the file is published)."""
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        with self.path.open("rb") as handle:
            os.fsync(handle.fileno())

    def close(self) -> None:
        """Close the connection; the store cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteChunkStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
