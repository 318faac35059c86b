"""Admission control, deadlines, cancellation and a responsive health check, through a real uvicorn server on
127.0.0.1 in front of a slow model endpoint (tests/slow_model.py: a fault a real model cannot be made to show)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import settings_for
from tests.api.test_answer_api import assert_problem
from tests.slow_model import SlowModelServer

QUESTION = {"question": "Who founded Northwind Robotics?"}


@pytest.fixture
def slow_model() -> Iterator[SlowModelServer]:
    server = SlowModelServer(delay_s=2.0)
    yield server
    server.stop()


def slow_settings(store: Path, model: SlowModelServer, **admission: object):  # type: ignore[no-untyped-def]
    return settings_for(
        store,
        model.base_url,
        "slow",
        gate={"enabled": False},
        prompts={"strict_retry": False},
        admission={"slots": 1, "queue_depth": 1, "initial_service_s": 2.0, **admission},
    )


def stored(client: httpx.Client) -> int:
    return len(client.get("/v1/answers", params={"limit": 200}).json()["items"])


def wait_until_idle(client: httpx.Client, timeout_s: float = 20.0) -> dict:  # type: ignore[type-arg]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        queue = client.get("/healthz").json()["queue"]
        if queue["in_flight"] == 0 and queue["waiting"] == 0:
            return queue  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("the queue did not drain")


def test_beyond_the_queue_is_429_and_health_answers_while_answers_queue(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    slow_model: SlowModelServer,
) -> None:
    api = live_api(slow_settings(sample_store, slow_model))
    before = stored(api.client)
    results: dict[str, httpx.Response] = {}

    def ask(name: str) -> None:
        with httpx.Client(base_url=api.base_url, timeout=60) as c:
            results[name] = c.post("/v1/answer", json=QUESTION)

    first = threading.Thread(target=ask, args=("running",))
    first.start()
    while slow_model.started < 1:
        time.sleep(0.02)
    second = threading.Thread(target=ask, args=("queued",))
    second.start()
    while api.client.get("/healthz").json()["queue"]["waiting"] < 1:
        time.sleep(0.02)
    health = api.client.get("/healthz")
    assert slow_model.finished == 0, "health answered while the model was busy"
    body = health.json()
    assert health.status_code == 200 and body["status"] == "ok" and body["model_status"] == "busy", body
    assert body["queue"]["in_flight"] == 1 and body["queue"]["waiting"] == 1 and body["queue"]["oldest_wait_s"] >= 0
    assert api.client.get("/v1/answers").status_code == 200, "read routes do not wait behind model work"
    full = api.client.post("/v1/answer", json=QUESTION)
    assert_problem(full, 429, "already waiting")
    assert 1 <= int(full.headers["Retry-After"]) <= 2, "when the line's head starts: the running answer's 2 s left"
    first.join()
    second.join()
    assert results["running"].status_code == 200 and results["queued"].status_code == 200
    assert stored(api.client) == before + 2
    queue = wait_until_idle(api.client)
    assert queue["measured"] == 2 and 1.5 < queue["service_time_s"] < 10


def test_a_request_past_its_deadline_is_a_503_and_stores_nothing(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    slow_model: SlowModelServer,
) -> None:
    api = live_api(slow_settings(sample_store, slow_model))
    before = stored(api.client)
    late = api.client.post("/v1/answer", json=QUESTION, headers={"X-Request-Timeout": "0.5"})
    assert slow_model.started == 1 and slow_model.finished == 0, "it ended at its deadline, before the model answered"
    assert_problem(late, 503, "deadline")
    assert int(late.headers["Retry-After"]) >= 1 and late.json()["type"].endswith("request-cancelled")
    wait_until_idle(api.client)
    assert slow_model.finished == 0, "its slot was freed at the deadline: the model call was aborted, not waited for"
    assert stored(api.client) == before, "the late answer was not stored"
    while slow_model.finished < 1:
        time.sleep(0.05)
    assert slow_model.aborted == 1, "the connection had been closed when the model answered"
    assert_problem(api.client.post("/v1/answer", json=QUESTION, headers={"X-Request-Timeout": "soon"}), 422, "soon")
    assert_problem(api.client.post("/v1/answer", json=QUESTION, headers={"X-Request-Timeout": "-1"}), 422, "positive")
    assert api.client.post("/v1/answer", json=QUESTION, headers={"X-Request-Timeout": "1e9"}).status_code == 200


def test_a_client_that_leaves_gets_nothing_generated_or_stored(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    slow_model: SlowModelServer,
) -> None:
    api = live_api(slow_settings(sample_store, slow_model, queue_depth=4))
    assert api.client.post("/v1/answer", json=QUESTION).status_code == 200  # warm: the next reach the model fast
    before = stored(api.client)
    runner = threading.Thread(target=_leave_after, args=(api.base_url, 1.5))
    runner.start()
    while slow_model.started < 2:
        time.sleep(0.01)
    queued = [threading.Thread(target=_leave_after, args=(api.base_url, 0.3)) for _ in range(2)]
    for t in queued:  # they wait behind the runner, and leave before it does
        t.start()
    for t in [*queued, runner]:
        t.join()
    wait_until_idle(api.client)
    assert slow_model.started == 2, "the two queued requests left before they were admitted: no model call"
    assert slow_model.finished == 1, "the running one's slot was freed when its client left, not after the model"
    assert stored(api.client) == before, "the running one was stopped: nothing stored"
    while slow_model.finished < 2:
        time.sleep(0.05)
    assert slow_model.aborted == 1, "its model call had been aborted: the connection was closed"


def _leave_after(base_url: str, seconds: float) -> None:
    with httpx.Client(base_url=base_url, timeout=seconds) as c, pytest.raises(httpx.ReadTimeout):
        c.post("/v1/answer", json=QUESTION)


def test_a_full_slow_queue_refuses_at_once_what_cannot_start_in_time(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    slow_model: SlowModelServer,
) -> None:
    api = live_api(slow_settings(sample_store, slow_model, queue_depth=4, max_wait_s=1.0))
    assert api.client.post("/v1/answer", json=QUESTION).status_code == 200  # measures the service time (2 s)
    runner = threading.Thread(target=lambda: httpx.post(f"{api.base_url}/v1/answer", json=QUESTION, timeout=30))
    runner.start()
    while slow_model.started < 2:
        time.sleep(0.02)
    refused = api.client.post("/v1/answer", json=QUESTION)
    assert_problem(refused, 503, "refused at once")  # from the estimate, without waiting out max_wait_s
    assert "could wait at most 1s" in refused.json()["detail"]
    service = api.client.get("/healthz").json()["queue"]["service_time_s"]
    # Come back when the running answer is within max_wait_s (1 s) of its end: less than one service time.
    assert 1 <= int(refused.headers["Retry-After"]) <= math.ceil(service)
    runner.join()
