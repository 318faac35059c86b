"""Incremental re-indexing on a synthetic tree: a full run, a no-change re-run, and a 1%-changed re-run.

    .venv/bin/python -m evals.bench.benchmarks.ingest_incremental [--docs 10000] [--changed 0.01]

Writes ``--docs`` small Markdown files in 100 folders, ingests them (offline extractor), re-runs with nothing
changed (goal: <= 2 s for 10k documents, about the time it takes to read and hash the files, which is measured
too), then changes ``--changed`` of the files and re-runs (goal: work proportional to the change: chunks embedded
and extracted == chunks changed). Each run opens the store afresh, as a nightly job would; the embedding model is
loaded once beforehand (its load time is not part of a run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path

from core.settings import load_settings
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store

CITIES = ["Lagos", "Utrecht", "Lisbon", "Oslo", "Rotterdam", "Nairobi", "Quito", "Hanoi", "Tbilisi", "Perth"]


def write_tree(root: Path, docs: int) -> list[Path]:
    paths = []
    for i in range(docs):
        folder = root / f"team-{i % 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"note-{i:05d}.md"
        path.write_text(
            f"# Note {i}\n\nAnalyst Person{i} joined Company{i % 97} in {CITIES[i % len(CITIES)]} in {1990 + i % 30}. "
            f"Person{i} reports to Manager{i % 41} about Project{i % 113}.\n",
            "utf-8",
        )
        paths.append(path)
    return paths


def hash_all(root: Path) -> float:
    t0 = time.perf_counter()
    for folder, _dirs, files in os.walk(root):
        for name in files:
            hashlib.sha256(Path(folder, name).read_bytes()).hexdigest()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    settings = load_settings()
    embedder = load_embedder(settings)
    embedder.embed(["warm up"] * 8)
    with tempfile.TemporaryDirectory(prefix="kgrag-bench-") as tmp:
        src, root = Path(tmp) / "src", Path(tmp) / "store"
        paths = write_tree(src, args.docs)

        def run(sync: bool = False) -> tuple[float, dict[str, object]]:
            t0 = time.perf_counter()
            store = open_store(settings, embedder, create=True, store_dir=root)
            report = build_ingestor(settings, store, embedder).ingest([src], sync=sync)
            elapsed = time.perf_counter() - t0
            store.close()
            keys = ("documents_added", "documents_changed", "documents_unchanged", "chunks_embedded")
            return elapsed, {k: getattr(report, k) for k in keys} | {
                "chunks_extracted": report.chunks_extracted,
                "stages_s": report.durations_s,
            }

        full_s, full = run()
        hash_s = hash_all(src)
        same_s, same = run(sync=True)
        step = max(1, round(1 / args.changed))
        changed = paths[::step]
        for path in changed:
            path.write_text(path.read_text("utf-8") + f"\nA new audit of {path.stem} happened in 2026.\n", "utf-8")
        delta_s, delta = run(sync=True)
    print(
        json.dumps(
            {
                "docs": args.docs,
                "full_run_s": round(full_s, 2),
                "full_run": full,
                "read_and_hash_all_files_s": round(hash_s, 3),
                "no_change_rerun_s": round(same_s, 3),
                "no_change_rerun": same,
                "no_change_over_hashing": round(same_s / hash_s, 2),
                "changed_docs": len(changed),
                "changed_rerun_s": round(delta_s, 2),
                "changed_rerun": delta,
                "changed_rerun_over_full_run": round(delta_s / full_s, 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
