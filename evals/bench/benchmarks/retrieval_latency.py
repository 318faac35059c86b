"""Latency of retrieval + graph + context assembly on a large synthetic store (default 100k chunks).

Chunks are synthetic sentences naming random entities (Zipf-distributed, so some are hubs); their vectors are random
unit vectors (the query is embedded by the real MiniLM, so the dense search does real work on a real query vector).
The query is embedded as the default settings embed it (ONNX Runtime, int8 query encoder); graph mode with the
full-precision ONNX and the PyTorch query embeddings runs beside it (those two vectors are checked equal). The vectors
are searched in the index a new store of this size gets by default (float16, partitioned into inverted lists from
``vector_ivf_min_vectors``), with exhaustive float16 and float32 indexes beside it. Random vectors do not cluster, so
the partitioned index's overlap with the exhaustive ranking printed here is far below what real embeddings get
(``evals/benchmarks/vector_index.py`` measures that on a real 100k-chunk store); its speed is representative. The
graph holds every chunk -mentions-> entity edge; every other question misspells a name, so linking takes the fuzzy
path. Prints p50/p95 of retrieve (top 5) + context assembly for every mode, with the previous graph defaults (exact
power iteration, fuzzy linking over every name) beside the current ones, and per-stage timings, all measured side by
side in one run::

    .venv/bin/python -m evals.bench.benchmarks.retrieval_latency --chunks 100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from core.settings import EmbeddingSettings, RetrievalSettings
from core.types import Chunk, Document, Entity, Extraction, Mention, sha256_text
from evals.bench.metrics import percentile
from kg.linking import EntityLinker
from kg.names import entity_id
from kg.networkx_store import NetworkxGraphStore
from retrieval.base import Embedder, Retriever
from retrieval.bm25_index import Bm25Index
from retrieval.bridge import TitleBridge
from retrieval.context import ContextAssembler
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.faiss_index import FaissVectorIndex
from retrieval.graph import GraphRetriever
from retrieval.hybrid import HybridRetriever
from retrieval.onnx_embedder import OnnxEmbedder
from retrieval.pagerank import personalized_pagerank, sparse_push_pagerank
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
    """The synthetic store under ``root`` and its questions; reused when ``root`` already holds the same build."""
    stamp = root / "synthetic.json"
    key = {"chunks": chunks, "entities": entities, "per_chunk": per_chunk, "seed": seed}
    if stamp.exists() and json.loads(stamp.read_text("utf-8"))["key"] == key:
        saved = json.loads(stamp.read_text("utf-8"))
        return (
            SqliteChunkStore(root / "chunks.sqlite"),
            FaissVectorIndex(root / "vectors.faiss", embedder_dim),
            NetworkxGraphStore(root / "graph.json"),
            saved["questions"],
        )
    root.mkdir(parents=True, exist_ok=True)
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
    questions = []
    for number in range(1000):
        a, b = rng.choice(names[: entities // 2], size=2, replace=False)
        if number % 2:  # every other question misspells a name, so linking takes the fuzzy path
            cut = int(rng.integers(1, len(b) - 1))
            b = b[:cut] + b[cut + 1 :]
        questions.append(f"Where did {a} meet {b}?")
    vectors.save()
    graph.save()
    stamp.write_text(json.dumps({"key": key, "questions": questions}), "utf-8")
    return store, vectors, graph, questions


def as_new_store(exact: FaissVectorIndex, target: Path, settings: RetrievalSettings) -> FaissVectorIndex:
    """A copy of ``exact`` as a new store of its size gets it by ``settings``: their precision, partitioned (inverted
    lists) from ``vector_ivf_min_vectors``."""
    copy = FaissVectorIndex(
        target,
        exact.dimension,
        precision=settings.vector_precision,
        ivf_min_vectors=settings.vector_ivf_min_vectors,
        ivf_nprobe=settings.vector_ivf_nprobe,
    )
    ids, vectors = exact.all_vectors()
    copy.add(ids.tolist(), vectors)
    copy.fit_layout()
    return copy


def _stats(values: list[float]) -> str:
    return f"{percentile(values, 50):>10.2f}{percentile(values, 95):>10.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--per-chunk", type=int, default=5)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--epsilon", type=float, default=RetrievalSettings().graph_ppr_epsilon)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="build the store here and reuse it on later runs")
    args = parser.parse_args()
    full_precision = OnnxEmbedder()  # the default backend (KGRAG_EMBEDDING__BACKEND=onnx)
    # Questions are embedded as build_retriever embeds them: by the int8 query encoder unless switched off.
    embedder = full_precision.query_encoder() if EmbeddingSettings().quantize_queries else full_precision
    torch_embedder = SentenceTransformerEmbedder(num_threads=1)  # the PyTorch backend, for comparison
    with tempfile.TemporaryDirectory(prefix="kgrag-latency-") as tmp:
        t0 = time.perf_counter()
        root = args.keep or Path(tmp)
        store, exact_vectors, graph, questions = build(
            root, args.chunks, args.entities, args.per_chunk, embedder.dimension, args.seed
        )
        defaults = RetrievalSettings()  # a new store's index; the exhaustive float32 one runs beside it
        vectors = as_new_store(exact_vectors, Path(tmp) / "vectors-default.faiss", defaults)
        exhaustive_half = as_new_store(
            exact_vectors,
            Path(tmp) / "vectors-float16.faiss",
            defaults.model_copy(update={"vector_ivf_min_vectors": 0}),
        )
        index_name = f"{vectors.precision}" + (
            f", ivf {vectors.lists} lists nprobe={vectors.ivf_nprobe}" if vectors.partitioned else ""
        )
        print(f"built {args.chunks} chunks, {graph.counts()['entities']} entities in {time.perf_counter() - t0:.1f}s")
        keywords = Bm25Index(Path(tmp) / "bm25")
        t0 = time.perf_counter()
        all_chunks = list(store.iter_chunks())
        keywords.rebuild([c.id for c in all_chunks], [c.text for c in all_chunks])
        print(f"bm25 index: {time.perf_counter() - t0:.1f}s")
        dense = HybridRetriever(embedder, vectors, keywords, store, mode="dense", top_k=5)
        retrievers: dict[str, Retriever] = {"dense": dense}
        for mode in ("bm25", "hybrid"):
            retrievers[mode] = HybridRetriever(embedder, vectors, keywords, store, mode=mode, top_k=5)
        bridge = TitleBridge()  # the default graph mode (KGRAG_RETRIEVAL__GRAPH_BRIDGE=true)
        graph_push = GraphRetriever(
            dense, store, graph, EntityLinker(graph), top_k=5, ppr_epsilon=args.epsilon, bridge=bridge
        )
        t0 = time.perf_counter()
        matrix = graph_push.refresh()
        print(f"graph matrix: {matrix.size} nodes, {matrix.transition.nnz} edges, {time.perf_counter() - t0:.2f}s")
        # The reference: exact power iteration and fuzzy linking that scores every name (the previous defaults).
        # Same matrix: only the PageRank and the linker differ (and no bridge).
        graph_power = graph_push.variant(linker=EntityLinker(graph, shortlist=False), ppr_epsilon=0.0, bridge=None)
        graph_power.linker.refresh()
        retrievers["graph"] = graph_push
        retrievers["graph (power, full-scan link)"] = graph_power

        def variant(seeds: HybridRetriever, *, with_bridge: bool) -> GraphRetriever:
            """Graph mode over ``seeds`` sharing the default's matrix, title index and linker (nothing rebuilt)."""
            return graph_push.variant(seed_retriever=seeds, bridge=bridge if with_bridge else None)

        def dense_over(encoder: Embedder, index: FaissVectorIndex) -> HybridRetriever:
            return HybridRetriever(encoder, index, keywords, store, mode="dense", top_k=5)

        # Each row differs from "graph" in one thing, except the last: the defaults before ONNX/float16/bridge.
        retrievers["graph (full-precision query)"] = variant(dense_over(full_precision, vectors), with_bridge=True)
        retrievers["graph (torch query embedding)"] = variant(dense_over(torch_embedder, vectors), with_bridge=True)
        retrievers["graph (exhaustive float16)"] = variant(dense_over(embedder, exhaustive_half), with_bridge=True)
        retrievers["graph (exhaustive float32)"] = variant(dense_over(embedder, exact_vectors), with_bridge=True)
        graph_no_bridge = variant(dense, with_bridge=False)
        retrievers["graph (no title bridge)"] = graph_no_bridge
        retrievers["graph (torch, float32, no bridge)"] = variant(
            dense_over(torch_embedder, exact_vectors), with_bridge=False
        )
        assembler = ContextAssembler(2000)
        totals: dict[str, list[float]] = {mode: [] for mode in retrievers}
        stages: dict[str, list[float]] = {
            "embed query": [], "embed query (full precision)": [], "embed query (torch)": [],
            f"faiss search ({index_name})": [],
            "faiss search (float32)": [],
            "link (trigram shortlist)": [], "link (full scan)": [],
            f"ppr push eps={args.epsilon:g}": [], "ppr power iteration": [], "assembly": [],
        }  # fmt: skip
        overlap: list[float] = []
        vector_overlap: list[float] = []
        for question in questions[: args.queries]:
            for mode, retriever in retrievers.items():
                t0 = time.perf_counter()
                hits = retriever.retrieve(question)
                assembler.assemble(hits)
                totals[mode].append((time.perf_counter() - t0) * 1000)
            push_ids = [h.chunk.id for h in graph_no_bridge.retrieve(question)]  # same PageRank input as power
            power_ids = [h.chunk.id for h in graph_power.retrieve(question)]
            overlap.append(len(set(push_ids) & set(power_ids)) / max(len(power_ids), 1))
            t_torch = time.perf_counter()
            torch_vector = torch_embedder.embed([question])[0]
            t_full = time.perf_counter()
            full_vector = full_precision.embed([question])[0]
            t0 = time.perf_counter()
            vector = embedder.embed([question])[0]
            t_embed = time.perf_counter()
            if not np.allclose(full_vector, torch_vector, atol=1e-4):
                raise SystemExit(f"ONNX and PyTorch query vectors differ for {question!r}")
            t_exact = time.perf_counter()
            exact_ids = [i for i, _ in exact_vectors.search(vector, 20)][:5]
            t1 = time.perf_counter()
            default_ids = [i for i, _ in vectors.search(vector, 20)][:5]
            vector_overlap.append(len(set(exact_ids) & set(default_ids)) / 5)
            t2 = time.perf_counter()
            linked = graph_push.linker.link(question)
            t3 = time.perf_counter()
            graph_power.linker.link(question)
            t4 = time.perf_counter()
            seeds = np.zeros(matrix.size)
            for entity in linked:
                seeds[matrix.entity_index[entity.id]] = 1.0
            if seeds.sum() == 0:
                continue
            nodes = np.flatnonzero(seeds)
            t5 = time.perf_counter()
            sparse_push_pagerank(matrix.adjacency, nodes, seeds[nodes], 0.5, args.epsilon, degree=matrix.degree)
            t6 = time.perf_counter()
            personalized_pagerank(matrix.transition, seeds, 0.5)
            t6b = time.perf_counter()
            hits = graph_push.retrieve(question)
            t7 = time.perf_counter()
            assembler.assemble(hits)
            t8 = time.perf_counter()
            for key, seconds in zip(
                stages,
                (
                    t_embed - t0,
                    t0 - t_full,
                    t_full - t_torch,
                    t2 - t1,
                    t1 - t_exact,
                    t3 - t2,
                    t4 - t3,
                    t6 - t5,
                    t6b - t6,
                    t8 - t7,
                ),
                strict=True,
            ):
                stages[key].append(seconds * 1000)
        n = args.queries
        print(f"\nretrieve top 5 + assembly, {n} queries, all modes side by side in this run")
        print(f"{'mode':<32}{'p50 ms':>10}{'p95 ms':>10}")
        for mode, values in totals.items():
            print(f"{mode:<32}{_stats(values)}")
        print(f"\nstages ({n} queries)")
        print(f"{'stage':<32}{'p50 ms':>10}{'p95 ms':>10}")
        for key, values in stages.items():
            print(f"{key:<32}{_stats(values)}")
        p50 = {mode: percentile(values, 50) for mode, values in totals.items()}
        reference = p50["graph (power, full-scan link)"]
        print(f"\ngraph speed-up over the reference (p50): {reference / p50['graph']:.1f}x")
        ppr = [percentile(stages[k], 50) for k in stages if k.startswith("ppr")]
        links = [percentile(stages[k], 50) for k in stages if k.startswith("link")]
        print(f"ppr push vs power iteration (p50): {ppr[1] / ppr[0]:.1f}x; link shortlist vs full scan: "
              f"{links[1] / links[0]:.1f}x")  # fmt: skip
        embed = percentile(stages["embed query"], 50)
        print(f"graph p50 without the query embedding (p50 {embed:.2f} ms): {p50['graph'] - embed:.2f} ms")
        print(f"top-5 overlap, push vs power iteration: {sum(overlap) / len(overlap):.3f}")
        print(
            f"top-5 dense overlap, {index_name} vs exhaustive float32: {sum(vector_overlap) / len(vector_overlap):.3f}"
            + (
                " (random vectors do not cluster: see evals/benchmarks/vector_index.py for real ones)"
                if vectors.partitioned
                else ""
            )
        )
        store.close()


if __name__ == "__main__":
    main()
