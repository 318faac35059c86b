"""What the int8 query encoder costs and buys (``KGRAG_EMBEDDING__QUANTIZE_QUERIES``, on by default).

Questions are embedded by :meth:`retrieval.onnx_embedder.OnnxEmbedder.query_encoder` (the exported model with int8
weights) while the store's passage vectors stay as ingested (full precision); dense and graph recall@5 are compared,
paired, with the full-precision query encoder on the same store, searched exhaustively (so only the encoder differs).
Both retrievers are built by the product's ``build_retriever``, with the setting on and off. Query embedding p50 of
both encoders is measured side by side::

    HF_HUB_OFFLINE=1 .venv/bin/python -m evals.bench.benchmarks.query_quantization \
        --dataset ../shared/eval/musique --store /tmp/vector-index-100k

``--store`` is a store holding the dataset's corpus (for example the one ``vector_index`` builds); it is only read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.settings import load_settings
from evals.bench.harness import CHUNK_POOL, load_questions
from evals.bench.metrics import bootstrap_ci, percentile, recall_at_k
from pipelines.compose.models import load_embedder
from pipelines.compose.retrieval import build_retriever
from pipelines.compose.stores import open_store
from retrieval.graph import GraphRetriever
from retrieval.onnx_embedder import OnnxEmbedder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args()
    settings = load_settings(store_dir=args.store)
    full = load_embedder(settings)
    if not isinstance(full, OnnxEmbedder):
        raise SystemExit("needs the ONNX embedding backend (KGRAG_EMBEDDING__BACKEND=onnx, the default)")
    store = open_store(settings, full, create=False)
    store.vectors.ivf_nprobe = 1 << 30  # every list: an exhaustive search even on a partitioned index
    questions = load_questions(args.dataset)
    mapping = {chunk.id: chunk.document_id for chunk in store.chunks.iter_chunks()}
    quantized = full.query_encoder()
    timings: dict[str, list[float]] = {"full precision": [], "int8": []}
    cosines = []
    for question in questions:
        t0 = time.perf_counter()
        a = full.embed([question.question])[0]
        t1 = time.perf_counter()
        b = quantized.embed([question.question])[0]
        timings["full precision"].append((t1 - t0) * 1000)
        timings["int8"].append((time.perf_counter() - t1) * 1000)
        cosines.append(float(a @ b))
    recall: dict[tuple[str, str], list[float]] = {}
    for name, on in (("full precision", False), ("int8", True)):
        chosen = settings.model_copy(
            update={"embedding": settings.embedding.model_copy(update={"quantize_queries": on})}
        )
        for mode in ("dense", "graph"):
            retriever = build_retriever(chosen, store, full, mode)
            if isinstance(retriever, GraphRetriever):
                retriever.refresh()
            values = []
            for question in questions:
                hits = retriever.retrieve(question.question, top_k=CHUNK_POOL)
                ranked = list(dict.fromkeys(mapping.get(h.chunk.id, h.chunk.id) for h in hits))
                values.append(recall_at_k(ranked, question.gold_passage_ids, 5))
            recall[(name, mode)] = values
    print(f"{len(questions)} questions; query vectors int8 vs full precision: cosine min {min(cosines):.4f}, "
          f"mean {np.mean(cosines):.4f}")  # fmt: skip
    for name, values in timings.items():
        print(f"query embedding p50 {name}: {percentile(values, 50):.2f} ms")
    print(f"speed-up: {percentile(timings['full precision'], 50) / percentile(timings['int8'], 50):.2f}x")
    for mode in ("dense", "graph"):
        delta = bootstrap_ci(
            [a - b for a, b in zip(recall[("int8", mode)], recall[("full precision", mode)], strict=True)]
        )
        print(
            f"{mode}: recall@5 full {100 * np.mean(recall[('full precision', mode)]):.1f}, "
            f"int8 {100 * np.mean(recall[('int8', mode)]):.1f}, "
            f"difference {100 * delta.mean:+.1f} [{100 * delta.ci_low:+.1f}, {100 * delta.ci_high:+.1f}]"
        )
    store.close()


if __name__ == "__main__":
    main()
