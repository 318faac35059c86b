"""Graceful shutdown of a real ``kgrag serve`` subprocess: the first SIGTERM stops admitting (503 + Retry-After),
the answer in flight is stopped after the grace period, and the process exits without a second signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.slow_model import SlowModelServer

KGRAG = str(Path(sys.executable).parent / "kgrag")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.integration
def test_first_sigterm_stops_admitting_cancels_after_the_grace_and_exits(sample_store: Path, tmp_path: Path) -> None:
    model = SlowModelServer(delay_s=4.0)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_HUB_OFFLINE": "1",
        "KGRAG_LLM_BASE_URL": model.base_url,
        "KGRAG_LLM_MODEL": "slow",
        "KGRAG_GATE__ENABLED": "false",
        "KGRAG_PROMPTS__STRICT_RETRY": "false",
        "KGRAG_API__SHUTDOWN_GRACE_S": "1",
        "KGRAG_ADMISSION__SLOTS": "1",
        "KGRAG_ADMISSION__QUEUE_DEPTH": "2",
    }
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [KGRAG, "serve", "--store", str(sample_store), "--port", str(port)], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end and proc.poll() is None, (tmp_path / "api.log").read_text()[-2000:]
            time.sleep(0.2)
        results: dict[str, httpx.Response] = {}

        def ask(name: str) -> None:
            results[name] = httpx.post(f"{base}/v1/answer", json={"question": "Who founded Northwind?"}, timeout=30)

        running = threading.Thread(target=ask, args=("running",))
        running.start()
        while model.started < 1:
            time.sleep(0.02)
        queued = threading.Thread(target=ask, args=("queued",))
        queued.start()
        while httpx.get(f"{base}/healthz", timeout=2).json()["queue"]["waiting"] < 1:
            time.sleep(0.02)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        queued.join()
        running.join()
        assert results["queued"].status_code == 503 and results["queued"].json()["type"].endswith("shutting-down")
        assert int(results["queued"].headers["Retry-After"]) >= 1
        assert results["running"].status_code == 503, results["running"].text
        assert results["running"].json()["type"].endswith("request-cancelled")
        assert "Retry-After" in results["running"].headers
        proc.wait(timeout=15)
        assert time.monotonic() - t0 < 10, "exited on the first signal, within the grace and the drain"
        assert proc.returncode in (0, -signal.SIGTERM)
        assert model.started == 1, "the queued answer never reached the model"
        assert "admitting no new answers" in (tmp_path / "api.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
        model.stop()
