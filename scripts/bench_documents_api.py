"""Measure document uploads over HTTP: time to the 202, time until the job has finished (and the API serves the new
snapshot), per-stage durations of the ingestion run, and a delete job, on a store ingested from data/.

Serves the API on 127.0.0.1 (model endpoint on a closed port: nothing here calls a model).
Usage: ``.venv/bin/python scripts/bench_documents_api.py [--uploads 5] [--files-per-upload 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from core.settings import load_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402


def _doc(i: int, j: int) -> bytes:
    body = " ".join(f"Fact {k} of note {i}-{j}: the Zephyr-{i} gate opens at {k}:00 on weekdays." for k in range(12))
    return f"# Note {i}-{j}\n\n{body}\n".encode()


def _wait(client: httpx.Client, location: str) -> dict[str, object]:
    while True:
        job: dict[str, object] = client.get(location).json()
        if job["status"] in {"succeeded", "partial", "failed"}:
            return job
        time.sleep(0.02)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=5)
    parser.add_argument("--files-per-upload", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kgrag-bench-docs-"))
    store = work / "store"
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.models import load_embedder
    from pipelines.compose.stores import open_store

    base = load_settings(store_dir=store)
    embedder = load_embedder(base)
    build_ingestor(base, open_store(base, embedder, create=True), embedder).ingest([ROOT / "data"])
    settings = load_settings(store_dir=store, llm_base_url=f"http://127.0.0.1:{free_port()}/v1")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    accept_ms: list[float] = []
    done_s: list[float] = []
    stages: dict[str, list[float]] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600) as client:
            for i in range(args.uploads):
                files = [("files", (f"bench/n{i}-{j}.md", _doc(i, j))) for j in range(args.files_per_upload)]
                t0 = time.perf_counter()
                response = client.post("/v1/documents", files=files)
                accept_ms.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 202, response.text
                job = _wait(client, response.headers["location"])
                done_s.append(time.perf_counter() - t0)
                assert job["status"] == "succeeded", job
                for stage, seconds in job["report"]["durations_s"].items():  # type: ignore[index]
                    stages.setdefault(stage, []).append(seconds)
            t0 = time.perf_counter()
            gone = _wait(client, client.delete("/v1/documents/bench/n0-0.md").headers["location"])
            delete_s = time.perf_counter() - t0
            assert gone["status"] == "succeeded", gone
            t0 = time.perf_counter()
            total = client.get("/v1/documents?limit=500").json()["total"]
            list_ms = (time.perf_counter() - t0) * 1000
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(
        f"uploads: {args.uploads} x {args.files_per_upload} file(s) of ~{len(_doc(0, 0))} bytes into a store of data/"
    )
    print(f"202 accepted: median {statistics.median(accept_ms):.1f} ms, max {max(accept_ms):.1f} ms")
    print(
        f"job finished (API serves the new snapshot): median {statistics.median(done_s):.2f} s, max {max(done_s):.2f} s"
    )
    print("run stages (median s): " + ", ".join(f"{k} {statistics.median(v):.3f}" for k, v in stages.items()))
    print(f"delete job: {delete_s:.2f} s; GET /v1/documents ({total} documents): {list_ms:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
