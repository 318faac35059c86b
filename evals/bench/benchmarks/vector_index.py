"""Partitioned (IVF) vs exhaustive vector search on a real 100k-chunk store: the recall it costs and the time it saves.

The store holds a benchmark dataset's corpus (default MuSiQue: 1,890 passages) plus distractor chunks up to
``--chunks`` in all: real English paragraphs (80-320 characters) from the docstrings of the Python packages
installed next to kgrag, embedded by the real MiniLM, so the vectors cluster as real embeddings do (random vectors
do not, and no partitioned index can be judged on them). Everything is ingested by the real pipeline with the
default settings, so the store's FAISS index is partitioned as a production store of that size would be
(``KGRAG_RETRIEVAL__VECTOR_IVF_MIN_VECTORS``); an exhaustive index over the very same vectors runs beside it.

For each ``--nprobe`` (lists searched per query) and the exhaustive index, dense and graph mode answer every
question of the dataset; the table gives recall@2/@5 and all-gold@8 of the gold passages (the ``kgrag bench``
definitions), the paired recall@5 difference from the exhaustive index with its 95% bootstrap interval, the top-5
overlap with the exhaustive dense ranking, and p50/p95 of the vector search alone and of a whole retrieval of the
settings' ``top_k`` passages as a request makes it (graph: query embedding, search, linking, PageRank, title bridge)
plus context assembly::

    HF_HUB_OFFLINE=1 .venv/bin/python -m evals.bench.benchmarks.vector_index \
        --dataset /work/shared/eval/musique --store /tmp/vector-index-100k

The store (and the harvested distractors) are kept in ``--store`` and reused by later runs; the first run ingests
~100k chunks (about an hour on two cores, almost all of it embedding).
"""

from __future__ import annotations

import argparse
import ast
import json
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

from core.settings import load_settings
from evals.bench.harness import ALL_GOLD_K, CHUNK_POOL, load_questions
from evals.bench.metrics import all_gold_at_k, bootstrap_ci, percentile, recall_at_k
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.retrieval import build_retriever
from pipelines.compose.stores import open_store
from retrieval.context import ContextAssembler
from retrieval.faiss_index import FaissVectorIndex
from retrieval.graph import GraphRetriever
from retrieval.hybrid import HybridRetriever

_MIN_CHARS, _MAX_CHARS = 80, 320


def harvest_docstrings(root: Path, count: int, seed: int = 0) -> list[str]:
    """Up to ``count`` distinct docstring paragraphs of ``_MIN_CHARS``-``_MAX_CHARS`` characters, mostly letters,
    from the ``.py`` files under ``root`` (visited in a seeded random order)."""
    files = sorted(root.rglob("*.py"))
    random.Random(seed).shuffle(files)
    seen: dict[str, None] = {}
    for file in files:
        try:
            tree = ast.parse(file.read_text("utf-8"))
        except (SyntaxError, ValueError, OSError, RecursionError):  # not Python 3, binary, unreadable, too deep
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for paragraph in re.split(r"\n\s*\n", ast.get_docstring(node) or ""):
                text = " ".join(paragraph.split())
                letters = sum(c.isalpha() for c in text)
                if _MIN_CHARS <= len(text) <= _MAX_CHARS and letters > 0.7 * len(text):
                    seen.setdefault(text)
        if len(seen) >= count:
            break
    return list(seen)[:count]


def distractor_corpus(store_dir: Path, count: int) -> Path:
    """``store_dir/distractors.jsonl`` (corpus format, empty titles), harvested once and reused."""
    path = store_dir / "distractors.jsonl"
    if path.exists():
        return path
    t0 = time.perf_counter()
    texts = harvest_docstrings(Path(np.__file__).resolve().parents[1], count)
    store_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        for number, text in enumerate(texts):
            handle.write(json.dumps({"id": f"distractor-{number:06d}", "title": "", "text": text}) + "\n")
    tmp.replace(path)
    print(f"harvested {len(texts)} distractor paragraphs in {time.perf_counter() - t0:.0f}s", flush=True)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True, help="ingested here once, reused afterwards")
    parser.add_argument("--chunks", type=int, default=100_000, help="corpus + distractor chunks in all (about)")
    parser.add_argument("--nprobe", default="8,16,32,64,128", help="lists searched per query, comma-separated")
    parser.add_argument("--limit", type=int, default=None, help="first N questions only")
    args = parser.parse_args()

    settings = load_settings(store_dir=args.store)
    embedder = load_embedder(settings)
    fresh = not (args.store / "current").exists()
    passages = sum(1 for _ in (args.dataset / "corpus.jsonl").open(encoding="utf-8"))
    distractors = distractor_corpus(args.store, max(0, args.chunks - passages))
    store = open_store(settings, embedder, create=True)
    if fresh:
        t0 = time.perf_counter()
        build_ingestor(settings, store, embedder).ingest([args.dataset / "corpus.jsonl", distractors])
        print(f"ingested in {time.perf_counter() - t0:.0f}s", flush=True)
    partitioned = store.vectors
    if not partitioned.partitioned:
        sys.exit(
            f"the store's index holds {len(partitioned)} vectors and is not partitioned "
            f"(KGRAG_RETRIEVAL__VECTOR_IVF_MIN_VECTORS={settings.retrieval.vector_ivf_min_vectors}); nothing to compare"
        )
    ids, vectors = partitioned.all_vectors()
    # The same vectors, exhaustively searched (in memory only: never saved).
    exact = FaissVectorIndex(
        args.store / "unsaved-exhaustive.faiss", partitioned.dimension, precision=partitioned.precision
    )
    exact.add(ids.tolist(), vectors)
    print(
        f"store: {len(ids)} vectors ({partitioned.precision}), {partitioned.lists} inverted lists "
        f"(~{len(ids) / partitioned.lists:.0f} vectors each); {store.counts()}",
        flush=True,
    )

    questions = load_questions(args.dataset, args.limit)
    mapping = {chunk.id: chunk.document_id for chunk in store.chunks.iter_chunks()}
    graph = build_retriever(settings, store, embedder, "graph")
    assert isinstance(graph, GraphRetriever)
    t0 = time.perf_counter()
    graph.refresh()
    print(f"graph matrix + title index: {time.perf_counter() - t0:.1f}s", flush=True)
    dense = graph.seed_retriever
    assert isinstance(dense, HybridRetriever)

    def dense_over(index: FaissVectorIndex) -> HybridRetriever:
        return HybridRetriever(
            dense.embedder,
            index,
            store.keywords,
            store.chunks,
            mode="dense",
            top_k=dense.top_k,
            candidates=dense.candidates,
        )

    query_vectors = dense.embedder.embed([q.question for q in questions])  # the settings' query encoder
    assembler = ContextAssembler(settings.retrieval.context_budget_tokens)
    exact_top5 = [[i for i, _ in exact.search(v, 5)] for v in query_vectors]
    configs: list[tuple[str, FaissVectorIndex, int | None]] = [("exhaustive", exact, None)]
    configs += [(f"ivf nprobe={n}", partitioned, int(n)) for n in args.nprobe.split(",")]
    recall5: dict[str, list[float]] = {}
    print(
        f"\n{len(questions)} questions; {'index':<18}{'mode':<7}{'R@2':>6}{'R@5':>6}{'AG@8':>6}"
        f"{'dR@5 vs exhaustive [95% CI]':>30}{'top5 ovl':>9}{'search p50/p95':>16}{'retrieve p50/p95':>18}"
    )
    for name, index, nprobe in configs:
        if nprobe is not None:
            index.ivf_nprobe = nprobe
        searches: list[float] = []
        overlap: list[float] = []
        for vector, expected in zip(query_vectors, exact_top5, strict=True):
            t0 = time.perf_counter()
            found = [i for i, _ in index.search(vector, settings.retrieval.candidates)][:5]
            searches.append((time.perf_counter() - t0) * 1000)
            overlap.append(len(set(found) & set(expected)) / max(len(expected), 1))
        seeds = dense_over(index)
        for mode, retriever in (("dense", seeds), ("graph", graph.variant(seed_retriever=seeds))):
            r2, r5, ag, total = [], [], [], []
            for question in questions:
                t0 = time.perf_counter()
                assembler.assemble(retriever.retrieve(question.question))  # what a request does: top_k (5) hits
                total.append((time.perf_counter() - t0) * 1000)
                hits = retriever.retrieve(question.question, top_k=CHUNK_POOL)  # a longer ranking, for recall
                ranked = list(dict.fromkeys(mapping.get(h.chunk.id, h.chunk.id) for h in hits))
                r2.append(recall_at_k(ranked, question.gold_passage_ids, 2))
                r5.append(recall_at_k(ranked, question.gold_passage_ids, 5))
                ag.append(all_gold_at_k(ranked, question.gold_passage_ids, ALL_GOLD_K))
            recall5[f"{name} {mode}"] = r5
            base = recall5.get(f"exhaustive {mode}", r5)
            delta = bootstrap_ci([a - b for a, b in zip(r5, base, strict=True)])
            print(
                f"{'':<{len(str(len(questions))) + 12}}{name:<18}{mode:<7}{100 * np.mean(r2):>6.1f}"
                f"{100 * np.mean(r5):>6.1f}{100 * np.mean(ag):>6.1f}"
                f"{_delta(delta.mean, delta.ci_low, delta.ci_high):>30}{np.mean(overlap):>9.3f}"
                f"{_pair(searches):>16}{_pair(total):>18}",
                flush=True,
            )
    store.close()


def _delta(mean: float, low: float, high: float) -> str:
    return f"{100 * mean:+.1f} [{100 * low:+.1f}, {100 * high:+.1f}]"


def _pair(values: list[float]) -> str:
    return f"{percentile(values, 50):.2f}/{percentile(values, 95):.2f}"


if __name__ == "__main__":
    main()
