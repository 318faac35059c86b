"""A real uvicorn server on 127.0.0.1 serving the app built from injected settings."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from core.settings import Settings
from core.tracing import Tracing
from tests.conftest import free_port


@dataclass
class LiveApi:
    """A running API and an httpx client pointed at it."""

    base_url: str
    client: httpx.Client
    settings: Settings


@pytest.fixture
def live_api() -> Iterator[callable]:  # type: ignore[valid-type]
    servers: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(settings: Settings, tracing: Tracing | None = None) -> LiveApi:
        port = free_port()
        config = uvicorn.Config(create_app(settings, tracing), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 120
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.05)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=1800)
        servers.append((server, thread, client))
        return LiveApi(f"http://127.0.0.1:{port}", client, settings)

    yield start
    for server, thread, client in servers:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}/v1"


def settings_for(store: Path, base_url: str, model: str, **extra: object) -> Settings:
    return Settings(store_dir=store, llm_base_url=base_url, llm_model=model, **extra)  # type: ignore[arg-type]
