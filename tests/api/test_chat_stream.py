"""Streamed chat completions when the answer fails: a plain problem before the stream starts, an error event after."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from api.chat import _pieces
from tests.api.conftest import closed_port_url, settings_for
from tests.api.test_answer_api import assert_problem

BODY = {"model": "kgrag-answer", "messages": [{"role": "user", "content": "Who founded Northwind?"}], "stream": True}


def test_pieces_are_token_sized_and_lossless() -> None:
    text = "Employees get 28 days [1].\n\nSee https://example.org/a-very-long-path-name-here  ok "
    pieces = list(_pieces(text))
    assert "".join(pieces) == text and pieces[:3] == ["Employees", " get", " 28"]
    assert all(len(p) <= 24 for p in pieces) and list(_pieces("")) == []


def test_failure_within_the_first_interval_is_a_plain_problem(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m"))  # keep-alive interval: 10 s
    assert_problem(api.client.post("/v1/chat/completions", json=BODY), 503, "not reachable")
    assert_problem(api.client.post("/v1/chat/completions", json=dict(BODY, model="x")), 404, "not offered")
    empty = dict(BODY, messages=[{"role": "user", "content": "  "}])
    assert_problem(api.client.post("/v1/chat/completions", json=empty), 422, "empty")


def test_failure_after_the_stream_started_is_an_error_event(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m", api={"stream_keepalive_s": 0.001}))
    with api.client.stream("POST", "/v1/chat/completions", json=BODY) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line]
    assert lines[0] == ": keep-alive" and lines[-1] == "data: [DONE]", lines
    error = json.loads(lines[-2].removeprefix("data: "))["error"]
    assert error["code"] == 503 and error["type"] == "model-unavailable" and "not reachable" in error["message"]
    client = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key="none", max_retries=0)
    stream = client.chat.completions.create(model="kgrag-answer", messages=BODY["messages"], stream=True)  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="not reachable"):
        list(stream)
