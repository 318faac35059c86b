"""Sweep graph-retrieval parameters on a benchmark dataset, every configuration scored on the same ingested store.

The dataset is ingested once (as ``kgrag bench`` does, into ``--store``, reused when it already exists), then
every configuration ranks every question; the table gives recall@2/@5, all-gold@8 and p50 latency, with dense
and hybrid beside them, all in one run. It also checks that the trigram-shortlisted entity linker links exactly
what scoring every name links::

    .venv/bin/python -m evals.bench.benchmarks.retrieval_tuning --dataset ../shared/eval/musique --store
    /tmp/tune-musique
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from core.settings import RetrievalSettings, Settings, load_settings
from evals.bench.harness import ALL_GOLD_K, load_questions, rank_passages
from evals.bench.metrics import all_gold_at_k, percentile, recall_at_k
from kg.linking import EntityLinker
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.retrieval import build_retriever, rerank_with_llm
from pipelines.compose.stores import open_store
from pipelines.store.knowledge import KnowledgeStore
from retrieval.base import Embedder, Retriever
from retrieval.graph import GraphRetriever


def open_or_ingest(dataset: Path, store_dir: Path) -> tuple[Settings, Embedder, KnowledgeStore]:
    """The default settings, embedder and the store at ``store_dir``, ingesting ``dataset``'s corpus when it is new."""
    settings = load_settings(store_dir=store_dir)
    embedder = load_embedder(settings)
    fresh = not (store_dir / "current").exists()
    store = open_store(settings, embedder, create=True)
    if fresh:
        t0 = time.perf_counter()
        build_ingestor(settings, store, embedder).ingest([dataset / "corpus.jsonl"])
        print(f"ingested in {time.perf_counter() - t0:.1f}s")
    return settings, embedder, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True, help="ingested here once, reused afterwards")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--damping", default="0.5")
    parser.add_argument("--passage-weight", default="0.2")
    parser.add_argument("--dense-mix", default="1.0")
    parser.add_argument("--dense-seeds", default="20")
    parser.add_argument("--epsilon", default=str(RetrievalSettings().graph_ppr_epsilon))
    parser.add_argument(
        "--rerank", type=int, default=0, help="instead: graph vs graph + LLM rerank on the first N questions"
    )
    args = parser.parse_args()
    settings, embedder, store = open_or_ingest(args.dataset, args.store)
    questions = load_questions(args.dataset, args.limit)
    mapping = {chunk.id: chunk.document_id for chunk in store.chunks.iter_chunks()}

    def document_of(chunk_id: str) -> str:
        return mapping.get(chunk_id, chunk_id)

    shortlisted, full = EntityLinker(store.graph), EntityLinker(store.graph, shortlist=False)
    timings: dict[str, list[float]] = {"shortlist": [], "full scan": []}
    differing = 0
    for q in questions:
        t0 = time.perf_counter()
        a = [e.id for e in shortlisted.link(q.question)]
        t1 = time.perf_counter()
        b = [e.id for e in full.link(q.question)]
        timings["shortlist"].append((t1 - t0) * 1000)
        timings["full scan"].append((time.perf_counter() - t1) * 1000)
        differing += a != b
    print(
        f"linker: {differing} of {len(questions)} questions link differently; p50 shortlist "
        f"{percentile(timings['shortlist'], 50):.2f} ms, full scan {percentile(timings['full scan'], 50):.2f} ms"
    )

    configs: dict[str, Retriever] = {m: build_retriever(settings, store, embedder, m) for m in ("dense", "hybrid")}
    if args.rerank:
        graph = build_retriever(settings, store, embedder, "graph")
        configs = {"graph": graph, "graph+rerank": rerank_with_llm(settings, graph)}
        questions = questions[: args.rerank]
    floats = [[float(v) for v in str(values).split(",")] for values in (args.damping, args.passage_weight)]
    grid = itertools.product(
        *floats,
        [float(v) for v in args.dense_mix.split(",")],
        [int(v) for v in args.dense_seeds.split(",")],
        [float(v) for v in args.epsilon.split(",")],
    )
    base = build_retriever(settings, store, embedder, "graph")
    assert isinstance(base, GraphRetriever)
    base.refresh()
    for damping, weight, mix, seeds, epsilon in [] if args.rerank else grid:
        retriever = base.variant(
            damping=damping,
            passage_weight=weight,
            dense_mix=mix,
            dense_seeds=int(seeds),
            ppr_epsilon=epsilon,
        )  # the title bridge as the settings configure it (on by default), base's matrix and title index
        configs[f"graph d={damping} pw={weight} mix={mix} seeds={seeds} eps={epsilon:g}"] = retriever
    print(f"{'config':<58}{'R@2':>7}{'R@5':>7}{'AG@8':>7}{'p50 ms':>8}")
    for name, ranker in configs.items():
        r2, r5, ag, lat = [], [], [], []
        for q in questions:
            t0 = time.perf_counter()
            ranked = rank_passages(ranker, q.question, document_of)
            lat.append((time.perf_counter() - t0) * 1000)
            r2.append(recall_at_k(ranked, q.gold_passage_ids, 2))
            r5.append(recall_at_k(ranked, q.gold_passage_ids, 5))
            ag.append(all_gold_at_k(ranked, q.gold_passage_ids, ALL_GOLD_K))
        n = len(questions)
        print(
            f"{name:<58}{100 * sum(r2) / n:>7.1f}{100 * sum(r5) / n:>7.1f}{100 * sum(ag) / n:>7.1f}"
            f"{percentile(lat, 50):>8.1f}",
            flush=True,
        )
    store.close()


if __name__ == "__main__":
    main()
