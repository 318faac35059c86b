"""Admission with two real model servers behind one API (``KGRAG_LLM_BASE_URL`` lists both): each replica has its
slot, so two answers run at once, one on each; a ``kill -9`` of one mid-answer loses no answer (the one it held is
retried on the other), and the dead one takes no new answers while it is ejected."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import settings_for
from tests.conftest import RunningModelServer

QUESTION = {"question": "How many days of paid annual leave do employees get?"}


@pytest.fixture
def replica(tmp_path: Path) -> Iterator[RunningModelServer]:
    server = RunningModelServer("smollm2-135m", tmp_path)
    yield server
    server.stop()  # after a kill -9 it only closes the log


@pytest.mark.integration
def test_two_replicas_serve_two_answers_at_once_and_a_kill_9_loses_none(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    smol_server: RunningModelServer,
    replica: RunningModelServer,
) -> None:
    api = live_api(
        settings_for(
            sample_store,
            f"{smol_server.base_url},{replica.base_url}",
            smol_server.name,
            llm_max_tokens=128,  # long enough for the two answers to overlap on a loaded machine
            llm_replica_cooldown_s=600,
            gate={"enabled": False},
            prompts={"strict_retry": False},
            admission={"slots": 1, "queue_depth": 2},
            api={"request_timeout_s": 900},
        )
    )
    for _ in range(2):  # warm: the embedder is loaded, and each server has evaluated the prompt once (alike)
        assert api.client.post("/v1/answer", json=QUESTION).status_code == 200
    assert [r["measured"] for r in api.client.get("/healthz").json()["queue"]["replicas"]] == [1, 1], "alternating"
    results: list[httpx.Response] = []

    def ask() -> None:
        with httpx.Client(base_url=api.base_url, timeout=900) as c:
            results.append(c.post("/v1/answer", json=QUESTION))

    askers = [threading.Thread(target=ask) for _ in range(2)]
    for t in askers:
        t.start()
    end = time.monotonic() + 120
    while time.monotonic() < end and len(results) < 2:
        queue = api.client.get("/healthz").json()["queue"]
        if [r["in_flight"] for r in queue["replicas"]] == [1, 1]:
            break
        time.sleep(0.05)
    assert [r["in_flight"] for r in queue["replicas"]] == [1, 1] and queue["waiting"] == 0, queue
    os.kill(replica.process.pid, signal.SIGKILL)  # mid-answer: it holds one of the two
    for t in askers:
        t.join()
    assert [r.status_code for r in results] == [200, 200], [r.text for r in results]
    queue = api.client.get("/healthz").json()["queue"]
    assert [r["ejected"] for r in queue["replicas"]] == [False, True], queue
    assert [r["measured"] for r in queue["replicas"]] == [2, 2], "each slot completed its answer"
    assert api.client.post("/v1/answer", json=QUESTION).status_code == 200
    assert [r["measured"] for r in api.client.get("/healthz").json()["queue"]["replicas"]] == [3, 2], (
        "the ejected replica took no new answer"
    )
