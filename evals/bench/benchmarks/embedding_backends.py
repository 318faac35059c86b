"""ONNX Runtime vs PyTorch embedding of the same model, side by side in one run: single queries and bulk passages.

Embeds the MuSiQue questions one at a time (the request path) and a sample of corpus passages in batches (the
ingestion path) with both backends, alternating rounds so both see the same machine load, and checks that the
vectors agree::

    .venv/bin/python -m evals.bench.benchmarks.embedding_backends --passages 500 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from evals.bench.metrics import percentile
from retrieval.base import Embedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.onnx_embedder import OnnxEmbedder

DATASET = Path(__file__).resolve().parents[4] / "shared" / "eval" / "musique"


def _texts(path: Path, field: str, limit: int) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return [str(json.loads(line)[field]) for line in handle if line.strip()][:limit]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--passages", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of each backend (the default setting)")
    args = parser.parse_args()
    questions = _texts(args.dataset / "questions.jsonl", "question", 1000)
    passages = _texts(args.dataset / "corpus.jsonl", "text", args.passages)
    with tempfile.TemporaryDirectory(prefix="kgrag-onnx-") as cache:
        backends: dict[str, Embedder] = {
            "torch": SentenceTransformerEmbedder(num_threads=args.threads),
            "onnx": OnnxEmbedder(num_threads=args.threads, cache_dir=Path(cache)),
        }
        query_ms: dict[str, list[float]] = {name: [] for name in backends}
        bulk_rate: dict[str, list[float]] = {name: [] for name in backends}
        vectors: dict[str, np.ndarray] = {}
        for _ in range(args.rounds):
            for name, embedder in backends.items():
                embedder.embed(questions[:4])  # warm up
                for question in questions:
                    start = time.perf_counter()
                    embedder.embed([question])
                    query_ms[name].append((time.perf_counter() - start) * 1000)
                start = time.perf_counter()
                vectors[name] = embedder.embed(passages)
                bulk_rate[name].append(len(passages) / (time.perf_counter() - start))
    cosine = (vectors["torch"] * vectors["onnx"]).sum(axis=1)
    print(f"{len(questions)} questions one at a time, {len(passages)} passages in batches, {args.rounds} rounds")
    print(f"{'backend':<8}{'query p50 ms':>14}{'query p95 ms':>14}{'passages/s':>12}")
    for name in backends:
        rate = float(np.median(bulk_rate[name]))
        print(f"{name:<8}{percentile(query_ms[name], 50):>14.2f}{percentile(query_ms[name], 95):>14.2f}{rate:>12.1f}")
    speedup = percentile(query_ms["torch"], 50) / percentile(query_ms["onnx"], 50)
    bulk = float(np.median(bulk_rate["onnx"]) / np.median(bulk_rate["torch"]))
    print(f"onnx vs torch: query p50 {speedup:.2f}x faster; bulk throughput ratio {bulk:.2f}")
    print(f"passage vectors: min cosine {cosine.min():.6f}")


if __name__ == "__main__":
    main()
