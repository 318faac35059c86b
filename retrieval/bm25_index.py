"""BM25 keyword index over chunk texts (``bm25s``), with English stopwords and a light plural stemmer.

The index keeps each chunk's term counts (the *term table*) beside bm25s' score matrix, and computes the Lucene BM25
scores from it itself, vectorised: the very scores ``bm25s.BM25(method="lucene").index`` gives (tested, query by
query), in under a third of its indexing time (about 50 against 180 ms for 10k chunks, tokenising aside). So
removing chunks (``kgrag delete``) re-scores the remaining ones from their counts, exactly as a rebuild would,
without reading or tokenising any text.

The directory holds the manifest and the term table (format 2); the score matrix is made from the table when the
index is first searched (about 50 ms for 10k chunks). So a delete, which only changes the table, never imports
bm25s and SciPy (0.15-0.2 s): bm25s is imported by :func:`_bm25s` when text is tokenised, an index is searched, or
a format-1 index without a term table (bm25s' own arrays) is read or saved.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from core.errors import InputError, StoreCorruptError

if TYPE_CHECKING:
    import bm25s

logger = logging.getLogger(__name__)

MANIFEST_NAME = "kgrag_bm25.json"
#: 2: the manifest and the term table. 1 (still read): bm25s' arrays, with the term table when the manifest says
#: ``"term_table": true``; one without it loads and searches alike, and is rebuilt rather than updated.
FORMAT_VERSION = 2
LEGACY_FORMAT = 1
TERMS_NAME = "kgrag_bm25_terms.npz"
#: bm25s' Lucene defaults.
K1, B = 1.5, 0.75
#: Names the tokenisation below; an index saved with another tokenizer is rejected on load.
TOKENIZER = "bm25s-en_plus-stopwords+light-plural-v1"
TOKEN_PATTERN = r"(?u)\b\w+\b"


def _bm25s() -> ModuleType:
    """bm25s, imported when first needed (with SciPy, 0.15-0.2 s: a delete needs neither)."""
    import bm25s

    return bm25s


def light_stem(tokens: list[str]) -> list[str]:
    """Fold common English plural endings (``policies -> policy``, ``refunds -> refund``); nothing else."""
    out: list[str] = []
    for token in tokens:
        if len(token) > 4 and token.endswith("ies"):
            token = token[:-3] + "y"
        elif len(token) > 4 and token.endswith("sses"):
            token = token[:-2]
        elif len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
            token = token[:-1]
        out.append(token)
    return out


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Lower-case word tokens with English stopwords removed and plurals folded, one list per text."""
    result = _bm25s().tokenize(
        list(texts),
        lower=True,
        token_pattern=TOKEN_PATTERN,
        stopwords="en_plus",
        stemmer=light_stem,
        return_ids=False,
        show_progress=False,
    )
    return [list(tokens) for tokens in result]


@dataclass(frozen=True)
class _Terms:
    """Term counts of the indexed chunks, one CSR row per chunk (in index order): what the scores are made from."""

    vocab: dict[str, int]
    indptr: np.ndarray  # int64, rows + 1
    terms: np.ndarray  # int32 term ids
    counts: np.ndarray  # int32 occurrences of each term in its chunk

    @classmethod
    def of(cls, token_lists: Iterable[list[str]]) -> _Terms:
        vocab: dict[str, int] = {}
        indptr: list[int] = [0]
        terms: list[int] = []
        counts: list[int] = []
        for tokens in token_lists:
            counted = Counter(vocab.setdefault(token, len(vocab)) for token in tokens)
            terms.extend(counted)
            counts.extend(counted.values())
            indptr.append(len(terms))
        return cls(vocab, np.asarray(indptr, np.int64), np.asarray(terms, np.int32), np.asarray(counts, np.int32))

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    def without(self, rows: np.ndarray) -> _Terms:
        """These counts less the ``rows`` (positions); the vocabulary stays (a term no chunk has scores nothing)."""
        keep = np.ones(self.rows, dtype=bool)
        keep[rows] = False
        lengths = np.diff(self.indptr)
        entries = np.repeat(keep, lengths)
        indptr = np.zeros(int(keep.sum()) + 1, dtype=np.int64)
        np.cumsum(lengths[keep], out=indptr[1:])
        return _Terms(self.vocab, indptr, self.terms[entries], self.counts[entries])

    def model(self) -> bm25s.BM25 | None:
        """The bm25s Lucene model of these counts (``None`` when no chunk has a term), scored as
        ``BM25.index`` scores them: idf ``log(1 + (N - df + 0.5) / (df + 0.5))``, term part
        ``tf / (k1 * (1 - b + b * dl / avgdl) + tf)`` in float64, each score stored as float32."""
        if len(self.terms) == 0:
            return None
        n = self.rows
        lengths = np.diff(self.indptr)
        row_of = np.repeat(np.arange(n, dtype=np.int32), lengths)
        doc_len = np.bincount(row_of, weights=self.counts, minlength=n)  # tokens per chunk (float64)
        avg_len = doc_len.mean()
        df = np.bincount(self.terms, minlength=len(self.vocab))
        idf = np.zeros(len(self.vocab), dtype=np.float32)
        for term in np.flatnonzero(df):  # math.log, as bm25s computes it, term by term
            idf[term] = math.log(1 + (n - int(df[term]) + 0.5) / (int(df[term]) + 0.5))
        tf = self.counts.astype(np.float64)
        tfc = tf / ((K1 * ((1 - B) + B * doc_len / avg_len))[row_of] + tf)
        scores = (idf[self.terms].astype(np.float64) * tfc).astype(np.float32)
        model = _bm25s().BM25(method="lucene", k1=K1, b=B, backend="numpy")
        model.vocab_dict = {**self.vocab, "": len(self.vocab)} if "" not in self.vocab else dict(self.vocab)
        columns = len(model.vocab_dict)  # the vocabulary and bm25s' empty token (scores nothing)
        order = np.argsort(self.terms, kind="stable")  # CSC: by term, chunks ascending within a term
        indptr = np.zeros(columns + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.terms, minlength=columns), out=indptr[1:])
        model.scores = {"data": scores[order], "indices": row_of[order], "indptr": indptr, "num_docs": n}
        model.unique_token_ids_set = set(model.vocab_dict.values())
        model.nonoccurrence_array = None
        return model

    def save(self, directory: Path) -> None:
        np.savez(
            directory / TERMS_NAME,
            indptr=self.indptr,
            terms=self.terms,
            counts=self.counts,
            vocab=np.asarray(json.dumps(self.vocab, ensure_ascii=False)),
        )

    @classmethod
    def load(cls, directory: Path, rows: int) -> _Terms:
        with np.load(directory / TERMS_NAME) as arrays:
            vocab = json.loads(str(arrays["vocab"]))
            terms = cls(vocab, arrays["indptr"], arrays["terms"], arrays["counts"])
        if not isinstance(vocab, dict) or terms.rows != rows or len(terms.terms) != len(terms.counts):
            raise ValueError(f"the term table does not match the index's {rows} chunk ids")
        if len(terms.terms) and (terms.terms.min() < 0 or terms.terms.max() >= len(vocab)):
            raise ValueError("the term table names terms outside its vocabulary")
        return terms


class Bm25Index:
    """A BM25 (Lucene variant) index over chunk texts keyed by chunk id, persisted in the directory ``path``.

    ``rebuild`` replaces the whole index; ``remove`` drops chunks and re-scores the rest from their term counts (BM25
    statistics are corpus-wide, so every score changes), giving the index a rebuild over the remaining texts would
    give. ``save`` writes a temporary directory next to ``path`` and swaps it in; the constructor loads ``path`` if it
    exists. Scores are only reported when positive: a query with no indexed term returns ``[]``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._chunk_ids: list[str] = []
        self._model: bm25s.BM25 | None = None
        self._terms: _Terms | None = _Terms.of([])
        #: Whether :attr:`_model` scores :attr:`_terms` (else it is made at the next search).
        self._scored = True
        self._recover_interrupted_save()
        if self.path.exists():
            self._load()

    # ----- building and searching -----

    def rebuild(self, chunk_ids: Sequence[str], texts: Sequence[str]) -> None:
        """Replace the index with ``texts``, the text of each chunk in ``chunk_ids`` (same order)."""
        ids = list(chunk_ids)
        docs = list(texts)
        if len(ids) != len(docs):
            raise InputError(f"got {len(ids)} chunk ids for {len(docs)} texts")
        if len(set(ids)) != len(ids):
            raise InputError("chunk ids passed to the BM25 index are not unique")
        terms = _Terms.of(tokenize(docs))
        with self._lock:
            self._chunk_ids = ids
            self._model, self._scored = None, False
            self._terms = terms

    @property
    def updatable(self) -> bool:
        """Whether :meth:`remove` can update the index (it has its term table: not an index saved without one)."""
        with self._lock:
            return self._terms is not None

    def remove(self, chunk_ids: Iterable[str]) -> None:
        """Drop these chunks (ids not in the index are ignored) and re-score the others: the index ``rebuild`` of
        the remaining chunks' texts, in the same order, would give. Needs :attr:`updatable`."""
        with self._lock:
            if self._terms is None:
                raise InputError(f"the BM25 index in {self.path} was saved without its term table: rebuild it instead")
            gone = set(chunk_ids)
            rows = np.asarray([i for i, c in enumerate(self._chunk_ids) if c in gone], dtype=np.int64)
            if len(rows) == 0:
                return
            self._terms = self._terms.without(rows)
            self._model, self._scored = None, False
            self._chunk_ids = [c for c in self._chunk_ids if c not in gone]

    def chunk_ids(self) -> list[str]:
        """The indexed chunk ids, in index order."""
        with self._lock:
            return list(self._chunk_ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k ``(chunk_id, score)`` with score > 0, best first; ``[]`` when no query term is indexed."""
        if k < 1:
            return []
        with self._lock:
            if not self._scored:
                assert self._terms is not None  # only a legacy index has no term table, and it is scored
                self._model, self._scored = self._terms.model(), True
            model = self._model
            chunk_ids = self._chunk_ids
        if model is None:
            return []
        (tokens,) = tokenize([query])
        token_ids = model.get_tokens_ids(tokens)
        if not token_ids:
            return []
        scores = np.asarray(model.get_scores_from_ids(token_ids), dtype=np.float64)
        positive = np.flatnonzero(scores > 0)
        order = positive[np.argsort(-scores[positive], kind="stable")][:k]
        return [(chunk_ids[int(i)], float(scores[int(i)])) for i in order]

    def __len__(self) -> int:
        with self._lock:
            return len(self._chunk_ids)

    # ----- persistence -----

    def save(self) -> None:
        """Persist into the directory ``path``: write a temp directory beside it, then swap it in. The term table
        is what is saved (format 2); an index loaded without one (format 1, not rebuilt since) is saved as it was,
        as bm25s' arrays."""
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
        try:
            with self._lock:
                manifest: dict[str, Any] = {
                    "format": FORMAT_VERSION if self._terms is not None else LEGACY_FORMAT,
                    "tokenizer": TOKENIZER,
                    "chunk_ids": list(self._chunk_ids),
                    "term_table": self._terms is not None,
                }
                if self._terms is not None:
                    self._terms.save(tmp)
                else:
                    manifest["has_model"] = self._model is not None
                    if self._model is not None:
                        self._model.save(str(tmp), show_progress=False)
            # The manifest is written last: a directory without it is never a complete index.
            (tmp / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
            self._swap_in(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _backup_path(self) -> Path:
        return self.path.with_name(f".{self.path.name}.old")

    def _swap_in(self, new_dir: Path) -> None:
        backup = self._backup_path()
        if backup.exists():
            shutil.rmtree(backup)
        if self.path.exists():
            self.path.rename(backup)
        new_dir.rename(self.path)
        shutil.rmtree(backup, ignore_errors=True)

    def _recover_interrupted_save(self) -> None:
        """If a save stopped between its two renames, put the previous index back."""
        backup = self._backup_path()
        if backup.exists() and not self.path.exists():
            logger.warning("restoring BM25 index %s from %s after an interrupted save", self.path, backup)
            backup.rename(self.path)

    def _load(self) -> None:
        manifest_path = self.path / MANIFEST_NAME
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StoreCorruptError(
                f"cannot read the BM25 index manifest {manifest_path}: {exc}",
                hint="re-run ingestion to rebuild the store",
            ) from exc
        if not isinstance(manifest, dict) or manifest.get("format") not in (FORMAT_VERSION, LEGACY_FORMAT):
            raise StoreCorruptError(f"unsupported BM25 index format in {manifest_path}")
        if manifest.get("tokenizer") != TOKENIZER:
            raise StoreCorruptError(
                f"the BM25 index in {self.path} was built with tokenizer {manifest.get('tokenizer')!r}, "
                f"this version uses {TOKENIZER!r}",
                hint="re-run ingestion to rebuild the store",
            )
        chunk_ids = manifest.get("chunk_ids")
        if not isinstance(chunk_ids, list) or not all(isinstance(c, str) for c in chunk_ids):
            raise StoreCorruptError(f"the BM25 index manifest {manifest_path} has no valid chunk_ids list")
        with_terms = manifest.get("term_table") is True
        if manifest["format"] == FORMAT_VERSION and not with_terms:
            raise StoreCorruptError(f"the BM25 index manifest {manifest_path} names no term table")
        model: bm25s.BM25 | None = None
        if manifest.get("has_model") and not with_terms:  # format 1 without a term table: bm25s' own arrays
            try:
                model = _bm25s().BM25.load(str(self.path), show_progress=False)
            except Exception as exc:
                raise StoreCorruptError(
                    f"cannot read the BM25 index in {self.path}: {exc}",
                    hint="re-run ingestion to rebuild the store",
                ) from exc
            num_docs = model.scores.get("num_docs")
            if num_docs != len(chunk_ids):
                raise StoreCorruptError(
                    f"the BM25 index in {self.path} holds {num_docs} documents "
                    f"but its manifest lists {len(chunk_ids)} chunk ids",
                    hint="re-run ingestion to rebuild the store",
                )
        terms: _Terms | None = None
        if with_terms:  # the scores are made from it at the first search (format 1's arrays are not read)
            try:
                terms = _Terms.load(self.path, len(chunk_ids))
            except (OSError, ValueError, KeyError) as exc:
                raise StoreCorruptError(
                    f"cannot read the BM25 term table in {self.path}: {exc}",
                    hint="re-run ingestion to rebuild the store",
                ) from exc
        with self._lock:
            self._chunk_ids = list(chunk_ids)
            self._model, self._scored = model, terms is None
            self._terms = terms

    def clear(self) -> None:
        """Empty the index in memory (``save()`` persists the empty index)."""
        with self._lock:
            self._chunk_ids = []
            self._model, self._scored = None, True
            self._terms = _Terms.of([])


__all__ = ["Bm25Index", "light_stem", "tokenize"]
