"""A bounded load test of a running kgrag API on loopback: N clients, each wanting M answers, sending for a time cap.

Each client asks for its answers one after another (``POST /v1/answer`` with ``X-Request-Timeout: --deadline``;
client timeout = that deadline + 5 s). A refusal (429, or a 503 with ``Retry-After``) is waited out and the same
answer asked again, until the client has its M answers or the cap has passed: the cap stops new requests, and
requests already sent run to their end (each within its deadline). A prober hits ``/healthz`` every 0.5 s.

Reported: responses by status and problem type; ``/healthz`` p50/p99/max; the model's busy share = the service
time of the answers completed in the window (``queue.busy_s`` of ``/healthz``: completed answers x their mean
service time) / the slots (one per replica by default) / the window (first request to last response); per
replica, the answers it completed; and the answers stored that no client received (the audit store's count before
and after, less the 200s).

With ``--kill-pid PID --kill-endpoint URL --kill-at S``, the model server PID (serving URL, one of the API's
replicas) is sent SIGKILL S seconds into the run; the report gives the answers that replica held at that moment
and the errors after it (responses other than 200 and admission refusals: the goal is none beyond those held)::

    python -m evals.bench.benchmarks.load --url http://127.0.0.1:8000 --clients 50 --answers 2 --cap 180

Loopback only: the URL must be on 127.0.0.1 or localhost, and a killed PID must be a process whose command line
names the port of ``--kill-endpoint``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

QUESTIONS = [
    "Who leads the finance team that approves expenses above 500 euros?",
    "Who founded Northwind Robotics?",
    "How many days of annual leave do employees get?",
    "What does the employee handbook say about remote work?",
]
#: Problem types that are admission refusals under load (wait ``Retry-After``, ask again), not errors.
REFUSALS = frozenset({"queue-full", "overloaded"})
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Tally:
    """What the clients saw, and when."""

    out: Counter[str] = field(default_factory=Counter)
    #: (monotonic end time, outcome) of every request, for what came after a kill.
    ends: list[tuple[float, str]] = field(default_factory=list)
    first_sent: float | None = None
    last_end: float = 0.0

    def add(self, outcome: str) -> None:
        now = time.monotonic()
        self.out[outcome] += 1
        self.ends.append((now, outcome))
        self.last_end = max(self.last_end, now)


def _outcome(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "200"
    kind = "?"
    if response.headers.get("content-type", "").startswith("application/problem+json"):
        kind = str(response.json().get("type", "?")).rsplit("/", 1)[-1]
    retry = "" if "retry-after" in response.headers else " no Retry-After"
    return f"{response.status_code} {kind}{retry}"


def _is_error(outcome: str) -> bool:
    return outcome != "200" and outcome.split(" ")[-1] not in REFUSALS


async def _health(client: httpx.AsyncClient) -> dict[str, Any]:
    return (await client.get("/healthz")).json()  # type: ignore[no-any-return]


async def _stored(client: httpx.AsyncClient) -> int:
    total, offset = 0, 0
    while True:
        page = (await client.get("/v1/answers", params={"limit": 500, "offset": offset})).json()["items"]
        total += len(page)
        if len(page) < 500:
            return total
        offset += 500


async def _client(base: str, n: int, answers: int, deadline_s: float, stop_at: float, tally: Tally) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=deadline_s + 5) as client:
        got, asked = 0, 0
        while got < answers and time.monotonic() < stop_at:
            tally.first_sent = tally.first_sent or time.monotonic()
            try:
                r = await client.post(
                    "/v1/answer",
                    json={"question": QUESTIONS[(n + asked) % len(QUESTIONS)]},
                    headers={"X-Request-Timeout": f"{deadline_s:.1f}"},
                )
            except httpx.TimeoutException:
                tally.add("client timeout")
                continue
            except httpx.HTTPError as exc:
                tally.add(f"connection error {type(exc).__name__}")
                await asyncio.sleep(1)
                continue
            outcome = _outcome(r)
            tally.add(outcome)
            if r.status_code == 200:
                got, asked = got + 1, asked + 1
            else:
                pause = float(r.headers.get("retry-after", 1))
                await asyncio.sleep(min(pause, max(0.0, stop_at - time.monotonic())))


async def _probe(base: str, stop: asyncio.Event, times: list[float], failures: Counter[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                r = await client.get("/healthz")
                times.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    failures[f"healthz {r.status_code}"] += 1
            except httpx.HTTPError:
                failures["healthz timeout"] += 1
            await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Kill:
    """A model server to SIGKILL mid-run."""

    pid: int
    endpoint: str
    at_s: float


async def _kill(base: str, kill: Kill, t0: float, seen: dict[str, Any]) -> None:
    await asyncio.sleep(max(0.0, t0 + kill.at_s - time.monotonic()))
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        replicas = (await _health(admin))["queue"]["replicas"]
    held = next((r["in_flight"] for r in replicas if r["endpoint"] == kill.endpoint), None)
    os.kill(kill.pid, signal.SIGKILL)
    seen |= {"at": time.monotonic(), "held": held}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    base: str, clients: int, answers: int, cap_s: float, deadline_s: float, settle_s: float, kill: Kill | None
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        before = await _stored(admin)
        start = (await _health(admin))["queue"]
    tally = Tally()
    probes: Counter[str] = Counter()
    times: list[float] = []
    stop = asyncio.Event()
    killed: dict[str, Any] = {}
    t0 = time.monotonic()
    prober = asyncio.create_task(_probe(base, stop, times, probes))
    killer = asyncio.create_task(_kill(base, kill, t0, killed)) if kill else None
    await asyncio.gather(*(_client(base, n, answers, deadline_s, t0 + cap_s, tally) for n in range(clients)))
    window = max(tally.last_end, t0) - (tally.first_sent or t0)
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        end = (await _health(admin))["queue"]  # read at the last response, before anything else completes
    stop.set()
    await prober
    if killer is not None:
        killer.cancel()
    await asyncio.sleep(settle_s)  # answers still running may finish (and must not be stored)
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        after = await _stored(admin)
    completed = end["measured"] - start["measured"]
    busy = end["busy_s"] - start["busy_s"]
    served = {
        r["endpoint"]: r["measured"] - next(s["measured"] for s in start["replicas"] if s["endpoint"] == r["endpoint"])
        for r in end["replicas"]
    }
    report: dict[str, Any] = {
        "clients": clients,
        "answers_per_client": answers,
        "cap_s": cap_s,
        "window_s": round(window, 1),
        "responses": dict(sorted(tally.out.items())),
        "errors": sum(n for outcome, n in tally.out.items() if _is_error(outcome)),
        "healthz": {
            "n": len(times),
            "p50_ms": round(_pct(times, 0.5), 1),
            "p99_ms": round(_pct(times, 0.99), 1),
            "max_ms": round(max(times, default=float("nan")), 1),
            "median_ms": round(statistics.median(times), 1) if times else None,
            "failures": dict(probes),
        },
        "answers_completed": completed,
        "mean_service_s": round(busy / completed, 1) if completed else None,
        "model_busy_share": round(busy / end["slots"] / window, 3) if window > 0 else None,
        "served_by_replica": {
            url: {"answers": n, "share": round(n / max(1, completed), 2)} for url, n in served.items()
        },
        "stored_without_a_receiver": after - before - tally.out["200"],
    }
    if kill is not None:
        after_kill = Counter(o for at, o in tally.ends if killed and at >= killed["at"] and _is_error(o))
        report["kill"] = {
            "endpoint": kill.endpoint,
            "at_s": kill.at_s,
            "done": bool(killed),
            "held_at_kill": killed.get("held"),
            "errors_after_kill": dict(after_kill),
            "errors_beyond_held": max(0, sum(after_kill.values()) - (killed.get("held") or 0)),
        }
    return report


def _check_kill(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Kill | None:
    given = [args.kill_pid is not None, args.kill_endpoint is not None, args.kill_at is not None]
    if not any(given):
        return None
    if not all(given):
        parser.error("--kill-pid, --kill-endpoint and --kill-at go together")
    url = urlparse(args.kill_endpoint)
    if url.hostname not in LOOPBACK or url.port is None:
        parser.error("--kill-endpoint must be a loopback URL with a port, e.g. http://127.0.0.1:8081/v1")
    try:
        cmdline = Path(f"/proc/{args.kill_pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        parser.error(f"no process {args.kill_pid}")
    if str(url.port).encode() not in cmdline:
        parser.error(f"process {args.kill_pid} does not name port {url.port} on its command line")
    return Kill(args.kill_pid, args.kill_endpoint, args.kill_at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--answers", type=int, default=2, help="answers each client wants")
    parser.add_argument("--cap", type=float, default=90.0, help="seconds during which clients send requests")
    parser.add_argument("--deadline", type=float, default=120.0, help="X-Request-Timeout each request sends")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the clients stop")
    parser.add_argument("--kill-pid", type=int, help="a model server process to SIGKILL mid-run")
    parser.add_argument("--kill-endpoint", help="the API replica URL that process serves")
    parser.add_argument("--kill-at", type=float, help="seconds into the run")
    args = parser.parse_args()
    if urlparse(args.url).hostname not in LOOPBACK:
        parser.error("loopback only: --url must be on 127.0.0.1 or localhost")
    if not (1 <= args.clients <= 200 and 1 <= args.answers <= 20 and 0 < args.cap <= 600 and 0 < args.deadline <= 600):
        parser.error("bounded: 1-200 clients, 1-20 answers each, a cap and a deadline of at most 600 s")
    kill = _check_kill(parser, args)
    report = asyncio.run(run(args.url, args.clients, args.answers, args.cap, args.deadline, args.settle, kill))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
