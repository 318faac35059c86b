"""A real Prometheus (Debian's ``prometheus`` package) scrapes the API on 127.0.0.1 with an admin key; PromQL
through its HTTP API returns the answer-decision series after two answers by the tiny model."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from core.settings import DEFAULT_GATE_STAGES
from tests.api.conftest import settings_for
from tests.api.keys import ADMIN, CHAT, bearer, key_settings
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer, free_port

PROMETHEUS = shutil.which("prometheus")


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        assert PROMETHEUS, "install Debian's prometheus package (apt-get install prometheus)"
        config = tmp_path / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "kgrag",
                            "metrics_path": "/metrics",
                            "authorization": {"credentials": ADMIN},
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        port = free_port()
        log = (tmp_path / "prometheus.log").open("wb")
        procs.append(
            subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"prometheus not ready; see {tmp_path / 'prometheus.log'}")

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)


def query(prom: str, promql: str) -> list[dict]:  # type: ignore[type-arg]
    body = httpx.get(prom + "/api/v1/query", params={"query": promql}, timeout=10).json()
    assert body["status"] == "success", body
    return body["data"]["result"]  # type: ignore[no-any-return]


@pytest.mark.integration
def test_prometheus_scrapes_the_answer_decisions(  # type: ignore[no-untyped-def]
    live_api, prometheus, sample_store: Path, smol_server: RunningModelServer
) -> None:
    api = live_api(
        settings_for(
            sample_store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"stages": [s for s in DEFAULT_GATE_STAGES if s != "judge"]},
            api={"keys": key_settings(), "request_timeout_s": 600},
        )
    )
    prom = prometheus(api.base_url.removeprefix("http://"))
    decisions = []
    for question in ("How many days of paid annual leave do employees get?", "Who founded Northwind Robotics?"):
        response = api.client.post("/v1/answer", json={"question": question}, headers=bearer(CHAT))
        assert response.status_code == 200, response.text
        decisions.append(response.json()["provenance"]["gate"]["decision"])
    deadline = time.monotonic() + 30
    while True:
        series = query(prom, "sum by (decision) (kgrag_answers_total)")
        got = {s["metric"]["decision"]: float(s["value"][1]) for s in series}
        if sum(got.values()) == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert got == {d: float(decisions.count(d)) for d in set(decisions)}, got
    up = query(prom, 'up{job="kgrag"}')
    assert up and up[0]["value"][1] == "1", "the scrape with the admin key succeeds"
    assert query(prom, 'kgrag_model_breaker_state{state="closed"} == 1'), "the breaker's state is scraped"
    retrievals = query(prom, 'kgrag_retrieval_duration_seconds_count{mode="graph"}')
    assert retrievals and float(retrievals[0]["value"][1]) == 2, "retrieval latency by mode"
    assert query(prom, 'kgrag_kpi_current{kpi="release_rate"}'), "the drift watch's KPIs are scraped"
