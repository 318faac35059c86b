"""ModelClient over several replicas: requests spread over the endpoints, a failing one is ejected and the request
retried on another, and one endpoint behaves as it always did.

The 5xx fault is caused with a small OpenAI-shaped HTTP server on 127.0.0.1 (a real model server cannot be made to
answer 503 on demand); the spread and the ``kill -9`` run against two real llama.cpp servers (``integration``).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.deadline import Deadline
from core.errors import ModelUnavailableError, RequestCancelledError
from core.llm import LIVENESS_PROBE_S, ModelClient
from core.settings import load_settings
from tests.conftest import RunningModelServer, free_port

HELLO = [{"role": "user", "content": "Say hello."}]


class StubEndpoint:
    """An OpenAI-compatible chat endpoint on 127.0.0.1 answering ``status`` (200: a one-word completion)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests = 0
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                endpoint.requests += 1
                if endpoint.status == 200:
                    body = {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "stub",
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
                        ],
                    }
                else:
                    body = {"error": {"message": "overloaded", "type": "server_error"}}
                data = json.dumps(body).encode()
                self.send_response(endpoint.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stubs() -> Iterator[list[StubEndpoint]]:
    made = [StubEndpoint(), StubEndpoint()]
    yield made
    for stub in made:
        stub.close()


def test_settings_list_several_endpoints() -> None:
    client = ModelClient.from_settings(
        load_settings(
            llm_base_url="http://127.0.0.1:1/v1, http://127.0.0.1:2/v1",
            llm_replica_cooldown_s=5,
            llm_replica_cooldown_max_s=40,
        )
    )
    assert [r.url for r in client.pool.replicas] == ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]
    assert (client.pool.cooldown_s, client.pool.max_cooldown_s) == (5, 40)


def test_a_5xx_endpoint_is_ejected_and_the_request_retried_on_the_other(stubs: list[StubEndpoint]) -> None:
    bad, good = stubs
    bad.status = 503
    client = ModelClient(base_url=f"{bad.url},{good.url}", model="stub", timeout_s=10)
    for _ in range(6):
        assert client.chat(HELLO).text == "hi"
    assert bad.requests == 1 and good.requests == 6  # tried once, then left alone during its cool-down
    assert client.pool.ejected() == [bad.url]
    bad.status = 200
    client.pool.replicas[0].ejected_until = 0.0  # the cool-down is over
    for _ in range(4):
        client.chat(HELLO)
    assert bad.requests == 3 and good.requests == 8  # back in the rotation


def test_a_refused_connection_is_retried_on_the_other_endpoint(stubs: list[StubEndpoint]) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    client = ModelClient(base_url=f"{closed},{stubs[0].url}", model="stub", timeout_s=10)
    assert [client.chat(HELLO).text for _ in range(3)] == ["hi"] * 3
    assert client.pool.ejected() == [closed] and stubs[0].requests == 3


def test_when_every_endpoint_fails_the_error_names_each(stubs: list[StubEndpoint]) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    stubs[0].status = 500
    client = ModelClient(base_url=f"{stubs[0].url},{closed}", model="stub", timeout_s=10)
    with pytest.raises(ModelUnavailableError) as info:
        client.chat(HELLO)
    message = str(info.value)
    assert f"{stubs[0].url}: HTTP 500" in message and f"{closed}: APIConnectionError" in message
    assert "are not reachable" in message and "kgrag model serve" in message


def test_a_4xx_is_the_request_s_fault_and_ejects_nothing(stubs: list[StubEndpoint]) -> None:
    stubs[0].status = 404
    client = ModelClient(base_url=f"{stubs[0].url},{stubs[1].url}", model="stub", timeout_s=10)
    with pytest.raises(ModelUnavailableError, match="answered HTTP 404"):
        client.chat(HELLO)
    assert stubs[1].requests == 0 and client.pool.ejected() == []


def test_one_endpoint_keeps_its_errors_and_is_never_ejected(stubs: list[StubEndpoint]) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    client = ModelClient(base_url=closed, model="m", timeout_s=10)
    for _ in range(2):  # the same message each time, and the second request tries again
        with pytest.raises(ModelUnavailableError) as info:
            client.chat(HELLO)
        assert info.value.message == f"model server at {closed} is not reachable: APIConnectionError"
    assert client.pool.replicas[0].failures == 2 and client.pool.ejected() == []
    stubs[0].status = 503
    single = ModelClient(base_url=stubs[0].url, model="stub", timeout_s=10)
    with pytest.raises(ModelUnavailableError, match=r"answered HTTP 503: .*overloaded"):
        single.chat(HELLO)
    assert stubs[0].requests == 1
    with pytest.raises(ModelUnavailableError, match="is not reachable"):
        client.served_models(timeout_s=2)


def test_served_models_skips_an_unreachable_endpoint(smol_server: RunningModelServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/v1"
    client = ModelClient(base_url=f"{closed},{smol_server.base_url}", model=smol_server.name)
    assert client.served_models() == [smol_server.name]
    assert client.pool.ejected() == [closed]


# ----- two real model servers -----


@pytest.fixture
def second_smol(artifacts_dir: Path) -> Iterator[RunningModelServer]:
    (artifacts_dir / "replica").mkdir(exist_ok=True)
    server = RunningModelServer("smollm2-135m", artifacts_dir / "replica")
    yield server
    server.stop()  # after a kill -9 it only closes the log


def _served(server: RunningModelServer) -> int:
    """Chat completions the server's own access log records."""
    return server.log_path.read_text("utf-8", "replace").count("POST /v1/chat/completions")


@pytest.mark.integration
def test_two_real_servers_share_the_requests(smol_server: RunningModelServer, second_smol: RunningModelServer) -> None:
    client = ModelClient(
        base_url=f"{smol_server.base_url},{second_smol.base_url}", model=smol_server.name, max_tokens=4
    )
    for server in (smol_server, second_smol):  # a fresh server's first request is slow: warm both before counting
        ModelClient(base_url=server.base_url, model=server.name, max_tokens=4).chat(HELLO)
    before = _served(smol_server), _served(second_smol)
    n = 40
    with ThreadPoolExecutor(4) as workers:
        results = list(workers.map(lambda _: client.chat(HELLO), range(n)))
    assert all(r.model == smol_server.name for r in results)
    counts = [r.served for r in client.pool.replicas]
    errors = [(r.failures, r.last_error) for r in client.pool.replicas]
    assert sum(counts) == n and all(0.25 * n <= c <= 0.75 * n for c in counts), (counts, errors)  # least loaded
    deadline = time.monotonic() + 10  # the access log line is written after the response
    while True:
        logged = [_served(smol_server) - before[0], _served(second_smol) - before[1]]
        if logged == counts or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert logged == counts, (logged, counts)


@pytest.mark.integration
def test_kill_9_of_one_server_mid_run_loses_no_request(
    smol_server: RunningModelServer, second_smol: RunningModelServer
) -> None:
    client = ModelClient(
        base_url=f"{second_smol.base_url},{smol_server.base_url}",
        model=smol_server.name,
        max_tokens=24,
        replica_cooldown_s=600,  # it stays out to the end (taking it back is tested above)
    )
    n, done = 40, threading.Event()
    finished: list[int] = []

    def one(i: int) -> str:
        text = client.chat([{"role": "user", "content": f"Count to ten, request {i}."}]).text
        finished.append(i)
        if len(finished) == 8:
            done.set()
        return text

    with ThreadPoolExecutor(4) as workers:
        futures = [workers.submit(one, i) for i in range(n)]
        assert done.wait(300)
        held = client.pool.replicas[0].in_flight
        os.kill(second_smol.process.pid, signal.SIGKILL)  # mid-run, with requests in flight on it
        errors = [f.exception(timeout=600) for f in futures]
    assert second_smol.process.wait(10) == -signal.SIGKILL
    assert errors == [None] * n  # the requests it held were retried on the other
    killed, survivor = client.pool.replicas
    assert killed.failures >= held >= 1, (killed, held)  # it held requests when it died; each one failed there
    assert killed.served + survivor.served == n and survivor.served > killed.served
    assert client.pool.ejected() == [second_smol.base_url]


# ----- calls under a request's deadline -----


COUNT = [{"role": "user", "content": "Count from 1 to 500, one number per line, and nothing else."}]
#: A reply schema the model cannot close before 4,000 characters: the tiny model left to itself stops counting at 10
#: (51 tokens, 1.5 s), so only a grammar keeps it generating up to max_tokens.
LONG = {"type": "object", "properties": {"numbers": {"type": "string", "minLength": 4000}}, "required": ["numbers"]}


def test_a_call_of_a_request_already_stopped_is_not_sent(stubs: list[StubEndpoint]) -> None:
    client = ModelClient(base_url=stubs[0].url, model="stub", timeout_s=10)
    deadline = Deadline(60)
    deadline.cancel("the client disconnected")
    with deadline.bound(), pytest.raises(RequestCancelledError, match="the client disconnected"):
        client.chat(HELLO)
    assert stubs[0].requests == 0
    with Deadline(60).bound():
        assert client.chat(HELLO).text == "hi", "a request with time left is sent as usual"


@pytest.mark.integration
def test_a_call_past_its_deadline_on_a_live_server_is_the_requests_timeout(smol_server: RunningModelServer) -> None:
    client = smol_server.client(max_tokens=400, timeout_s=600)
    started = time.monotonic()
    with Deadline(1.5).bound(), pytest.raises(RequestCancelledError, match="the deadline passed"):
        client.chat(COUNT, json_schema=LONG, json_mode=True)
    took = time.monotonic() - started
    assert 1.5 <= took < 1.5 + LIVENESS_PROBE_S + 1, took  # aborted at the deadline (the server answered)
    assert client.pool.replicas[0].failures == 0, "a live server that ran out of the request's time did not fail"


@pytest.mark.integration
def test_a_call_to_a_hung_server_ends_at_its_deadline_as_a_model_failure(smol_server: RunningModelServer) -> None:
    """``kill -STOP`` of the real server (a hung model): the call ends at the deadline as ModelUnavailableError, the
    failure a breaker counts; the live replica beside it is untouched."""
    hung = smol_server.base_url
    client = ModelClient(base_url=hung, model=smol_server.name, max_tokens=8, timeout_s=600)
    os.kill(smol_server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with Deadline(2.0).bound(), pytest.raises(ModelUnavailableError, match="does not answer") as info:
            client.chat(HELLO)
        took = time.monotonic() - started
    finally:
        os.kill(smol_server.process.pid, signal.SIGCONT)
    assert 2.0 <= took < 2.0 + LIVENESS_PROBE_S + 1, took
    assert "no reply within the request's deadline" in str(info.value)
    assert client.pool.replicas[0].failures == 1
    assert client.chat(HELLO, max_tokens=2).completion_tokens, "the resumed server answers again"
