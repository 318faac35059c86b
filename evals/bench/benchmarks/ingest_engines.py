"""Local engine vs Ray engine on the same input, measured side by side in one run.

    .venv/bin/python -m evals.bench.benchmarks.ingest_engines [--corpus ../shared/eval/musique/corpus.jsonl]
        [--limit 0] [--shards 16] [--rounds 2] [--cpus 2] [--actors 2] [--threads 1]

Splits the corpus into ``--shards`` JSONL files (so that parsing has files to spread over Ray tasks), then ingests
them into a fresh store with each engine (offline extractor; everything else as in production), alternating the
order over ``--rounds``. Three sides:

- ``local``: the default engine, embedding in this process with ``--cpus`` torch threads;
- ``ray``: a cold Ray run as a nightly job pays it: the engine starts a local Ray instance on 127.0.0.1 with
  ``--cpus`` CPUs, runs parse + chunk as tasks and embedding on ``--actors`` actors (``--threads`` torch threads
  each, model loaded once per actor), and shuts Ray down;
- ``ray-warm``: the same with Ray already running (the start-up excluded, as on a standing cluster; the actor pool
  and its model loads are still paid per run).

Prints the wall time of each (best of the rounds), per-stage durations, the ratios to local, and checks that the
stores are equal (chunk ids; vectors within 1e-5).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from core.settings import Settings, load_settings
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store
from pipelines.ingest.engines.ray_runtime import RayRuntime
from pipelines.store.knowledge import KnowledgeStore
from retrieval.base import Embedder

DEFAULT_CORPUS = Path(__file__).resolve().parents[4] / "shared" / "eval" / "musique" / "corpus.jsonl"


def write_shards(corpus: Path, out: Path, shards: int, limit: int) -> int:
    lines = [line for line in corpus.read_text("utf-8").splitlines() if line.strip()]
    if limit:
        lines = lines[:limit]
    out.mkdir(parents=True)
    for k in range(shards):
        part = lines[k::shards]
        if part:
            (out / f"part-{k:03d}.jsonl").write_text("\n".join(part) + "\n", "utf-8")
    return len(lines)


def vectors_by_chunk(store: KnowledgeStore) -> dict[str, np.ndarray]:
    chunks = store.chunks.chunks_by_vector_ids(sorted(store.vectors.ids()))
    index = store.vectors._index
    return {chunk.id: np.asarray(index.reconstruct(int(vid))) for vid, chunk in chunks.items()}


def ingest_once(settings: Settings, embedder: Embedder, src: Path, root: Path) -> dict[str, object]:
    store = open_store(settings, embedder, create=True, store_dir=root)
    t0 = time.perf_counter()
    report = build_ingestor(settings, store, embedder).ingest([src])
    wall = time.perf_counter() - t0
    vectors = vectors_by_chunk(store)
    store.close()
    return {"wall_s": wall, "chunks": report.chunks_embedded, "stages_s": report.durations_s, "vectors": vectors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--limit", type=int, default=0, help="only the first N passages (0: all)")
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs for each engine (local: torch threads)")
    parser.add_argument("--actors", type=int, default=2, help="Ray embedding actors")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per Ray actor")
    args = parser.parse_args()
    base = load_settings()
    local = base.model_copy(
        update={"embedding": base.embedding.model_copy(update={"num_threads": args.cpus})}, deep=True
    )
    ray_settings = base.ingest.ray.model_copy(
        update={
            "num_cpus": args.cpus,
            "embed_actors": args.actors,
            "embed_threads": args.threads,
            "embed_actor_cpus": min(1.0, args.cpus / args.actors),
        }
    )
    ray = base.model_copy(
        update={"ingest": base.ingest.model_copy(update={"engine": "ray", "ray": ray_settings})}, deep=True
    )
    embedder = load_embedder(local)
    embedder.embed(["warm up the model"] * 8)
    walls: dict[str, list[float]] = {"local": [], "ray": [], "ray-warm": []}
    last: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix="kgrag-engines-") as tmp:
        src = Path(tmp) / "src"
        passages = write_shards(args.corpus, src, args.shards, args.limit)
        for round_no in range(args.rounds):
            order = ["local", "ray", "ray-warm"] if round_no % 2 == 0 else ["ray-warm", "ray", "local"]
            for side in order:
                root = Path(tmp) / f"store-{side}-{round_no}"
                if side == "ray-warm":
                    runtime = RayRuntime(num_cpus=args.cpus, object_store_mb=ray_settings.object_store_mb)
                    runtime.start()
                    try:
                        result = ingest_once(ray, embedder, src, root)
                    finally:
                        runtime.shutdown()
                else:
                    result = ingest_once(local if side == "local" else ray, embedder, src, root)
                walls[side].append(float(result["wall_s"]))  # type: ignore[arg-type]
                last[side] = result
                print(f"round {round_no} {side}: {result['wall_s']:.1f}s", flush=True)
    reference = last["local"]["vectors"]
    assert isinstance(reference, dict)
    equal = {}
    for side in ("ray", "ray-warm"):
        other = last[side]["vectors"]
        assert isinstance(other, dict)
        equal[side] = sorted(other) == sorted(reference) and all(
            np.allclose(other[k], v, atol=1e-5) for k, v in reference.items()
        )
    best = {side: min(values) for side, values in walls.items()}
    result = {
        "corpus": str(args.corpus),
        "passages": passages,
        "files": args.shards,
        "chunks": last["local"]["chunks"],
        "cpus": args.cpus,
        "ray_actors": args.actors,
        "ray_threads_per_actor": args.threads,
        "wall_s": {side: [round(v, 2) for v in values] for side, values in walls.items()},
        "best_wall_s": {side: round(v, 2) for side, v in best.items()},
        "ratio_ray_over_local": round(best["ray"] / best["local"], 2),
        "ratio_ray_warm_over_local": round(best["ray-warm"] / best["local"], 2),
        "stores_equal_to_local": equal,
        "last_stages_s": {side: last[side]["stages_s"] for side in walls},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
