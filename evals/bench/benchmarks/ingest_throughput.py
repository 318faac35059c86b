"""Ingestion throughput vs pure embedding throughput of the same chunks, measured side by side in one run.

    .venv/bin/python -m evals.bench.benchmarks.ingest_throughput [--corpus ../shared/eval/musique/corpus.jsonl]

Ingests the corpus into a fresh store (offline extractor; chunking, embedding, FAISS, BM25, graph, snapshot publish),
then embeds exactly the same chunk texts with the same embedder and batch size, and prints both throughputs and
their ratio (the goal is >= 0.8: ingestion costs little beyond the embedding it must do). The order alternates over
``--rounds`` so that a warm cache or a noisy neighbour does not favour one side.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from core.settings import load_settings
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store
from pipelines.ingest.ingestor import embedding_text

DEFAULT_CORPUS = Path(__file__).resolve().parents[4] / "shared" / "eval" / "musique" / "corpus.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    settings = load_settings()
    embedder = load_embedder(settings)
    embedder.embed(["warm up the model"] * 8)
    ingest_s: list[float] = []
    embed_s: list[float] = []
    texts: list[str] = []
    stages: dict[str, float] = {}
    for round_no in range(args.rounds):
        order = ["ingest", "embed"] if round_no % 2 == 0 or not texts else ["embed", "ingest"]
        for side in order:
            if side == "embed":
                t0 = time.perf_counter()
                for i in range(0, len(texts), 256):  # the ingestor's batch size
                    embedder.embed(texts[i : i + 256])
                embed_s.append(time.perf_counter() - t0)
                continue
            with tempfile.TemporaryDirectory(prefix="kgrag-bench-") as tmp:
                store = open_store(settings, embedder, create=True, store_dir=Path(tmp) / "store")
                t0 = time.perf_counter()
                report = build_ingestor(settings, store, embedder).ingest([args.corpus])
                ingest_s.append(time.perf_counter() - t0)
                stages = report.durations_s
                texts = [embedding_text(c) for c in store.chunks.iter_chunks()]
                store.close()
    chunks = len(texts)
    ingest_rate = chunks / min(ingest_s)
    embed_rate = chunks / min(embed_s)
    result = {
        "corpus": str(args.corpus),
        "chunks": chunks,
        "ingest_s": [round(s, 2) for s in ingest_s],
        "embed_only_s": [round(s, 2) for s in embed_s],
        "ingest_chunks_per_s": round(ingest_rate, 1),
        "embed_chunks_per_s": round(embed_rate, 1),
        "ratio_ingest_over_embed": round(ingest_rate / embed_rate, 3),
        "last_ingest_stages_s": stages,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
