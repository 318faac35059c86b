"""Traces of the API over real HTTP: a server span per request in the caller's trace (``traceparent`` in and out),
the answer's span tree (workflow steps, retrieval, model calls by the GenAI conventions, gate stages), the trace id
in the answer record, and no content in spans unless the setting asks for it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from core.types import AnswerRecord
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import ADMIN, bearer
from tests.api.test_documents_api import admin_settings, store_copy, wait_job
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer
from tests.spans import children, ended, memory_tracing, named, one, tree

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
H = bearer(ADMIN)
TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def parent_of(span: ReadableSpan) -> str | None:
    return format(span.parent.span_id, "016x") if span.parent is not None else None


def hex_trace(span: ReadableSpan) -> str:
    return format(span.context.trace_id, "032x")


def test_traceparent_in_and_out(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    api = live_api(settings_for(tmp_path / "none", closed_port_url(), "m"), tracing)

    # a sampled caller: this request is its child, and the response names this request's span
    response = api.client.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    out = TRACEPARENT.match(response.headers["traceparent"])
    assert out is not None and out.group(1) == TRACE_ID and out.group(2) != PARENT_ID
    server = one(ended(exporter, "GET /healthz"), "GET /healthz")
    assert server.kind == SpanKind.SERVER and hex_trace(server) == TRACE_ID and parent_of(server) == PARENT_ID
    assert server.parent is not None and server.parent.is_remote
    assert format(server.context.span_id, "016x") == out.group(2)
    assert server.attributes["http.route"] == "/healthz" and server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.response.status_code"] == response.status_code == 503
    assert server.attributes["kgrag.request_id"] == response.headers["x-request-id"]

    # a caller that did not sample: same trace, nothing recorded, the decision passed on
    exporter.clear()
    quiet = api.client.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-00"})
    assert quiet.headers["traceparent"].startswith(f"00-{TRACE_ID}-") and quiet.headers["traceparent"].endswith("-00")
    assert ended(exporter, "GET /healthz", timeout_s=1.0) == ()

    # no traceparent, or a malformed one: a new trace, sampled at the configured ratio (1.0)
    for headers in ({}, {"traceparent": "00-nonsense-01"}, {"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"}):
        fresh = TRACEPARENT.match(api.client.get("/v1/answers/x", headers=headers).headers["traceparent"])
        assert fresh is not None and fresh.group(1) not in (TRACE_ID, "0" * 32) and fresh.group(2) != PARENT_ID
        assert int(fresh.group(3), 16) & 1, "sampled"
    roots = named(ended(exporter, "GET /v1/answers/{answer_id}", 3), "GET /v1/answers/{answer_id}")
    assert len(roots) == 3 and all(s.parent is None for s in roots), "the route template, never the raw path"


def test_tracing_is_off_by_default(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(tmp_path / "none", closed_port_url(), "m"))
    response = api.client.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"})
    assert "traceparent" not in response.headers
    assert api.settings.tracing.exporter == "none"


def test_a_failed_answer_is_traced_down_to_its_model_calls(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    api = live_api(settings_for(sample_store, closed_port_url(), "m", breaker={"enabled": False}), tracing)
    response = api.client.post(
        "/v1/answer",
        json={"question": "Who founded Northwind Robotics?"},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 503, response.text
    assert response.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    spans = ended(exporter, "POST /v1/answer")
    server = one(spans, "POST /v1/answer")
    assert server.status.status_code == StatusCode.ERROR and parent_of(server) == PARENT_ID
    answer = one(children(spans, server), "answer")
    assert answer.status.status_code == StatusCode.ERROR
    workflow = one(children(spans, answer), "workflow answer")
    steps = {s.name: s for s in children(spans, workflow)}
    assert {"step guard_input", "step retrieve", "step graph_context", "step assemble", "step generate"} <= set(steps)
    assert steps["step generate"].attributes["kgrag.step.status"] == "failed"
    retrieval = one(children(spans, steps["step retrieve"]), "retrieval graph")
    assert retrieval.attributes["kgrag.retrieval.top_k"] == 5 and retrieval.attributes["kgrag.retrieval.hits"] > 0
    calls = children(spans, steps["step generate"])
    assert [c.name for c in calls] == ["chat m", "chat m"], "the generate step's two attempts"
    for call in calls:
        assert call.kind == SpanKind.CLIENT and call.attributes["error.type"] == "ModelUnavailableError"
        assert call.attributes["gen_ai.request.model"] == "m" and "gen_ai.input.messages" not in call.attributes
    assert all(hex_trace(s) == TRACE_ID for s in spans)


def test_a_chat_turn_is_traced_from_its_rewrite(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    api = live_api(settings_for(sample_store, closed_port_url(), "m", breaker={"enabled": False}), tracing)
    turns = [
        {"role": "user", "content": "Who founded Northwind Robotics?"},
        {"role": "assistant", "content": "Okafor and Brandt [1]."},
        {"role": "user", "content": "When?"},
    ]
    response = api.client.post("/v1/chat/completions", json={"model": "kgrag-answer", "messages": turns})
    assert response.status_code == 503, response.text
    spans = ended(exporter, "POST /v1/chat/completions")
    server = one(spans, "POST /v1/chat/completions")
    (rewrite,) = children(spans, server)
    assert rewrite.name == "chat m" and rewrite.attributes["gen_ai.request.max_tokens"] == 96
    assert rewrite.attributes["error.type"] == "ModelUnavailableError"
    assert response.headers["traceparent"].split("-")[1] == hex_trace(server)


def test_a_document_job_is_an_ingestion_run_span(live_api, sample_store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    api = live_api(admin_settings(store_copy(sample_store, tmp_path), tmp_path), tracing)
    document = {"id": "faq/parking", "title": "Parking", "text": "Bays 1-9 are for visitors. Staff park in bays 10-40."}
    accepted = api.client.post("/v1/documents", json={"documents": [document]}, headers=H)
    assert accepted.status_code == 202, accepted.text
    job = wait_job(api.client, accepted.headers["location"])
    assert job["status"] == "succeeded", job
    run = one(ended(exporter, "kgrag ingest"), "kgrag ingest")
    assert run.parent is None, "a job runs in the background: a trace of its own"
    assert run.attributes["kgrag.ingest.documents_added"] == 1 and run.attributes["kgrag.ingest.status"] == "ok"
    stages = {s.name for s in children(exporter.get_finished_spans(), run)}
    assert {"ingest.parse", "ingest.embed", "ingest.extract", "ingest.save"} <= stages


@pytest.mark.integration
def test_the_span_tree_of_one_answer(live_api, sample_store: Path, smol_server: RunningModelServer) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    settings = settings_for(
        sample_store,
        smol_server.base_url,
        smol_server.name,
        llm_max_tokens=ANSWER_V3_MAX_TOKENS,
        gate={"timeout_s": 120, "retries": 0},
        api={"request_timeout_s": 600},
    )
    api = live_api(settings, tracing)
    response = api.client.post(
        "/v1/answer",
        json={"question": "How many days of paid annual leave do employees get?"},
        headers={"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"},
    )
    assert response.status_code == 200, response.text
    record = AnswerRecord.model_validate(response.json())
    assert record.provenance.trace_id == TRACE_ID
    assert response.headers["traceparent"].startswith(f"00-{TRACE_ID}-")
    assert api.client.get(f"/v1/answers/{record.answer_id}").json()["provenance"]["trace_id"] == TRACE_ID

    spans = ended(exporter, "POST /v1/answer")
    print("\n" + tree(spans))
    server = one(spans, "POST /v1/answer")
    answer = one(children(spans, server), "answer")
    p = record.provenance
    assert answer.attributes["kgrag.answer.id"] == record.answer_id
    assert answer.attributes["kgrag.answer.decision"] == p.gate.decision
    assert answer.attributes["kgrag.prompt.version"] == str(p.prompt.version)
    assert answer.attributes["gen_ai.usage.input_tokens"] == p.prompt_tokens
    assert "kgrag.question" not in answer.attributes and "kgrag.answer.text" not in answer.attributes
    workflow = one(children(spans, answer), "workflow answer")
    steps = {s.attributes["kgrag.step.name"]: s for s in children(spans, workflow)}
    # every step of the record's trace is a span with its status; skipped ones with their reason
    for entry in p.trace:
        if entry.step.endswith(".fallback"):
            continue
        attributes = steps[entry.step].attributes
        assert attributes["kgrag.step.status"] == entry.status
        if entry.status == "skipped":
            assert attributes["kgrag.step.skip_reason"] == entry.reason
    generations = [c for step in ("generate", "generate_strict") if step in steps for c in children(spans, steps[step])]
    assert generations and all(g.name == f"chat {smol_server.name}" for g in generations)
    for g in generations:
        a = g.attributes
        assert (a["gen_ai.operation.name"], a["gen_ai.request.model"]) == ("chat", smol_server.name)
        assert a["gen_ai.response.model"] and a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["gen_ai.response.finish_reasons"][0] in ("stop", "length")
        assert "gen_ai.input.messages" not in a and "gen_ai.output.messages" not in a
    assert sum(g.attributes["gen_ai.usage.input_tokens"] for g in generations) == p.prompt_tokens
    retrieval = one(children(spans, steps["retrieve"]), "retrieval graph")  # the default mode
    assert retrieval.attributes["kgrag.retrieval.hits"] == len(retrieval.attributes["kgrag.retrieval.chunk_ids"])
    shown = {r.chunk_id for r in p.retrieval if r.method == "graph"}
    assert shown and shown <= set(retrieval.attributes["kgrag.retrieval.chunk_ids"])
    gates = [c for step in ("gate", "gate_strict") if step in steps for c in children(spans, steps[step])]
    deciding = gates[-1]
    assert deciding.name == "gate" and deciding.attributes["kgrag.gate.decision"] in ("released", "review", "abstained")
    stage_spans = [s for s in children(spans, deciding) if s.name.startswith("gate_stage ")]
    assert [s.attributes["kgrag.gate.stage"] for s in stage_spans] == [s.name for s in p.gate.stages]
