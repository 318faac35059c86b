"""A bounded load test of a running kgrag API on loopback: N clients x M answers within a time cap.

Each client asks its answers one after another (``POST /v1/answer``, client timeout = the deadline it sends in
``X-Request-Timeout`` + 5 s); a prober hits ``/healthz`` every 0.5 s meanwhile. Reports the counts of 200 / 429 /
503 (with and without ``Retry-After``) / client timeouts / other, ``/healthz`` p50/p99/max, the model's busy share
(answers completed x the server's measured mean service time / the window), and the answers stored that no client
received (the audit store's count before and after, less the 200s)::

    .venv/bin/python -m evals.bench.benchmarks.load --url http://127.0.0.1:8000 --clients 20 --answers 2 --cap 90

Loopback only: the URL must be on 127.0.0.1 or localhost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections import Counter
from urllib.parse import urlparse

import httpx

QUESTIONS = [
    "Who leads the finance team that approves expenses above 500 euros?",
    "Who founded Northwind Robotics?",
    "How many days of annual leave do employees get?",
    "What does the employee handbook say about remote work?",
]


async def _stored(client: httpx.AsyncClient) -> int:
    total, offset = 0, 0
    while True:
        page = (await client.get("/v1/answers", params={"limit": 500, "offset": offset})).json()["items"]
        total += len(page)
        if len(page) < 500:
            return total
        offset += 500


async def _client(base: str, n: int, answers: int, deadline_s: float, stop_at: float, out: Counter[str]) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=deadline_s + 5) as client:
        for i in range(answers):
            left = stop_at - time.monotonic()
            if left <= 1:
                return
            try:
                r = await asyncio.wait_for(
                    client.post(
                        "/v1/answer",
                        json={"question": QUESTIONS[(n + i) % len(QUESTIONS)]},
                        headers={"X-Request-Timeout": f"{min(deadline_s, left):.1f}"},
                    ),
                    timeout=left,
                )
            except (httpx.TimeoutException, TimeoutError):
                out["timeout"] += 1
                continue
            except httpx.HTTPError:
                out["other"] += 1
                continue
            if r.status_code in (503, 429):
                out[f"{r.status_code}" + ("" if "retry-after" in r.headers else " no Retry-After")] += 1
                await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), max(0.0, stop_at - time.monotonic())))
            elif r.status_code == 200:
                out["200"] += 1
            else:
                out[f"other {r.status_code}"] += 1


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


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(base: str, clients: int, answers: int, cap_s: float, deadline_s: float, settle_s: float) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        before = await _stored(admin)
        start_queue = (await admin.get("/healthz")).json()["queue"]
    out: Counter[str] = Counter()
    probes: Counter[str] = Counter()
    times: list[float] = []
    stop = asyncio.Event()
    t0 = time.monotonic()
    stop_at = t0 + cap_s
    prober = asyncio.create_task(_probe(base, stop, times, probes))
    await asyncio.gather(*(_client(base, n, answers, deadline_s, stop_at, out) for n in range(clients)))
    window = time.monotonic() - t0
    stop.set()
    await prober
    await asyncio.sleep(settle_s)  # answers still running may finish (and must not be stored)
    async with httpx.AsyncClient(base_url=base, timeout=10) as admin:
        after = await _stored(admin)
        queue = (await admin.get("/healthz")).json()["queue"]
    completed = queue["measured"] - start_queue["measured"]
    return {
        "clients": clients,
        "answers_per_client": answers,
        "window_s": round(window, 1),
        "responses": dict(sorted(out.items())),
        "healthz": {
            "n": len(times),
            "p50_ms": round(_pct(times, 0.5), 1),
            "p99_ms": round(_pct(times, 0.99), 1),
            "max_ms": round(max(times, default=float("nan")), 1),
            "median_ms": round(statistics.median(times), 1) if times else None,
            "failures": dict(probes),
        },
        "answers_completed": completed,
        "service_time_s": queue["service_time_s"],
        "model_busy_share": round(completed * queue["service_time_s"] / window, 3),
        "stored_without_a_receiver": after - before - out["200"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--answers", type=int, default=2)
    parser.add_argument("--cap", type=float, default=90.0, help="seconds the clients may run")
    parser.add_argument("--deadline", type=float, default=60.0, help="X-Request-Timeout each request sends")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait after the clients stop")
    args = parser.parse_args()
    host = urlparse(args.url).hostname
    if host not in {"127.0.0.1", "localhost", "::1"}:
        parser.error("loopback only: --url must be on 127.0.0.1 or localhost")
    if not (1 <= args.clients <= 200 and 1 <= args.answers <= 20 and 0 < args.cap <= 600):
        parser.error("bounded: 1-200 clients, 1-20 answers each, a cap of at most 600 s")
    report = asyncio.run(run(args.url, args.clients, args.answers, args.cap, args.deadline, args.settle))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
