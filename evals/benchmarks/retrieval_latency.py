"""Latency of retrieval + graph + context assembly on a large synthetic store (default 100k chunks).

Chunks are synthetic sentences naming random entities (Zipf-distributed, so some are hubs); their vectors are
random unit vectors (the query is embedded by the real MiniLM, so the dense search does real work on a real query
vector). The graph holds every chunk -mentions-> entity edge. Prints p50/p95 per stage, measured side by side::

    .venv/bin/python -m evals.benchmarks.retrieval_latency --chunks 100000 --queries 200
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from core.types import Chunk, Document, Entity, Extraction, Mention, sha256_text
from evals.bench_metrics import percentile
from kg.linking import EntityLinker
from kg.names import entity_id
from kg.networkx_store import NetworkxGraphStore
from retrieval.bm25_index import Bm25Index
from retrieval.context import ContextAssembler
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.faiss_index import FaissVectorIndex
from retrieval.graph import GraphRetriever
from retrieval.hybrid import HybridRetriever
from retrieval.sqlite_chunk_store import SqliteChunkStore

_SYLLABLES = ["ka", "lo", "mer", "ta", "vin", "dra", "sol", "qui", "ben", "tor", "ri", "zan", "pel", "gu", "os"]


def entity_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct two-word capitalised names."""
    names: set[str] = set()
    while len(names) < count:
        words = ["".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4))).capitalize() for _ in range(2)]
        names.add(" ".join(words))
    return sorted(names)


def build(root: Path, chunks: int, entities: int, per_chunk: int, embedder_dim: int, seed: int) -> tuple:  # type: ignore[type-arg]
    rng = np.random.default_rng(seed)
    names = entity_names(entities, rng)
    weights = 1.0 / np.arange(1, entities + 1) ** 0.8
    weights /= weights.sum()
    store = SqliteChunkStore(root / "chunks.sqlite")
    vectors = FaissVectorIndex(root / "vectors.faiss", embedder_dim)
    graph = NetworkxGraphStore(root / "graph.json")
    batch_ids: list[int] = []
    batch_vectors: list[np.ndarray] = []
    for i in range(chunks):
        picked = [names[j] for j in rng.choice(entities, size=per_chunk, replace=False, p=weights)]
        text = f"{picked[0]} met {picked[1]} near {picked[2]}. " + " ".join(f"{n} was there." for n in picked[3:])
        doc = Document(
            id=f"d{i}", source=f"d{i}", title=picked[0], text=text, sha256=sha256_text(text), media_type="text/plain"
        )
        chunk = Chunk(
            id=f"c{i}", document_id=doc.id, source=doc.source, title=doc.title, text=text, start=0,
            end=len(text), ordinal=0, sha256=doc.sha256,
        )  # fmt: skip
        (vid,), _ = store.put_document(doc, [chunk])
        batch_ids.append(vid)
        vector = rng.standard_normal(embedder_dim).astype(np.float32)
        batch_vectors.append(vector / np.linalg.norm(vector))
        graph.upsert_chunks([chunk])
        graph.add_extraction(
            Extraction(
                chunk_id=chunk.id,
                entities=[Entity(id=entity_id(n), name=n) for n in picked],
                mentions=[Mention(entity_id=entity_id(n), chunk_id=chunk.id) for n in picked],
            )
        )
        if len(batch_ids) >= 5000:
            vectors.add(batch_ids, np.vstack(batch_vectors))
            batch_ids, batch_vectors = [], []
    if batch_ids:
        vectors.add(batch_ids, np.vstack(batch_vectors))
    questions = [
        f"Where did {a} meet {b}?"
        for a, b in (rng.choice(names[: entities // 2], size=2, replace=False) for _ in range(1000))
    ]
    return store, vectors, graph, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--per-chunk", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder()
    with tempfile.TemporaryDirectory(prefix="kgrag-latency-") as tmp:
        t0 = time.perf_counter()
        store, vectors, graph, questions = build(
            Path(tmp), args.chunks, args.entities, args.per_chunk, embedder.dimension, args.seed
        )
        print(f"built {args.chunks} chunks, {graph.counts()['entities']} entities in {time.perf_counter() - t0:.1f}s")
        keywords = Bm25Index(Path(tmp) / "bm25")
        dense = HybridRetriever(embedder, vectors, keywords, store, mode="dense", top_k=5)
        retriever = GraphRetriever(dense, store, graph, EntityLinker(graph), top_k=5)
        t0 = time.perf_counter()
        matrix = retriever.refresh()
        print(f"graph matrix: {matrix.size} nodes, {matrix.transition.nnz} edges, {time.perf_counter() - t0:.2f}s")
        assembler = ContextAssembler(2000)
        timings: dict[str, list[float]] = {"dense": [], "link": [], "graph (dense+link+ppr)": [], "assembly": []}
        timings["graph + assembly"] = []
        for question in questions[: args.queries]:
            t0 = time.perf_counter()
            dense.retrieve(question, top_k=20)
            t1 = time.perf_counter()
            retriever.linker.link(question)
            t2 = time.perf_counter()
            hits = retriever.retrieve(question)
            t3 = time.perf_counter()
            assembler.assemble(hits)
            t4 = time.perf_counter()
            for key, seconds in (
                ("dense", t1 - t0),
                ("link", t2 - t1),
                ("graph (dense+link+ppr)", t3 - t2),
                ("assembly", t4 - t3),
                ("graph + assembly", t4 - t2),
            ):
                timings[key].append(seconds * 1000)
        print(f"{'stage':<24}{'p50 ms':>10}{'p95 ms':>10}   ({args.queries} queries)")
        for key, values in timings.items():
            print(f"{key:<24}{percentile(values, 50):>10.2f}{percentile(values, 95):>10.2f}")
        store.close()


if __name__ == "__main__":
    main()
