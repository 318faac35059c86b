"""A BM25 index as format 1 saved it, for the tests that read one: bm25s' own arrays and the manifest (and the term
table when asked), made through bm25s itself."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import bm25s

from retrieval.bm25_index import TERMS_NAME, TOKENIZER, Bm25Index, tokenize


def save_as_format_1(path: Path, texts: dict[str, str], *, term_table: bool) -> None:
    """Replace the index directory ``path`` with format 1 of ``texts`` (chunk id -> text, in index order): bm25s'
    ``BM25.index`` over our tokens, saved by ``BM25.save``, the manifest, and the term table when ``term_table``."""
    shutil.rmtree(path, ignore_errors=True)
    model = bm25s.BM25(method="lucene", backend="numpy")
    model.index(tokenize(list(texts.values())), show_progress=False)
    model.save(str(path), show_progress=False)
    manifest: dict[str, object] = {"format": 1, "tokenizer": TOKENIZER, "chunk_ids": list(texts), "has_model": True}
    if term_table:
        fresh = Bm25Index(path.with_name(f"{path.name}.fresh"))
        fresh.rebuild(list(texts), list(texts.values()))
        fresh.save()
        shutil.copy(fresh.path / TERMS_NAME, path / TERMS_NAME)
        shutil.rmtree(fresh.path)
        manifest["term_table"] = True
    (path / "kgrag_bm25.json").write_text(json.dumps(manifest))
