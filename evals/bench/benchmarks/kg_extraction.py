"""Knowledge-graph figures on a corpus: extraction, entity resolution and the Neo4j-store bulk load.

``python -m evals.bench.benchmarks.kg_extraction [--corpus PATH] [--llm-sample 20] [--merge-sample FILE]``

Prints (and writes as JSON with ``--json``), per extractor: entities, relations (facts) and merges per 1,000 chunks,
extraction seconds per chunk; resolution time; and the bulk load of the whole offline graph into ArcadeDB's Bolt
server (Neo4j-compatible, started here from the ``arcadedb-embedded`` wheel) next to building and saving the same
graph with the embedded networkx store, with the ratio measured in the same run. The LLM extractor (Qwen2.5 1.5B
on the local llama.cpp server) runs on a seeded random sample of chunks only: it takes seconds per chunk.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from core.llm import ModelClient
from core.local_model import model_path, model_spec, prepare_model, server_command
from core.settings import ExtractionSettings, ModelServerSettings, default_cache_dir
from core.types import Chunk, Document, Extraction, sha256_text
from kg.export import graph_rows
from kg.llm_extractor import LLMExtractor
from kg.neo4j_store import Neo4jGraphStore
from kg.networkx_store import NetworkxGraphStore
from kg.offline_extractor import OfflineExtractor
from kg.resolution import EntityResolver, MergeRecord, resolve
from pipelines.ingest.chunking import chunk_document
from prompts.registry import FilePromptRegistry
from retrieval.embedder import SentenceTransformerEmbedder

DEFAULT_CORPUS = Path(__file__).resolve().parents[4] / "shared" / "eval" / "musique" / "corpus.jsonl"


def load_chunks(corpus: Path) -> tuple[list[Document], list[Chunk]]:
    """The corpus's passages as documents, chunked with the default chunking settings (600/150 chars)."""
    documents: list[Document] = []
    chunks: list[Chunk] = []
    for line in corpus.read_text("utf-8").splitlines():
        record = json.loads(line)
        text = record["text"]
        doc = Document(
            id=record["id"],
            source=f"{corpus.name}#{record['id']}",
            title=record.get("title", ""),
            text=text,
            sha256=sha256_text(text),
        )
        documents.append(doc)
        chunks.extend(chunk_document(doc, max_chars=600, min_chars=150))
    return documents, chunks


def build_graph(
    path: Path, documents: list[Document], chunks: list[Chunk], extractions: list[Extraction]
) -> NetworkxGraphStore:
    store = NetworkxGraphStore(path)
    for doc in documents:
        store.upsert_document(doc)
    store.upsert_chunks(chunks)
    for extraction in extractions:
        store.add_extraction(extraction)
    return store


def per_thousand(value: int, chunks: int) -> float:
    return round(1000 * value / max(chunks, 1), 1)


def graph_figures(
    name: str,
    store: NetworkxGraphStore,
    n_chunks: int,
    seconds: float,
    merges: list[MergeRecord],
    resolve_s: float,
    failures: int = 0,
) -> dict[str, Any]:
    counts = store.counts()
    return {
        "extractor": name,
        "chunks": n_chunks,
        "extraction_s_per_chunk": round(seconds / max(n_chunks, 1), 5),
        "entities_before_resolution": counts["entities"] + len(merges),
        "entities": counts["entities"],
        "relations": counts["facts"],
        "mentions": counts["mentions"],
        "entities_per_1000_chunks": per_thousand(counts["entities"], n_chunks),
        "relations_per_1000_chunks": per_thousand(counts["facts"], n_chunks),
        "merges": len(merges),
        "merges_per_1000_chunks": per_thousand(len(merges), n_chunks),
        "merge_rules": {rule: sum(1 for m in merges if m.rule == rule) for rule in sorted({m.rule for m in merges})},
        "resolution_s": round(resolve_s, 2),
        "failed_extractions": failures,
    }


def run_resolution(store: NetworkxGraphStore, resolver: EntityResolver) -> tuple[list[MergeRecord], float]:
    started = time.perf_counter()
    merges = resolve(store, resolver)
    return merges, time.perf_counter() - started


def bulk_load(
    store: NetworkxGraphStore,
    documents: list[Document],
    chunks: list[Chunk],
    extractions: list[Extraction],
    workdir: Path,
) -> dict[str, Any]:
    """Push the whole graph into a fresh ArcadeDB over Bolt, next to building + saving it embedded."""
    from tests.kg.conftest import start_arcadedb  # the same launcher the test suite uses

    started = time.perf_counter()
    embedded = build_graph(workdir / "again.json", documents, chunks, extractions)
    embedded.save()
    networkx_s = time.perf_counter() - started
    rows = graph_rows(store)
    server = start_arcadedb(workdir / "arcadedb", ("bench",))
    try:
        target = Neo4jGraphStore(server.uri, server.user, server.password, "bench", batch_size=1000)
        target.dialect  # noqa: B018 -- connect and create the schema outside the timing
        started = time.perf_counter()
        target.load_rows(
            documents=rows.documents,
            chunks=rows.chunks,
            entities=rows.entities,
            mentions=rows.mentions,
            facts=rows.facts,
        )
        bolt_s = time.perf_counter() - started
        loaded = target.counts()
        target.close()
    finally:
        server.stop()
    assert loaded == store.counts(), (loaded, store.counts())
    return {
        "rows": rows.counts(),
        "arcadedb_bolt_load_s": round(bolt_s, 2),
        "networkx_build_and_save_s": round(networkx_s, 2),
        "ratio_bolt_over_networkx": round(bolt_s / networkx_s, 1),
        "rows_per_s_bolt": round(sum(rows.counts().values()) / bolt_s),
    }


def llm_extract(chunks: list[Chunk], log: Path) -> tuple[list[Extraction], float]:
    """Extract with Qwen2.5 1.5B served by llama.cpp on 127.0.0.1 (started and stopped here)."""
    cache = default_cache_dir()
    spec = model_spec("qwen2.5-coder-1.5b")
    gguf = model_path(spec, cache)
    if not gguf.exists():
        prepare_model(spec, cache)
    settings = ModelServerSettings(model="qwen2.5-coder-1.5b", port=18437, cache_dir=cache)
    with log.open("wb") as handle:
        process = subprocess.Popen(server_command(settings, gguf), stdout=handle, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{settings.port}/v1"
        for _ in range(360):
            try:
                if httpx.get(base + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        registry = FilePromptRegistry(None)
        template = registry.resolve("extraction", "production")
        extractor = LLMExtractor(
            ModelClient(base_url=base, model="qwen2.5-coder-1.5b"),
            template,
            registry.render,
            max_retries=ExtractionSettings().max_retries,
            max_tokens=ExtractionSettings().max_tokens,
        )
        started = time.perf_counter()
        extractions = []
        for i, chunk in enumerate(chunks):
            t0 = time.perf_counter()
            extraction = extractor.extract(chunk)
            extractions.append(extraction)
            line = {
                "chunk": chunk.id,
                "s": round(time.perf_counter() - t0, 1),
                "entities": len(extraction.entities),
                "facts": len(extraction.facts),
                "error": extraction.error,
            }
            print(f"  llm {i + 1}/{len(chunks)} {json.dumps(line)}", file=sys.stderr, flush=True)
        return extractions, time.perf_counter() - started
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--llm-sample", type=int, default=20, help="chunks for the LLM extractor (0: skip)")
    parser.add_argument("--merge-sample", type=Path, help="write 50 random offline merges here (JSON lines)")
    parser.add_argument("--no-bulk-load", action="store_true")
    parser.add_argument("--llm-only", action="store_true", help="only the LLM sample (and offline on it)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    documents, chunks = load_chunks(args.corpus)
    report: dict[str, Any] = {"corpus": str(args.corpus), "documents": len(documents), "chunks": len(chunks)}
    embedder = SentenceTransformerEmbedder()
    resolver = EntityResolver(embedder)
    with tempfile.TemporaryDirectory(prefix="kg-bench-") as tmp:
        workdir = Path(tmp)
        offline = OfflineExtractor()
        started = time.perf_counter()
        extractions = [offline.extract(c) for c in chunks]
        offline_s = time.perf_counter() - started
        store = build_graph(workdir / "offline.json", documents, chunks, extractions)
        if not args.no_bulk_load and not args.llm_only:
            report["bulk_load"] = bulk_load(store, documents, chunks, extractions, workdir)
        merges: list[MergeRecord] = []
        resolve_s = 0.0
        if not args.llm_only:
            merges, resolve_s = run_resolution(store, resolver)
            report["offline"] = graph_figures("offline", store, len(chunks), offline_s, merges, resolve_s)
        if args.merge_sample and merges:
            sample = random.Random(0).sample(merges, min(50, len(merges)))
            args.merge_sample.write_text(
                "".join(json.dumps(m.model_dump(exclude={"undo"}), ensure_ascii=False) + "\n" for m in sample), "utf-8"
            )
        if args.llm_sample:
            picked = random.Random(0).sample(chunks, min(args.llm_sample, len(chunks)))
            picked_docs = {c.document_id for c in picked}
            llm_extractions, llm_s = llm_extract(picked, workdir / "llama.log")
            llm_store = build_graph(
                workdir / "llm.json", [d for d in documents if d.id in picked_docs], picked, llm_extractions
            )
            llm_merges, llm_resolve_s = run_resolution(llm_store, resolver)
            failures = sum(1 for e in llm_extractions if e.error)
            report["llm"] = graph_figures(
                "llm:qwen2.5-coder-1.5b", llm_store, len(picked), llm_s, llm_merges, llm_resolve_s, failures
            )
            # the offline extractor on the same sample, for a like-for-like comparison
            same = build_graph(
                workdir / "same.json",
                [d for d in documents if d.id in picked_docs],
                picked,
                [offline.extract(c) for c in picked],
            )
            same_merges, same_s = run_resolution(same, resolver)
            report["offline_same_sample"] = graph_figures(
                "offline (LLM sample)", same, len(picked), 0.0, same_merges, same_s
            )
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", "utf-8")


if __name__ == "__main__":
    main()
