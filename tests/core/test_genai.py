"""Model-call spans by the GenAI semantic conventions: against the real tiny model (tokens, finish reasons, the
served model; the messages only with ``capture_content``), and over replicas where one answers 503 (the fault is
caused with the OpenAI-shaped stub of tests/core/test_llm.py)."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind

from core.llm import ModelClient
from tests.conftest import RunningModelServer
from tests.core.test_llm import HELLO, StubEndpoint
from tests.spans import memory_tracing, one


@pytest.mark.integration
def test_a_chat_is_a_span_named_by_the_operation_and_the_model(smol_server: RunningModelServer) -> None:
    tracing, exporter = memory_tracing()
    client = smol_server.client(max_tokens=8, traced=tracing.models)
    result = client.chat(HELLO)
    span = one(exporter.get_finished_spans(), f"chat {smol_server.name}")
    a = span.attributes
    assert span.kind == SpanKind.CLIENT
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == smol_server.name and a["gen_ai.response.model"] == result.model
    assert a["gen_ai.request.max_tokens"] == 8 and a["gen_ai.request.temperature"] == 0.0
    assert a["gen_ai.usage.input_tokens"] == result.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == result.completion_tokens > 0
    assert a["gen_ai.response.finish_reasons"] == (result.finish_reason,) and result.finish_reason in ("stop", "length")
    assert (a["server.address"], a["server.port"]) == ("127.0.0.1", smol_server.settings.port)
    assert a["gen_ai.output.type"] == "text"
    assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a, "content is off by default"

    tracing, exporter = memory_tracing(capture_content=True)
    client = smol_server.client(max_tokens=8, traced=tracing.models)
    result = client.chat(HELLO)
    a = one(exporter.get_finished_spans(), f"chat {smol_server.name}").attributes
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Say hello."}]}
    ]
    output = json.loads(a["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == result.text and output[0]["finish_reason"] == result.finish_reason


def test_a_replica_that_fails_is_an_event_of_the_call_that_another_one_served() -> None:
    bad, good = StubEndpoint(status=503), StubEndpoint()
    try:
        tracing, exporter = memory_tracing()
        client = ModelClient(base_url=f"{bad.url},{good.url}", model="stub", timeout_s=10, traced=tracing.models)
        assert client.chat(HELLO, json_mode=True).text == "hi"
        span = one(exporter.get_finished_spans(), "chat stub")
        assert [(e.name, e.attributes["url.full"], e.attributes["error.type"]) for e in span.events] == [
            ("replica failed", bad.url, "503")
        ]
        assert span.attributes["server.port"] == good.server.server_address[1]
        assert span.attributes["gen_ai.output.type"] == "json"
        assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
        assert "gen_ai.usage.input_tokens" not in span.attributes, "the stub reports no usage"
    finally:
        bad.close()
        good.close()
