"""BM25 keyword index over chunk texts (``bm25s``), with English stopwords and a light plural stemmer."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import bm25s
import numpy as np

from core.errors import InputError, StoreCorruptError

logger = logging.getLogger(__name__)

MANIFEST_NAME = "kgrag_bm25.json"
FORMAT_VERSION = 1
#: Names the tokenisation below; an index saved with another tokenizer is rejected on load.
TOKENIZER = "bm25s-en_plus-stopwords+light-plural-v1"
TOKEN_PATTERN = r"(?u)\b\w+\b"


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
    result = bm25s.tokenize(
        list(texts),
        lower=True,
        token_pattern=TOKEN_PATTERN,
        stopwords="en_plus",
        stemmer=light_stem,
        return_ids=False,
        show_progress=False,
    )
    return [list(tokens) for tokens in result]


class Bm25Index:
    """A BM25 (Lucene variant) index over chunk texts keyed by chunk id, persisted in the directory ``path``.

    ``rebuild`` replaces the whole index (BM25 statistics are corpus-wide, so there is no incremental add).
    ``save`` writes a temporary directory next to ``path`` and swaps it in; the constructor loads ``path`` if it
    exists. Scores are only reported when positive: a query with no indexed term returns ``[]``.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._chunk_ids: list[str] = []
        self._model: bm25s.BM25 | None = None
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
        model: bm25s.BM25 | None = None
        corpus_tokens = tokenize(docs)
        if any(corpus_tokens):
            model = bm25s.BM25(method="lucene", backend="numpy")
            model.index(corpus_tokens, show_progress=False)
        with self._lock:
            self._chunk_ids = ids
            self._model = model

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k ``(chunk_id, score)`` with score > 0, best first; ``[]`` when no query term is indexed."""
        if k < 1:
            return []
        with self._lock:
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
        """Persist into the directory ``path``: write a temp directory beside it, then swap it in."""
        parent = self.path.parent
        parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=parent))
        try:
            with self._lock:
                manifest: dict[str, Any] = {
                    "format": FORMAT_VERSION,
                    "tokenizer": TOKENIZER,
                    "chunk_ids": list(self._chunk_ids),
                    "has_model": self._model is not None,
                }
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
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
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
        model: bm25s.BM25 | None = None
        if manifest.get("has_model"):
            try:
                model = bm25s.BM25.load(str(self.path), show_progress=False)
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
        with self._lock:
            self._chunk_ids = list(chunk_ids)
            self._model = model

    def clear(self) -> None:
        """Empty the index in memory (``save()`` persists the empty index)."""
        with self._lock:
            self._chunk_ids = []
            self._model = None


__all__ = ["Bm25Index", "light_stem", "tokenize"]
