"""Shared fixtures: the real embedder and real llama.cpp model servers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.llm import ModelClient
from core.local_model import model_path, model_spec, prepare_model, server_command
from core.settings import LocalModelName, ModelServerSettings, default_cache_dir
from tests.kg.conftest import BoltServer, start_arcadedb

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


#: Output tokens that let the tiny model close answer v3's JSON reply (schema-bounded: at most 3 evidence ids and a
#: 120-character answer, with the whitespace the grammar allows).
ANSWER_V3_MAX_TOKENS = 256


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RunningModelServer:
    """A llama-cpp-python server process serving one local model on loopback."""

    def __init__(self, name: LocalModelName, log_dir: Path) -> None:
        cache = default_cache_dir()
        spec = model_spec(name)
        gguf = model_path(spec, cache)
        if not gguf.exists():
            prepare_model(spec, cache)
        self.settings = ModelServerSettings(model=name, port=free_port(), cache_dir=cache)
        self.base_url = f"http://127.0.0.1:{self.settings.port}/v1"
        self.name = name
        self.log_path = log_dir / f"llama-server-{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(server_command(self.settings, gguf), stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout_s: float = 180.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"model server exited early; see {self.log_path}")
            try:
                if httpx.get(self.base_url + "/models", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"model server not ready after {timeout_s}s; see {self.log_path}")

    def client(self, **kwargs: object) -> ModelClient:
        return ModelClient(base_url=self.base_url, model=self.name, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def smol_server(artifacts_dir: Path) -> Iterator[RunningModelServer]:
    """SmolLM2-135M: fast, for plumbing tests only (it cannot follow JSON schemas)."""
    server = RunningModelServer("smollm2-135m", artifacts_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def qwen_server(artifacts_dir: Path) -> Iterator[RunningModelServer]:
    """Qwen2.5-Coder-1.5B-Instruct: the default local model; tests using it are marked ``slow``."""
    server = RunningModelServer("qwen2.5-coder-1.5b", artifacts_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smol_client(smol_server: RunningModelServer) -> ModelClient:
    return smol_server.client(max_tokens=64)


@pytest.fixture(scope="session")
def qwen_client(qwen_server: RunningModelServer) -> ModelClient:
    return qwen_server.client(max_tokens=256)


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real all-MiniLM-L6-v2 embedder, loaded once per session."""
    from retrieval.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """A store with data/ ingested (offline extractor), shared read-only by answer tests."""
    from core.settings import load_settings
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.stores import open_store

    root = tmp_path_factory.mktemp("sample-store")
    settings = load_settings(store_dir=root)
    store = open_store(settings, embedder, create=True)
    report = build_ingestor(settings, store, embedder).ingest([DATA_DIR])
    assert report.documents_added >= 4 and not report.skipped, report
    store.audit.close()
    return root


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BoltServer]:
    """ArcadeDB 26.10.2 (arcadedb-embedded wheel) with its Bolt plugin, databases ``kgtest`` and ``kgpush``.

    For the Neo4j store tests (tests/kg) and `kgrag graph push` (tests/pipelines/cli).
    """
    server = start_arcadedb(tmp_path_factory.mktemp("arcadedb"), ("kgtest", "kgpush"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def answer_records(sample_store: Path, embedder, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One real answer record of each gate decision (released, abstained, held for review), made by the answer service
    over ``sample_store`` with a scripted model (tests/pipelines/ops/answers.py); for the KPI tests."""
    from core.settings import Settings
    from pipelines.compose.stores import open_store
    from tests.pipelines.ops import answers

    store = open_store(Settings(store_dir=sample_store), embedder, create=False)
    audit = answers.scratch_audit(tmp_path_factory.mktemp("answer-records"))
    try:
        return answers.Made(
            released=answers.released(store, embedder, audit),
            abstained=answers.abstained(store, embedder, audit),
            held=answers.held(store, embedder, audit),
        )
    finally:
        audit.close()
        store.audit.close()
