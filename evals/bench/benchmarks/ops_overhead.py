"""What tracing and metrics cost an answer: ``POST /v1/answer`` with both on and with both off, side by side.

Two API servers (``kgrag serve``, one process each, on 127.0.0.1) serve the same store: ``off`` with
``KGRAG_TRACING__EXPORTER=none`` and ``KGRAG_API__METRICS_ENABLED=false``; ``on`` with metrics and every span
(sample ratio 1) exported over OTLP/HTTP to a collector stand-in on 127.0.0.1 that decodes each export. The model is
a stub OpenAI-compatible endpoint on 127.0.0.1 answering at once (the answer: the first sentence of passage [1],
cited; the judge: ``entailed``, and the answer's first words for relevance), so the whole cascade runs and what is
timed is the work outside model calls: retrieval (the real ONNX embedder, FAISS, BM25), graph context, prompt
assembly, the gate's cheap stages, the audit store, HTTP. Answers alternate between the two servers (the order flips
every round), one at a time. Prints p50/p95 of each, the ratio of the p50s (the goal: <= 1.02), each server's CPU time
per answer (from /proc: the exporter's thread included; what other load on the machine does not inflate), the stub's
own time, the spans exported, and the span tree of one answer::

    .venv/bin/python -m evals.bench.benchmarks.ops_overhead --rounds 100
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from core.settings import load_settings
from evals.bench.metrics import percentile
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store

ROOT = Path(__file__).resolve().parents[3]
DATA_DIR = ROOT / "data"
QUESTIONS = [
    "How many days of paid annual leave do employees get?",
    "Who founded Northwind Robotics?",
    "How long is parental leave?",
    "How long must passwords be?",
    "Within how many hours must security incidents be reported?",
    "Where are Heron robots assembled?",
]
_FIRST_PASSAGE = re.compile(r"^\[1\][^\n]*\n(.+?)\n", re.M)


class _Server:
    """A ThreadingHTTPServer on 127.0.0.1 in a daemon thread."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StubModel(_Server):
    """An OpenAI-compatible chat endpoint that answers at once; :attr:`busy_s` sums its handling time."""

    def __init__(self) -> None:
        self.calls = 0
        self.busy_s = 0.0
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name) - /models, for /healthz
                self._send({"object": "list", "data": [{"id": "stub", "object": "model"}]})

            def do_POST(self) -> None:  # noqa: N802
                started = time.perf_counter()
                request = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                user = next(m["content"] for m in request["messages"] if m["role"] == "user")
                self._send(completion(user, json_out="response_format" in request))
                stub.calls += 1
                stub.busy_s += time.perf_counter() - started

            def _send(self, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return None

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/v1"


_SENTENCE = re.compile(r"^(\d+\.\d+) (.+)$", re.M)


def completion(user: str, *, json_out: bool) -> dict[str, Any]:
    """The stub's reply: answer v3's JSON (the first shown sentence), a judge's JSON verdict, or the first sentence
    of passage [1] cited (a free-text prompt version)."""
    shown = _SENTENCE.findall(user)
    if json_out and shown and "\nText: " not in user and "\nClaim: " not in user:
        # answer v3's reply: the first shown sentence that is not a heading, pointed at by its id
        sentence_id, text = next(((i, t) for i, t in shown if not t.startswith("#")), shown[0])
        reply = json.dumps({"evidence": [sentence_id], "answer": text.strip().rstrip(".")[:120]})
    elif json_out:
        if "\nText: " in user:
            reply = json.dumps({"answer": " ".join(user.split("\nText: ", 1)[1].split()[:3])})
        else:
            reply = json.dumps({"verdict": "entailed"})
    else:
        found = _FIRST_PASSAGE.search(user)
        sentence = found.group(1).strip().split(". ")[0].rstrip(".") if found else "No passage"
        reply = f"{sentence} [1]."
    return {
        "id": "stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": reply}}],
        "usage": {"prompt_tokens": len(user) // 4, "completion_tokens": len(reply) // 4, "total_tokens": 0},
    }


class OtlpSink(_Server):
    """Stands in for a collector: decodes each OTLP/HTTP export and keeps (trace id, span id, parent, name)."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, str, str, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["content-length"])))
                for rs in request.resource_spans:
                    for scope in rs.scope_spans:
                        sink.spans += [
                            (s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name) for s in scope.spans
                        ]
                data = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return None

        super().__init__(Handler)
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"

    def per_answer(self) -> float:
        """Spans per answer: those of the traces a ``POST /v1/answer`` started, per such trace."""
        traces = {s[0] for s in self.spans if s[3] == "POST /v1/answer"}
        return round(sum(1 for s in self.spans if s[0] in traces) / max(1, len(traces)), 1)

    def tree(self) -> str:
        """The span names of the first answer's trace, as an indented tree."""
        roots = [s for s in self.spans if s[3] == "POST /v1/answer"]
        if not roots:
            return "(no answer traced)"
        trace = [s for s in self.spans if s[0] == roots[0][0]]
        lines: list[str] = []

        def walk(span_id: str, depth: int) -> None:
            for _, sid, _, name in [s for s in trace if s[2] == span_id]:
                lines.append("  " * depth + name)
                walk(sid, depth + 1)

        lines.append(roots[0][3])
        walk(roots[0][1], 1)
        return "\n".join(lines)


def free_port() -> int:
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as probe:
        return int(probe.server_address[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def serving(store: Path, env: dict[str, str], log: Path) -> Iterator[tuple[httpx.Client, int]]:
    """``kgrag serve`` on 127.0.0.1 with ``env`` on top of this process's, a client of it, and its pid; stopped with
    SIGTERM (its lifespan ends: queued spans are flushed) after."""
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli.main", "serve", "--store", str(store), "--port", str(port)]
    full = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "KGRAG_API__HOST": "127.0.0.1", **env}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=full, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    try:
        deadline = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"kgrag serve did not start; see {log}")
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        yield client, process.pid
    finally:
        client.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def ingested(store: Path) -> Path:
    """``store``, with data/ ingested into it first if it holds no snapshot yet."""
    settings = load_settings(store_dir=store)
    embedder = load_embedder(settings)
    knowledge = open_store(settings, embedder, create=True)
    if knowledge.snapshot_id is None:
        build_ingestor(settings, knowledge, embedder).ingest([DATA_DIR])
    knowledge.audit.close()
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=60, help="answers per app, alternating")
    parser.add_argument("--warmup", type=int, default=3, help="answers per app before timing")
    parser.add_argument("--store", type=Path, default=None, help="a store to reuse (default: data/ in a temp dir)")
    parser.add_argument(
        "--on",
        choices=("both", "tracing", "metrics", "none"),
        default="both",
        help="what the 'on' server turns on (none: both servers alike, the noise floor)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        store = ingested(args.store or Path(tmp) / "store")
        model, sink = StubModel(), OtlpSink()
        common = {"KGRAG_LLM_BASE_URL": model.url, "KGRAG_LLM_MODEL": "stub"}
        tracing = {
            "KGRAG_TRACING__EXPORTER": "otlp",
            "KGRAG_TRACING__ENDPOINT": sink.url,
            "KGRAG_TRACING__SERVICE_NAME": "bench",
        }
        metrics = {"KGRAG_API__METRICS_ENABLED": "true", "KGRAG_API__METRICS_PUBLIC_ON_LOOPBACK": "true"}
        off = {"KGRAG_API__METRICS_ENABLED": "false", "KGRAG_TRACING__EXPORTER": "none"}
        chosen = {"both": off | tracing | metrics, "tracing": off | tracing, "metrics": off | metrics, "none": off}
        envs = {"off": common | off, "on": common | chosen[args.on]}
        times: dict[str, list[float]] = {"off": [], "on": []}
        cpu: dict[str, float] = {"off": 0.0, "on": 0.0}
        decisions: dict[str, set[str]] = {"off": set(), "on": set()}
        with (
            serving(store, envs["off"], Path(tmp) / "off.log") as (off_client, off_pid),
            serving(store, envs["on"], Path(tmp) / "on.log") as (on_client, on_pid),
        ):
            servers = {"off": (off_client, off_pid), "on": (on_client, on_pid)}
            for i in range(args.warmup + args.rounds):
                order = ("on", "off") if i % 2 else ("off", "on")
                for mode in order:
                    client, pid = servers[mode]
                    question = QUESTIONS[i % len(QUESTIONS)]
                    c0, t0 = cpu_s(pid), time.perf_counter()
                    response = client.post("/v1/answer", json={"question": question})
                    took, used = time.perf_counter() - t0, cpu_s(pid) - c0
                    response.raise_for_status()
                    decisions[mode].add(response.json()["provenance"]["gate"]["decision"])
                    if i >= args.warmup:
                        times[mode].append(took)
                        cpu[mode] += used
            scraped = on_client.get("/metrics").text if args.on in ("both", "metrics") else ""
        model_calls, model_s = model.calls, model.busy_s
        model.close()
        sink.close()

    answers = 2 * (args.warmup + args.rounds)
    p50 = {m: statistics.median(t) * 1000 for m, t in times.items()}
    result = {
        "on": args.on,
        "rounds": args.rounds,
        "p50_ms": {m: round(v, 2) for m, v in p50.items()},
        "p95_ms": {m: round(percentile(t, 95) * 1000, 2) for m, t in times.items()},
        "mean_ms": {m: round(statistics.fmean(t) * 1000, 2) for m, t in times.items()},
        "ratio_p50_on_off": round(p50["on"] / p50["off"], 4),
        "server_cpu_ms_per_answer": {m: round(c / args.rounds * 1000, 2) for m, c in cpu.items()},
        "server_cpu_ratio_on_off": round(cpu["on"] / cpu["off"], 4),
        "model_calls_per_answer": round(model_calls / answers, 2),
        "stub_model_ms_per_answer": round(model_s / answers * 1000, 3),
        "spans_exported": len(sink.spans),
        "spans_per_answer": sink.per_answer(),
        "metrics_answers_counted": "kgrag_answers_total{" in scraped,
        "decisions": {m: sorted(d) for m, d in decisions.items()},
    }
    print(f"{'':>6} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9}")
    for mode in ("off", "on"):
        print(f"{mode:>6} {result['p50_ms'][mode]:>9} {result['p95_ms'][mode]:>9} {result['mean_ms'][mode]:>9}")
    print(f"on / off (p50): {result['ratio_p50_on_off']}  (goal <= 1.02)")
    c = result["server_cpu_ms_per_answer"]
    print(f"server CPU per answer ms: off {c['off']}, on {c['on']} (on / off {result['server_cpu_ratio_on_off']})")
    print(f"\nspan tree of one answer:\n{sink.tree()}\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
