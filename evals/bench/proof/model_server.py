"""Start the local llama.cpp model server on a free loopback port for a benchmark run, and stop it afterwards."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from core.errors import ModelUnavailableError
from core.local_model import model_path, model_spec, prepare_model, server_command
from core.settings import LocalModelName, ModelServerSettings, default_cache_dir


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_model_server(
    name: LocalModelName, log_path: Path, *, n_ctx: int = 4096, ready_timeout_s: float = 300.0
) -> Iterator[str]:
    """Serve local model ``name`` on 127.0.0.1 (a free port) and yield its OpenAI base URL; the server's output
    goes to ``log_path``. The process is terminated (then killed) on exit."""
    cache = default_cache_dir()
    spec = model_spec(name)
    gguf = model_path(spec, cache)
    if not gguf.exists():
        prepare_model(spec, cache)
    settings = ModelServerSettings(model=name, port=_free_port(), cache_dir=cache, n_ctx=n_ctx)
    base_url = f"http://127.0.0.1:{settings.port}/v1"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(server_command(settings, gguf), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + ready_timeout_s
            while True:
                if process.poll() is not None:
                    raise ModelUnavailableError(
                        f"local model server for {name} exited early", hint=f"see its log at {log_path}"
                    )
                try:
                    if httpx.get(base_url + "/models", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise ModelUnavailableError(
                        f"local model server for {name} not ready after {ready_timeout_s:g}s",
                        hint=f"see its log at {log_path}",
                    )
                time.sleep(0.5)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
