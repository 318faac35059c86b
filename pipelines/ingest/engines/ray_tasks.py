"""What Ray workers run for the Ray engine: parse + chunk a batch of files (a stateless task), and embed a batch of
texts (an actor that loads the embedding model once). Importable without Ray; workers import it by name, so
kgrag must be installed on every node of a cluster."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.ingest.chunking import chunk_document
from pipelines.ingest.parsers import parse_file
from retrieval.embedder import SentenceTransformerEmbedder


def parse_and_chunk(batch: dict[str, np.ndarray], max_chars: int, min_chars: int) -> dict[str, Any]:
    """Parse each file of the batch and chunk every document it yields; one pickled (ParsedSource, chunks by
    document id) per file, keyed by the row's position ``i``."""
    results = []
    for path, file_id in zip(batch["path"], batch["file_id"], strict=True):
        parsed = parse_file(Path(str(path)), str(file_id))
        chunks = {d.id: chunk_document(d, max_chars=max_chars, min_chars=min_chars) for d in parsed.documents}
        results.append(pickle.dumps((parsed, chunks), protocol=pickle.HIGHEST_PROTOCOL))
    out = np.empty(len(results), dtype=object)
    out[:] = results
    return {"i": batch["i"], "result": out}


class EmbedActor:
    """A Ray Data actor: loads the sentence-transformers model once, then embeds each batch's ``text`` column."""

    def __init__(self, model_path: str | None, batch_size: int, device: str, num_threads: int) -> None:
        self.embedder = SentenceTransformerEmbedder(
            model_path=Path(model_path) if model_path else None,
            batch_size=batch_size,
            device=device,
            num_threads=num_threads,
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        vectors = self.embedder.embed([str(t) for t in batch["text"]])
        return {"i": batch["i"], "vector": vectors}
