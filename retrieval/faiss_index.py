"""Exhaustive inner-product vector index (FAISS ``IndexIDMap2`` over a flat index), persisted to one file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import faiss
import numpy as np

from core.errors import ConfigurationError, InputError, StoreCorruptError
from core.settings import VectorPrecision


class FaissVectorIndex:
    """Vectors keyed by int64 ids with exhaustive inner-product search; deletes by id; saved atomically to ``path``.

    Vectors are expected to be L2-normalised so that the inner product is the cosine similarity. If ``path``
    exists it is loaded; otherwise the index starts empty and ``save()`` creates the file. All methods are
    guarded by a lock, so one instance can be shared by request threads.

    ``search_threads`` sets FAISS's OpenMP thread count (process-wide, like the embedder's torch threads). The
    default 1 suits one query at a time: an exact search over 100k vectors took 7 ms on one thread and 70 ms on two
    when the cores were shared (OpenMP threads spin waiting for each other); ``None`` leaves FAISS's default.

    ``precision`` chooses how a *new* index stores vectors: ``float32`` (``IndexFlatIP``, exact) or ``float16``
    (``IndexScalarQuantizer`` fp16: every vector is still compared with the query, on half the bytes). An existing
    file keeps the precision it was written with (``precision`` then reports the file's); re-ingest into a new store
    to change it.
    """

    def __init__(
        self, path: Path, dimension: int, search_threads: int | None = 1, precision: VectorPrecision = "float32"
    ) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector index dimension must be positive, got {dimension}")
        if search_threads is not None:
            if search_threads < 1:
                raise ConfigurationError(f"FAISS search_threads must be at least 1, got {search_threads}")
            faiss.omp_set_num_threads(search_threads)
        self.path = Path(path)
        self.dimension = dimension
        self._lock = threading.RLock()
        self._index: faiss.IndexIDMap2
        if self.path.exists():
            self._index = self._load()
        else:
            self._index = faiss.IndexIDMap2(_flat_index(dimension, precision))
        self.precision: VectorPrecision = _precision_of(self._index) or precision
        self._ids: set[int] = {int(i) for i in faiss.vector_to_array(self._index.id_map)}

    def _load(self) -> faiss.IndexIDMap2:
        try:
            index = faiss.read_index(str(self.path))
        except Exception as exc:
            raise StoreCorruptError(
                f"cannot read the vector index file {self.path}: {exc}",
                hint="re-run ingestion to rebuild the store, or remove the file",
            ) from exc
        if not isinstance(index, faiss.IndexIDMap2):
            raise StoreCorruptError(
                f"the vector index file {self.path} holds a {type(index).__name__}, expected IndexIDMap2",
                hint="re-run ingestion to rebuild the store",
            )
        if _precision_of(index) is None:
            raise StoreCorruptError(
                f"the vector index file {self.path} holds vectors in a "
                f"{type(faiss.downcast_index(index.index)).__name__}, expected a flat float32 or float16 index",
                hint="re-run ingestion to rebuild the store",
            )
        if index.d != self.dimension:
            raise ConfigurationError(
                f"the vector index file {self.path} has dimension {index.d}, "
                f"but the embedder produces dimension {self.dimension}",
                hint="use the embedding model the store was built with, or re-ingest into a new store",
            )
        return index

    def add(self, ids: Sequence[int], vectors: np.ndarray) -> None:
        """Add ``vectors`` (shape ``(len(ids), dimension)``) under ``ids``; an id already present is an error."""
        id_array = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        matrix = np.asarray(vectors, dtype=np.float32)
        if matrix.ndim == 1 and id_array.size == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2 or matrix.shape[1] != self.dimension:
            raise InputError(
                f"vectors of shape {matrix.shape} do not match the index dimension {self.dimension}",
                hint="embed with the model the store was built with",
            )
        if matrix.shape[0] != id_array.size:
            raise InputError(f"got {id_array.size} ids for {matrix.shape[0]} vectors")
        if id_array.size == 0:
            return
        new_ids = [int(i) for i in id_array]
        if len(set(new_ids)) != len(new_ids):
            raise InputError("duplicate ids in one add() call")
        with self._lock:
            clash = self._ids.intersection(new_ids)
            if clash:
                raise InputError(
                    f"{len(clash)} vector id(s) already in the index, e.g. {min(clash)}",
                    hint="remove the old vectors first",
                )
            self._index.add_with_ids(np.ascontiguousarray(matrix), id_array)
            self._ids.update(new_ids)

    def remove(self, ids: Sequence[int]) -> int:
        """Remove vectors by id; return how many were removed (ids not present are ignored)."""
        id_array = np.asarray(list(ids), dtype=np.int64).reshape(-1)
        if id_array.size == 0:
            return 0
        with self._lock:
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(id_array)))
            self._ids.difference_update(int(i) for i in id_array)
            return removed

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Top-k ``(id, inner product)`` for one query vector, best first; ``[]`` on an empty index."""
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dimension:
            raise InputError(f"query vector has dimension {query.shape[1]}, the index has dimension {self.dimension}")
        if k < 1:
            return []
        with self._lock:
            total = int(self._index.ntotal)
            if total == 0:
                return []
            scores, labels = self._index.search(np.ascontiguousarray(query), min(k, total))
        return [(int(i), float(s)) for i, s in zip(labels[0], scores[0], strict=True) if i != -1]

    def __contains__(self, vector_id: object) -> bool:
        return vector_id in self._ids

    def ids(self) -> set[int]:
        """The ids currently in the index (a copy)."""
        with self._lock:
            return set(self._ids)

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    def save(self) -> None:
        """Write the index to ``path`` atomically (a temp file in the same directory, then ``os.replace``)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with self._lock:
                faiss.write_index(self._index, str(tmp))
            with tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def _flat_index(dimension: int, precision: VectorPrecision) -> faiss.Index:
    if precision == "float32":
        return faiss.IndexFlatIP(dimension)
    if precision == "float16":
        return faiss.IndexScalarQuantizer(dimension, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    raise ConfigurationError(f"unknown vector precision {precision!r}", hint="use float32 or float16")


def _precision_of(index: faiss.IndexIDMap2) -> VectorPrecision | None:
    """The precision of an ``IndexIDMap2``'s flat sub-index, or ``None`` for any other kind of index."""
    inner = faiss.downcast_index(index.index)
    if inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None
    if isinstance(inner, faiss.IndexFlat):
        return "float32"
    if isinstance(inner, faiss.IndexScalarQuantizer) and inner.sq.qtype == faiss.ScalarQuantizer.QT_fp16:
        return "float16"
    return None
