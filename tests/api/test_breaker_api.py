"""The model breaker over real HTTP, against a real model server that is stopped and then restarted on its port."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.local_model import model_path, model_spec, server_command
from tests.api.conftest import settings_for
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer

QUESTION = {"question": "How many days of paid annual leave do employees get?"}


class RestartableServer(RunningModelServer):
    """A dedicated tiny-model server that can be started again on the same port after :meth:`stop`."""

    def restart(self) -> None:
        gguf = model_path(model_spec(self.name), self.settings.cache_dir)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(server_command(self.settings, gguf), stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()


def breaker_state(text: str) -> str:
    for family in text_string_to_metric_families(text):
        if family.name == "kgrag_model_breaker_state":
            return next(s.labels["state"] for s in family.samples if s.value == 1)
    raise AssertionError("no kgrag_model_breaker_state in /metrics")


@pytest.mark.integration
def test_breaker_opens_on_a_stopped_model_server_and_a_probe_closes_it(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    tmp_path: Path,
) -> None:
    server = RestartableServer("smollm2-135m", tmp_path)
    try:
        api = live_api(
            settings_for(
                sample_store,
                server.base_url,
                server.name,
                llm_max_tokens=ANSWER_V3_MAX_TOKENS,
                llm_timeout_s=300,  # a cold restarted server on a busy machine is slow to answer its first prompt
                gate={"enabled": False},
                prompts={"strict_retry": False},
                breaker={"failures": 2, "cooldown_s": 3},
                api={"request_timeout_s": 300},
            )
        )
        assert api.client.post("/v1/answer", json=QUESTION).status_code == 200
        assert api.client.get("/healthz").json()["breaker"]["state"] == "closed"

        server.stop()
        failed = api.client.post("/v1/answer", json=QUESTION)  # the generate step's two attempts fail: it opens
        assert failed.status_code == 503 and failed.json()["type"].endswith("/model-unavailable"), failed.text
        started = time.monotonic()
        refused = api.client.post("/v1/answer", json=QUESTION)
        assert refused.status_code == 503 and refused.json()["type"].endswith("/model-circuit-open"), refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 3
        assert time.monotonic() - started < 1.0, "an open breaker fails fast, without retrieval or a model call"
        health = api.client.get("/healthz").json()
        assert health["breaker"]["state"] == "open" and health["status"] == "degraded", health
        assert breaker_state(api.client.get("/metrics").text) == "open"

        server.restart()
        time.sleep(api.client.get("/healthz").json()["breaker"]["retry_after_s"] + 0.2)
        probe = api.client.post("/v1/answer", json=QUESTION)
        assert probe.status_code == 200, probe.text
        health = api.client.get("/healthz").json()
        assert health["breaker"]["state"] == "closed" and health["breaker"]["opened"] == 1, health
        assert breaker_state(api.client.get("/metrics").text) == "closed"
    finally:
        server.stop()


@pytest.mark.integration
def test_a_hung_model_server_ends_the_request_at_its_deadline_and_the_breaker_counts_it(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    smol_server: RunningModelServer,
) -> None:
    """``kill -STOP`` of the real model server: the answer ends at its deadline (503 + Retry-After), its model call
    is aborted there instead of waiting out KGRAG_LLM_TIMEOUT_S, the breaker counts the failure and opens."""
    api = live_api(
        settings_for(
            sample_store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"enabled": False},
            prompts={"strict_retry": False},
            breaker={"failures": 1, "cooldown_s": 60},
            api={"request_timeout_s": 600},
        )
    )
    assert api.client.post("/v1/answer", json=QUESTION).status_code == 200  # warm: the embedder is loaded
    before = len(api.client.get("/v1/answers").json()["items"])
    os.kill(smol_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        hung = api.client.post("/v1/answer", json=QUESTION, headers={"X-Request-Timeout": "15"})
        took = time.monotonic() - started
        assert hung.status_code == 503 and hung.json()["type"].endswith("/request-cancelled"), hung.text
        assert int(hung.headers["Retry-After"]) >= 1 and 15 <= took < 17, took
        end = time.monotonic() + 15
        while (health := api.client.get("/healthz").json())["queue"]["in_flight"] and time.monotonic() < end:
            time.sleep(0.1)
        assert health["queue"]["in_flight"] == 0, "the worker ended too: its model call was aborted"
        assert health["breaker"]["state"] == "open" and health["breaker"]["opened"] == 1, health["breaker"]
        refused = api.client.post("/v1/answer", json=QUESTION)
        assert refused.status_code == 503 and refused.json()["type"].endswith("/model-circuit-open"), refused.text
    finally:
        os.kill(smol_server.process.pid, signal.SIGCONT)
    assert len(api.client.get("/v1/answers").json()["items"]) == before, "nothing stored for the stopped request"
