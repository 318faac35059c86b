"""Problem documents over real HTTP: our message and a request id for an unhandled error (the exception text goes to
the log only), ``Retry-After`` on every 503, and one question length limit, stated in the schema and enforced."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn

from api.app import create_app
from tests.api.conftest import closed_port_url, settings_for
from tests.api.test_answer_api import assert_problem
from tests.conftest import free_port

SECRET = "db password is hunter2"


def test_an_unhandled_error_is_our_message_and_a_request_id(
    sample_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings_for(sample_store, closed_port_url(), "m"))

    def fail() -> None:
        raise RuntimeError(SECRET)

    app.add_api_route("/boom", fail)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client, caplog.at_level(logging.ERROR):
            response = client.get("/boom")
            assert_problem(response, 500, "failed to handle")
            body = response.json()
            assert SECRET not in response.text and "RuntimeError" not in response.text
            assert body["request_id"] == response.headers["X-Request-ID"] and body["request_id"] in body["hint"]
            assert any(SECRET in (r.exc_text or "") and body["request_id"] in r.getMessage() for r in caplog.records)
            mine = client.get("/boom", headers={"X-Request-ID": "trace-42.a:b"})
            assert mine.headers["X-Request-ID"] == "trace-42.a:b" == mine.json()["request_id"]
            hostile = client.get("/boom", headers={"X-Request-ID": "x" * 500})
            assert len(hostile.headers["X-Request-ID"]) == 32, "an insane id is replaced"
            assert client.get("/healthz").headers["X-Request-ID"], "every response carries one"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_every_503_carries_retry_after(live_api, tmp_path: Path, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    missing = live_api(settings_for(tmp_path / "nothing-here", closed_port_url(), "m"))
    for response in (missing.client.post("/v1/answer", json={"question": "Who?"}), missing.client.get("/healthz")):
        assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    down = live_api(settings_for(sample_store, closed_port_url(), "m"))
    response = down.client.post("/v1/answer", json={"question": "Who founded Northwind Robotics?"})
    assert_problem(response, 503, "not reachable")
    assert int(response.headers["Retry-After"]) >= 1 and response.json()["retry_after_s"] >= 1


def test_one_question_length_limit_in_the_schema_and_enforced(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m", api={"max_question_chars": 300}))
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["AnswerRequest"]
    assert schema["properties"]["question"]["maxLength"] == 300
    assert_problem(api.client.post("/v1/answer", json={"question": "x" * 301}), 422, "300")
    chat = {"model": "kgrag-answer", "messages": [{"role": "user", "content": "y" * 301}]}
    assert_problem(api.client.post("/v1/chat/completions", json=chat), 422, "the limit is 300")


def test_a_question_within_the_setting_is_not_stopped_by_a_second_limit(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    """Questions longer than the guardrails' old limit (2,000) but within the setting reach the model: no
    guardrail blocks them for length (the model here is down, so reaching it is a 503 naming the endpoint)."""
    api = live_api(settings_for(sample_store, closed_port_url(), "m", api={"max_question_chars": 5000}))
    question = "Who founded Northwind Robotics, and when? " * 100  # 4,200 characters
    assert_problem(api.client.post("/v1/answer", json={"question": question}), 503, "not reachable")
    chat = {"model": "kgrag-answer", "messages": [{"role": "user", "content": question}]}
    assert_problem(api.client.post("/v1/chat/completions", json=chat), 503, "not reachable")
    assert_problem(api.client.post("/v1/answer", json={"question": "x" * 5001}), 422, "5000")
