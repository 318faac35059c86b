"""Schemathesis against the API's OpenAPI schema, on 127.0.0.1 only, bounded in cases and time.

Serves the API (a store ingested from data/, an admin key, the model endpoint pointed at a closed port so nothing
leaves the machine) and runs two schemathesis passes, asserting that no response is a 5xx:

1. every operation except the two that call the model, positive and negative cases;
2. ``POST /v1/answer`` and ``POST /v1/chat/completions`` with negative (invalid) cases only, and without the
   schema-examples phase - valid requests would call the model, which this run deliberately does not reach.

Usage: ``.venv/bin/python scripts/fuzz_api.py [--cases 1000] [--store DIR]``; prints the figures of each pass.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.app import create_app  # noqa: E402
from core.apikeys import hash_key  # noqa: E402
from core.settings import load_settings  # noqa: E402
from tests.conftest import free_port  # noqa: E402

MODEL_PATHS = ["/v1/answer", "/v1/chat/completions"]
KEY = "fuzz-admin-key"


def ingest(store: Path) -> None:
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.models import load_embedder
    from pipelines.compose.stores import open_store

    settings = load_settings(store_dir=store)
    embedder = load_embedder(settings)
    kstore = open_store(settings, embedder, create=True)
    build_ingestor(settings, kstore, embedder).ingest([ROOT / "data"])


def run_pass(url: str, cases_per_op: int, extra: list[str], report: Path) -> dict[str, object]:
    cmd = [
        str(ROOT / ".venv/bin/schemathesis"),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        str(cases_per_op),
        "--header",
        f"Authorization: Bearer {KEY}",
        "--request-timeout",
        "20",
        "--seed",
        "8",
        "--generation-database",
        "none",
        "--workers",
        "1",
        "--report",
        "junit,har",
        "--report-junit-path",
        str(report),
        "--report-har-path",
        str(report.with_suffix(".har")),
        *extra,
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=report.parent)
    tail = proc.stdout.strip().splitlines()[-60:]
    seconds = round(time.monotonic() - started, 1)
    return {
        "rc": proc.returncode,
        "seconds": seconds,
        "summary": tail,
        "statuses": statuses(report.with_suffix(".har")),
    }


def statuses(har: Path) -> dict[str, Counter[int]]:
    """Response status counts per route (method and first two path segments) from schemathesis' HAR log."""
    from urllib.parse import urlsplit

    routes: dict[str, Counter[int]] = {}
    if not har.exists():
        return routes
    for entry in json.loads(har.read_text("utf-8")).get("log", {}).get("entries", []):
        path = urlsplit(entry["request"]["url"]).path
        route = f"{entry['request']['method']} {'/'.join(path.split('/')[:3])}"
        routes.setdefault(route, Counter())[int(entry["response"]["status"])] += 1
    return routes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000, help="approximate total number of generated cases")
    parser.add_argument("--store", type=Path, default=None, help="an ingested store (default: ingest data/ now)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kgrag-fuzz-"))
    store = args.store or work / "store"
    if args.store is None:
        ingest(store)
    settings = load_settings(
        store_dir=store,
        llm_base_url=f"http://127.0.0.1:{free_port()}/v1",
        api={"keys": [{"name": "fuzz", "sha256": hash_key(KEY), "roles": ["admin"]}]},
        audit={"url": f"sqlite:///{work / 'audit.sqlite'}"},
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.1)
    url = f"http://127.0.0.1:{port}"
    try:
        schema = json.loads(__import__("httpx").get(f"{url}/openapi.json").text)
        ops = sum(len(v) for p, v in schema["paths"].items())
        model_ops = len(MODEL_PATHS)
        per_op = max(1, args.cases // ops)
        excl = [a for p in MODEL_PATHS for a in ("--exclude-path", p)]
        incl = [a for p in MODEL_PATHS for a in ("--include-path", p)]
        first = run_pass(url, per_op, excl, work / "pass1.xml")
        second = run_pass(
            url, per_op, [*incl, "--mode", "negative", "--phases", "coverage,fuzzing"], work / "pass2.xml"
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    print(f"operations: {ops} ({model_ops} call the model); max examples per operation: {per_op}")
    for name, result in (("pass 1 (all but model ops)", first), ("pass 2 (model ops, negative)", second)):
        print(f"== {name}: rc={result['rc']} in {result['seconds']} s")
        print("\n".join(result["summary"]))  # type: ignore[arg-type]
        routes: dict[str, Counter[int]] = result["statuses"]  # type: ignore[assignment]
        total = sum((c for c in routes.values()), Counter())
        print(f"responses: {sum(total.values())}; by status: {dict(sorted(total.items()))}")
        for route, counts in sorted(routes.items()):
            print(f"  {route}: {dict(sorted(counts.items()))}")
    return 0 if first["rc"] == 0 and second["rc"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
