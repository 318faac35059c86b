"""Start-up of the ``kgrag`` commands and the API, as whole processes: min, median and max of ``--runs`` runs each.

    .venv/bin/python -m evals.bench.benchmarks.startup [--docs 10000] [--runs 10] [--baseline DIR] [--json PATH]

Times, each in a fresh process (what a nightly job or an operator pays):

- ``kgrag --help``, ``kgrag prompts list`` and ``kgrag model status`` (against a tiny model endpoint on 127.0.0.1
  that lists the configured model);
- a no-change ``kgrag ingest SRC --store S --sync`` over ``--docs`` synthetic Markdown files (written and ingested
  once beforehand, offline extractor, default settings; the first ingest is timed once and reported beside);
- ``kgrag delete ID`` of one document of that store (a different document each run);
- ``kgrag ask`` up to its first request to the model endpoint (the endpoint answers 503, so the command then fails);
- ``kgrag serve`` up to its first ``GET /healthz`` with status 200.

Beside the wall-clock seconds, the median CPU seconds (user + system) of each whole process: on a shared machine the
wall clock also counts the time other jobs hold the CPUs, the CPU time does not.

``--baseline DIR`` also runs every command with the code of another checkout (``DIR`` on ``PYTHONPATH``, e.g. made
with ``git archive REF | tar -x -C DIR``), alternating run by run with this one, and prints the two side by side
with their ratios (baseline / this): one run, the same conditions for both. Each code has its own copy of the store
(made after the first ingest), so each deletes from a store its own version wrote.

Goals (issue 22, median of 10 on the 2-core dev machine): ``--help`` <= 0.4 s, ``prompts list`` <= 0.6 s, no-change
ingest of 10k documents <= 2 s, ``delete`` <= 1.5 s on a 10k-document store.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from evals.bench.benchmarks.ingest_incremental import write_tree

KGRAG = str(Path(sys.executable).parent / "kgrag")
ROOT = Path(__file__).resolve().parents[3]  # the checkout whose code the commands run (not the editable install's)
MODEL = "qwen2.5-coder-1.5b-instruct"


class ModelEndpoint:
    """A tiny OpenAI-compatible endpoint: ``GET /v1/models`` lists :data:`MODEL`, anything else is a 503; it notes
    when the first request of a run arrives."""

    def __init__(self) -> None:
        endpoint = self
        self.first_request: float | None = None

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if endpoint.first_request is None:
                    endpoint.first_request = time.perf_counter()
                if self.command == "GET" and self.path.rstrip("/").endswith("/models"):
                    body, status = json.dumps({"object": "list", "data": [{"id": MODEL}]}).encode(), 200
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(length)
                    body, status = b'{"error": {"message": "benchmark endpoint"}}', 503
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stats(seconds: list[float]) -> dict[str, float]:
    return {
        "min": round(min(seconds), 3),
        "median": round(statistics.median(seconds), 3),
        "max": round(max(seconds), 3),
        "runs": len(seconds),
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(measure: Callable[[], float]) -> tuple[float, float]:
    """``measure()`` (seconds) and the CPU seconds of the processes it ran and waited for."""
    cpu = _children_cpu()
    seconds = measure()
    return seconds, _children_cpu() - cpu


def _run(args: list[str], env: dict[str, str], *, ok: tuple[int, ...] = (0,), timeout: float = 600) -> float:
    """Seconds one whole ``kgrag`` process takes; its exit status must be one of ``ok``."""
    t0 = time.perf_counter()
    proc = subprocess.run([KGRAG, *args], env=env, capture_output=True, text=True, timeout=timeout)
    elapsed = time.perf_counter() - t0
    if proc.returncode not in ok:
        raise SystemExit(f"kgrag {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def _until_first_request(args: list[str], env: dict[str, str], endpoint: ModelEndpoint) -> float:
    """Seconds from starting ``kgrag ARGS`` to its first request at ``endpoint`` (the process is then let finish)."""
    endpoint.first_request = None
    t0 = time.perf_counter()
    proc = subprocess.run([KGRAG, *args], env=env, capture_output=True, text=True, timeout=600)
    if endpoint.first_request is None:
        raise SystemExit(f"kgrag {' '.join(args)} never called the model ({proc.returncode}):\n{proc.stderr}")
    return endpoint.first_request - t0


def _until_healthy(store: Path, env: dict[str, str]) -> float:
    """Seconds from starting ``kgrag serve`` to its first ``GET /healthz`` answered 200."""
    port = _free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [KGRAG, "serve", "--store", str(store), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while time.perf_counter() - t0 < 600:
            if proc.poll() is not None:
                raise SystemExit(f"kgrag serve exited {proc.returncode} before answering /healthz")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    if response.status == 200:
                        return time.perf_counter() - t0
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.02)
        raise SystemExit("kgrag serve did not answer /healthz 200 within 600 s")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _environment(code: Path, endpoint: ModelEndpoint, store: Path) -> dict[str, str]:
    """The environment of a ``kgrag`` process that runs the code of the checkout ``code``."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p),
        "HF_HUB_OFFLINE": "1",
        "RAGAS_DO_NOT_TRACK": "true",
        "KGRAG_LLM_BASE_URL": endpoint.url,
        "KGRAG_LLM_MODEL": MODEL,
        "KGRAG_STORE_DIR": str(store),
    }


def _commands(
    src: Path, paths: list[Path], endpoint: ModelEndpoint, docs: int, api: bool
) -> dict[str, Callable[[dict[str, str], int], float]]:
    """Each timed command: ``command(env, i)`` runs it once over the store ``env`` names (``i``: the run's number,
    for a fresh document to delete) and returns its seconds."""

    def store(env: dict[str, str]) -> str:
        return env["KGRAG_STORE_DIR"]

    commands: dict[str, Callable[[dict[str, str], int], float]] = {
        "kgrag --help": lambda env, _: _run(["--help"], env),
        "kgrag prompts list": lambda env, _: _run(["prompts", "list"], env),
        "kgrag model status": lambda env, _: _run(["model", "status"], env),
        f"kgrag ingest --sync (no change, {docs} docs)": lambda env, _: _run(
            ["ingest", str(src), "--store", store(env), "--sync"], env
        ),
        f"kgrag delete ID ({docs}-doc store)": lambda env, i: _run(
            ["delete", paths[i].relative_to(src).as_posix(), "--store", store(env)], env
        ),
        "kgrag ask, to its first model request": lambda env, _: _until_first_request(
            ["ask", "Who does Person7 report to?", "--store", store(env)], env, endpoint
        ),
    }
    if api:
        commands["kgrag serve, to its first /healthz 200"] = lambda env, _: _until_healthy(Path(store(env)), env)
    return commands


def _ratio(baseline: float, this: float) -> str:
    return f"{baseline / this:.2f}x" if this > 0 else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000, help="synthetic documents in the store")
    parser.add_argument("--runs", type=int, default=10, help="processes per command")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--skip-api", action="store_true", help="do not time kgrag serve")
    parser.add_argument(
        "--baseline", type=Path, default=None, help="a checkout of other code to time beside this one, run by run"
    )
    args = parser.parse_args()
    if args.baseline is not None and not (args.baseline / "pipelines" / "cli" / "main.py").is_file():
        raise SystemExit(f"--baseline {args.baseline} is not a kgrag checkout (no pipelines/cli/main.py)")
    if args.docs < 2 * args.runs:
        raise SystemExit("--docs must be at least twice --runs (each delete run removes a document of its own)")
    endpoint = ModelEndpoint()
    results: dict[str, dict[str, dict[str, float]]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="kgrag-startup-") as tmp:
            src, store = Path(tmp) / "src", Path(tmp) / "store"
            paths = write_tree(src, args.docs)
            variants = {"this": _environment(ROOT, endpoint, store)}
            first_ingest = _run(["ingest", str(src), "--store", str(store)], variants["this"], timeout=7200)
            if args.baseline is not None:
                shutil.copytree(store, Path(tmp) / "store-baseline", symlinks=True)
                variants["baseline"] = _environment(args.baseline.resolve(), endpoint, Path(tmp) / "store-baseline")
            commands = _commands(src, paths, endpoint, args.docs, not args.skip_api)
            for name, command in commands.items():
                runs: dict[str, list[tuple[float, float]]] = {variant: [] for variant in variants}
                for i in range(args.runs):
                    for n, (variant, env) in enumerate(variants.items()):  # alternate: the same conditions for both
                        runs[variant].append(_timed(partial(command, env, i * len(variants) + n)))
                results[name] = {
                    variant: _stats([wall for wall, _ in timed])
                    | {"cpu_median": round(statistics.median(cpu for _, cpu in timed), 3)}
                    for variant, timed in runs.items()
                }
                print(f"{name}: {results[name]}", file=sys.stderr, flush=True)
    finally:
        endpoint.close()
    report = {
        "docs": args.docs,
        "runs": args.runs,
        "baseline": str(args.baseline) if args.baseline else None,
        "first_full_ingest_s": round(first_ingest, 1),
        "commands": results,
    }
    width = max(len(name) for name in results)
    header = f"{'command':<{width}}  {'min s':>7}  {'median s':>8}  {'max s':>7}  {'CPU s':>6}"
    if args.baseline is not None:
        header += f"  {'baseline median s':>17}  {'CPU s':>6}  {'ratio wall':>10}  {'ratio CPU':>9}"
    print(header)
    for name, row in results.items():
        this = row["this"]
        line = f"{name:<{width}}  {this['min']:>7.3f}  {this['median']:>8.3f}  {this['max']:>7.3f}"
        line += f"  {this['cpu_median']:>6.3f}"
        if "baseline" in row:
            base = row["baseline"]
            line += (
                f"  {base['median']:>17.3f}  {base['cpu_median']:>6.3f}"
                f"  {_ratio(base['median'], this['median']):>10}  {_ratio(base['cpu_median'], this['cpu_median']):>9}"
            )
        print(line)
    print(f"(first full ingest of {args.docs} docs: {first_ingest:.1f} s; {args.runs} runs per command and code)")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n", "utf-8")


if __name__ == "__main__":
    main()
