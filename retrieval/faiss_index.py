"""Inner-product vector index persisted to one file: exhaustive (FAISS ``IndexIDMap2`` over a flat index) for small
stores, partitioned (an inverted-file index, ``IndexIVF``) once a store is large enough that scanning every vector
dominates a query."""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from core.errors import ConfigurationError, InputError, StoreCorruptError
from core.settings import VectorPrecision

#: ``faiss.DirectMap.Hashtable`` (missing from faiss's type stubs): an id -> position map that reconstructs by id.
_ID_HASHTABLE: int = faiss.DirectMap.Hashtable  # type: ignore[attr-defined]
#: A partitioned index is re-trained when the store has grown so that it would get this many times its lists.
_RETRAIN_GROWTH = 2
#: k-means training sample per inverted list (FAISS asks for at least 39), and its iterations.
_TRAIN_PER_LIST = 40
_TRAIN_ITERATIONS = 10


def ivf_lists(count: int) -> int:
    """Inverted lists for a partitioned index of ``count`` vectors: 2 sqrt(count), about 160 vectors per list at
    100k."""
    return max(1, round(2 * math.sqrt(count)))


@dataclass(frozen=True)
class VectorIndexOptions:
    """How a store's :class:`FaissVectorIndex` keeps and searches vectors (its constructor's keyword arguments)."""

    precision: VectorPrecision = "float32"
    ivf_min_vectors: int = 0
    ivf_nprobe: int = 64


class FaissVectorIndex:
    """Vectors keyed by int64 ids with inner-product search; deletes by id; saved atomically to ``path``.

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

    ``ivf_min_vectors`` (0: never) makes ``save()`` partition an index holding at least that many vectors: k-means
    splits them into ``ivf_lists(n)`` inverted lists, and a query compares itself with the ``ivf_nprobe`` nearest
    lists' vectors only (10 % of them at 100k with the defaults) instead of every vector; the ranking is then
    approximate. ``save()`` also re-trains the lists when the store has grown fourfold since they were trained (so lists
    stay ~160 vectors long), and goes back to an exhaustive index below half the threshold, or when
    ``ivf_min_vectors`` is 0. Adds, removes and reloads work the same on either layout.
    """

    def __init__(
        self,
        path: Path,
        dimension: int,
        search_threads: int | None = 1,
        precision: VectorPrecision = "float32",
        *,
        ivf_min_vectors: int = 0,
        ivf_nprobe: int = 64,
    ) -> None:
        if dimension < 1:
            raise ConfigurationError(f"vector index dimension must be positive, got {dimension}")
        if search_threads is not None:
            if search_threads < 1:
                raise ConfigurationError(f"FAISS search_threads must be at least 1, got {search_threads}")
            faiss.omp_set_num_threads(search_threads)
        if ivf_min_vectors < 0 or ivf_nprobe < 1:
            raise ConfigurationError(
                f"ivf_min_vectors must be >= 0 and ivf_nprobe >= 1, got {ivf_min_vectors} and {ivf_nprobe}"
            )
        self.ivf_min_vectors = ivf_min_vectors
        self.ivf_nprobe = ivf_nprobe
        self.path = Path(path)
        self.dimension = dimension
        self._lock = threading.RLock()
        self._index: faiss.IndexIDMap2 | faiss.IndexIVF
        if self.path.exists():
            self._index = self._load()
        else:
            self._index = faiss.IndexIDMap2(_flat_index(dimension, precision))
        self.precision: VectorPrecision = _precision_of(self._index) or precision
        self._ids: set[int] = _stored_ids(self._index)

    @property
    def partitioned(self) -> bool:
        """Whether the index is partitioned into inverted lists (approximate search) rather than exhaustive."""
        return isinstance(self._index, faiss.IndexIVF)

    @property
    def lists(self) -> int:
        """How many inverted lists a partitioned index has (0 for an exhaustive one)."""
        return int(self._index.nlist) if isinstance(self._index, faiss.IndexIVF) else 0

    def _load(self) -> faiss.IndexIDMap2 | faiss.IndexIVF:
        try:
            index = faiss.read_index(str(self.path))
        except Exception as exc:
            raise StoreCorruptError(
                f"cannot read the vector index file {self.path}: {exc}",
                hint="re-run ingestion to rebuild the store, or remove the file",
            ) from exc
        if not isinstance(index, (faiss.IndexIDMap2, faiss.IndexIVF)):
            raise StoreCorruptError(
                f"the vector index file {self.path} holds a {type(index).__name__}, expected IndexIDMap2 or IndexIVF",
                hint="re-run ingestion to rebuild the store",
            )
        if _precision_of(index) is None:
            held = index.index if isinstance(index, faiss.IndexIDMap2) else index
            raise StoreCorruptError(
                f"the vector index file {self.path} holds vectors in a {type(faiss.downcast_index(held)).__name__}, "
                "expected a flat or inverted-file inner-product index of float32 or float16 vectors",
                hint="re-run ingestion to rebuild the store",
            )
        if index.d != self.dimension:
            raise ConfigurationError(
                f"the vector index file {self.path} has dimension {index.d}, "
                f"but the embedder produces dimension {self.dimension}",
                hint="use the embedding model the store was built with, or re-ingest into a new store",
            )
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = self.ivf_nprobe
            if index.direct_map.type != _ID_HASHTABLE:
                index.set_direct_map_type(_ID_HASHTABLE)  # reconstruct by id, to re-partition
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
            selector: faiss.IDSelector
            if isinstance(self._index, faiss.IndexIVF):  # its id hashtable removes by an explicit array only
                id_array = np.ascontiguousarray(id_array)
                selector = faiss.IDSelectorArray(id_array.size, faiss.swig_ptr(id_array))
            else:
                selector = faiss.IDSelectorBatch(id_array)
            removed = int(self._index.remove_ids(selector))
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
            if isinstance(self._index, faiss.IndexIVF):  # ``ivf_nprobe`` as it is now (benchmarks vary it)
                params = faiss.SearchParametersIVF()
                params.nprobe = min(self.ivf_nprobe, self._index.nlist)
                scores, labels = self._index.search(np.ascontiguousarray(query), min(k, total), params=params)
            else:
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

    def fit_layout(self) -> bool:
        """Partition, re-partition or un-partition the index as its size and ``ivf_min_vectors`` ask (see the class
        docstring); return whether it was rebuilt. ``save()`` calls this first."""
        with self._lock:
            count = int(self._index.ntotal)
            index = self._index
            if isinstance(index, faiss.IndexIVF):
                keep = self.ivf_min_vectors > 0 and 2 * count >= self.ivf_min_vectors
                if keep and ivf_lists(count) < _RETRAIN_GROWTH * index.nlist:
                    return False
                partition = keep
            elif self.ivf_min_vectors > 0 and count >= self.ivf_min_vectors:
                partition = True
            else:
                return False
            ids, vectors = self.all_vectors()
            if partition:
                self._index = _partitioned_index(self.dimension, self.precision, ids, vectors, self.ivf_nprobe)
            else:
                flat = faiss.IndexIDMap2(_flat_index(self.dimension, self.precision))
                flat.add_with_ids(vectors, ids)
                self._index = flat
            return True

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Every stored ``(ids, vectors)``, as stored (float16 vectors come back rounded to float16)."""
        with self._lock:
            if isinstance(self._index, faiss.IndexIVF):
                ids = np.array(sorted(self._ids), dtype=np.int64)
                return ids, np.ascontiguousarray(self._index.reconstruct_batch(ids), dtype=np.float32)
            ids = faiss.vector_to_array(self._index.id_map).astype(np.int64)
            inner = faiss.downcast_index(self._index.index)
            return ids, np.ascontiguousarray(inner.reconstruct_n(0, int(inner.ntotal)), dtype=np.float32)

    def save(self) -> None:
        """Write the index to ``path`` atomically (a temp file in the same directory, then ``os.replace``), after
        :meth:`fit_layout`."""
        self.fit_layout()
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


def _partitioned_index(
    dimension: int, precision: VectorPrecision, ids: np.ndarray, vectors: np.ndarray, nprobe: int
) -> faiss.IndexIVF:
    """An inverted-file index over ``vectors``: spherical k-means lists trained on a seeded sample, ids kept."""
    lists = ivf_lists(len(ids))
    quantizer = faiss.IndexFlatIP(dimension)
    index: faiss.IndexIVF
    if precision == "float32":
        index = faiss.IndexIVFFlat(quantizer, dimension, lists, faiss.METRIC_INNER_PRODUCT)
    else:  # vectors themselves (not residuals) in float16, like the flat float16 index
        index = faiss.IndexIVFScalarQuantizer(
            quantizer, dimension, lists, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT, False
        )
    index.cp.spherical = True
    index.cp.niter = _TRAIN_ITERATIONS
    sample = np.random.default_rng(0).permutation(len(ids))[: _TRAIN_PER_LIST * lists]
    index.train(np.ascontiguousarray(vectors[np.sort(sample)]))
    index.set_direct_map_type(_ID_HASHTABLE)
    index.add_with_ids(vectors, ids)
    index.nprobe = nprobe
    return index


def _stored_ids(index: faiss.IndexIDMap2 | faiss.IndexIVF) -> set[int]:
    if isinstance(index, faiss.IndexIDMap2):
        return {int(i) for i in faiss.vector_to_array(index.id_map)}
    ids: set[int] = set()
    lists = index.invlists
    assert lists is not None  # an IndexIVF always holds its lists
    for number in range(index.nlist):
        size = lists.list_size(number)
        if size:
            ids.update(int(i) for i in faiss.rev_swig_ptr(lists.get_ids(number), size))
    return ids


def _precision_of(index: faiss.IndexIDMap2 | faiss.IndexIVF) -> VectorPrecision | None:
    """The precision of an ``IndexIDMap2``'s flat sub-index or of an inverted-file index, or ``None`` for any other
    kind of index."""
    inner = index if isinstance(index, faiss.IndexIVF) else faiss.downcast_index(index.index)
    if inner.metric_type != faiss.METRIC_INNER_PRODUCT:
        return None
    if isinstance(inner, (faiss.IndexFlat, faiss.IndexIVFFlat)):
        return "float32"
    fp16 = faiss.ScalarQuantizer.QT_fp16
    if isinstance(inner, faiss.IndexScalarQuantizer) and inner.sq.qtype == fp16:
        return "float16"
    if isinstance(inner, faiss.IndexIVFScalarQuantizer) and inner.sq.qtype == fp16 and not inner.by_residual:
        return "float16"
    return None
