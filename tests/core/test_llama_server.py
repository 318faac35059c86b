"""``kgrag model serve``'s server (core.llama_server) stops a non-streamed completion whose client disconnected, so
that a call the API aborts (client gone, deadline passed) frees the model: against the real llama-cpp-python
server, started as the tests start every model server (``server_command``)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from core.deadline import Deadline
from core.errors import RequestCancelledError
from tests.conftest import RunningModelServer

COUNT = [{"role": "user", "content": "Count from 1 to 500, one number per line, and nothing else."}]
#: A reply schema the model cannot close before 4,000 characters: the tiny model left to itself stops counting at 10
#: (51 tokens, 1.5 s), so only a grammar keeps it generating up to max_tokens.
LONG = {"type": "object", "properties": {"numbers": {"type": "string", "minLength": 4000}}, "required": ["numbers"]}
RUNS = re.compile(r"eval time =.*?/\s+(\d+) runs")


def wait_for_completions(log: Path, count: int, timeout_s: float = 120.0) -> list[int]:
    """The decode runs of each completion the server finished (llama.cpp's timing lines), once there are ``count``."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        runs = [int(n) for n in RUNS.findall(log.read_text(errors="replace"))]  # one line per completion
        if len(runs) >= count:
            return runs
        time.sleep(0.2)
    raise AssertionError(f"the server finished fewer than {count} completions; see {log}")


@pytest.mark.integration
def test_a_non_streamed_completion_stops_when_its_client_disconnects(tmp_path: Path) -> None:
    server = RunningModelServer("smollm2-135m", tmp_path)
    try:
        client = server.client(max_tokens=400, timeout_s=600)
        # evaluates the prompt once: the call below starts generating at once
        client.chat(COUNT, max_tokens=1, json_schema=LONG, json_mode=True)
        deadline = Deadline(600)
        raised: list[BaseException] = []

        def call() -> None:
            with deadline.bound():
                try:
                    client.chat(COUNT, json_schema=LONG, json_mode=True)
                except BaseException as exc:  # noqa: BLE001 - the test reads what it was
                    raised.append(exc)

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(3.0)
        cancelled_at = time.monotonic()
        deadline.cancel("the client disconnected")
        worker.join(timeout=30)
        assert len(raised) == 1 and isinstance(raised[0], RequestCancelledError), raised
        assert time.monotonic() - cancelled_at < 5, "the call was aborted, not waited for"
        stopped = wait_for_completions(server.log_path, 2)[1]
        assert stopped < 399, f"the server ran the aborted completion to max_tokens ({stopped} decode runs)"
        # It was not about to end by itself: the same request runs past that point when nobody leaves.
        again = client.chat(COUNT, max_tokens=stopped + 10, json_schema=LONG, json_mode=True)
        assert again.completion_tokens == stopped + 10
    finally:
        server.stop()
