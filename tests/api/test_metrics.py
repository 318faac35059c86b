"""``GET /metrics`` over real HTTP: access rules, and the counts after real answers (the tiny model) and real
model failures (a closed port on 127.0.0.1), parsed with prometheus_client's own parser."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics
from core.settings import DEFAULT_GATE_STAGES
from pipelines.store.layout import StoreLayout
from pipelines.store.sql_audit import SqliteAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import ADMIN, CHAT, bearer, key_settings
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, keyed by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(scrape: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


def total(scrape: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    """The sum over the samples of ``name`` whose labels include ``labels``."""
    return sum(v for (n, ls), v in scrape.items() if n == name and set(labels.items()) <= set(ls))


def test_metrics_need_admin_or_the_loopback_setting(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(tmp_path / "none", closed_port_url(), "m", api={"keys": key_settings()}))
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers=bearer("not-a-key")).status_code == 401
    denied = api.client.get("/metrics", headers=bearer(CHAT))
    assert denied.status_code == 403 and "admin" in denied.json()["detail"]
    ok = api.client.get("/metrics", headers=bearer(ADMIN))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    scrape = samples(ok.text)
    # the refused scrapes were counted, by route template and status
    assert value(scrape, "kgrag_http_requests_total", method="GET", route="/metrics", status="401") == 2
    assert value(scrape, "kgrag_http_requests_total", method="GET", route="/metrics", status="403") == 1
    assert value(scrape, "kgrag_model_breaker_state", state="closed") == 1
    assert value(scrape, "kgrag_admission_slots") == 1

    opened = live_api(
        settings_for(
            tmp_path / "none", closed_port_url(), "m", api={"keys": key_settings(), "metrics_public_on_loopback": True}
        )
    )
    assert opened.client.get("/metrics").status_code == 200, "a client on 127.0.0.1 needs no key with the setting"
    assert opened.client.get("/v1/answers", headers={}).status_code == 401, "only /metrics is opened"


def test_metrics_can_be_turned_off(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(tmp_path / "none", closed_port_url(), "m", api={"metrics_enabled": False}))
    assert api.client.get("/healthz").status_code == 503
    off = api.client.get("/metrics")
    assert off.status_code == 404 and off.json()["type"].endswith("/metrics-disabled"), off.text
    assert "KGRAG_API__METRICS_ENABLED" in off.json()["hint"]
    on = live_api(settings_for(tmp_path / "none", closed_port_url(), "m"))
    on.client.get("/healthz")
    scrape = samples(on.client.get("/metrics").text)
    assert value(scrape, "kgrag_http_requests_total", method="GET", route="/healthz", status="503") == 1


def test_requests_are_counted_by_route_template_never_by_raw_path(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m"))
    for answer_id in ("a1", "a2", "../../etc/passwd", "x" * 300):
        assert api.client.get(f"/v1/answers/{answer_id}").status_code in (404, 422)
    assert api.client.get("/no/such/route").status_code == 404
    scrape = samples(api.client.get("/metrics").text)
    routes = {dict(ls).get("route") for (n, ls) in scrape if n == "kgrag_http_requests_total"}
    assert "/v1/answers/{answer_id}" in routes and "unmatched" in routes
    assert not any(r and ("a1" in r or "passwd" in r or "xxx" in r) for r in routes), routes
    assert total(scrape, "kgrag_http_requests_total", route="/v1/answers/{answer_id}") >= 3
    assert total(scrape, "kgrag_http_request_duration_seconds_count", route="/v1/answers/{answer_id}") >= 3


def test_an_unreachable_model_opens_the_breaker_and_answers_fail_fast(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m", breaker={"failures": 2, "cooldown_s": 60}))
    first = api.client.post("/v1/answer", json={"question": "Who founded Northwind Robotics?"})
    assert first.status_code == 503 and first.json()["type"].endswith("/model-unavailable"), first.text
    refused = api.client.post("/v1/answer", json={"question": "Who founded Northwind Robotics?"})
    assert refused.status_code == 503 and refused.json()["type"].endswith("/model-circuit-open"), refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    chat = api.client.post(
        "/v1/chat/completions", json={"model": "kgrag", "messages": [{"role": "user", "content": "Who?"}]}
    )
    assert chat.status_code in (404, 503)
    health = api.client.get("/healthz").json()
    assert health["status"] == "degraded" and health["breaker"]["state"] == "open", health
    assert health["breaker"]["retry_after_s"] > 0 and health["breaker"]["opened"] == 1
    scrape = samples(api.client.get("/metrics").text)
    assert value(scrape, "kgrag_model_breaker_state", state="open") == 1
    assert value(scrape, "kgrag_model_breaker_state", state="closed") == 0
    assert value(scrape, "kgrag_model_calls_total", role="answer", outcome="error") == 2  # generate's two attempts
    assert value(scrape, "kgrag_http_requests_total", method="POST", route="/v1/answer", status="503") == 2
    assert total(scrape, "kgrag_answers_total") == 0, "no answer was made"


@pytest.mark.integration
def test_answers_with_the_tiny_model_are_counted(live_api, sample_store: Path, smol_server: RunningModelServer) -> None:  # type: ignore[no-untyped-def]
    cheap = [s for s in DEFAULT_GATE_STAGES if s != "judge"]  # real stages, no judge calls: seconds, not minutes
    api = live_api(
        settings_for(
            sample_store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"stages": cheap},
            api={"request_timeout_s": 600},
        )
    )
    records = []
    for question in ("How many days of paid annual leave do employees get?", "Who founded Northwind Robotics?"):
        response = api.client.post("/v1/answer", json={"question": question})
        assert response.status_code == 200, response.text
        records.append(response.json())
    scrape = samples(api.client.get("/metrics").text)
    assert total(scrape, "kgrag_answers_total") == 2
    for record in records:
        p = record["provenance"]
        labels = {"decision": p["gate"]["decision"], "prompt": p["prompt"]["name"]}
        assert total(scrape, "kgrag_answers_total", prompt_version=str(p["prompt"]["version"]), **labels) >= 1
        assert p["prompt_tokens"] > 0 and p["completion_tokens"] > 0, "the tokens are in the provenance"
    stages = [s for r in records for s in r["provenance"]["gate"]["stages"]]
    assert total(scrape, "kgrag_gate_stage_outcomes_total") == len(stages) > 0
    for s in stages:
        assert total(scrape, "kgrag_gate_stage_outcomes_total", stage=s["name"], outcome=s["outcome"]) >= 1
    assert total(scrape, "kgrag_gate_stage_duration_seconds_count") == len(stages)
    prompt_tokens = sum(r["provenance"]["prompt_tokens"] for r in records)
    completion_tokens = sum(r["provenance"]["completion_tokens"] for r in records)
    assert value(scrape, "kgrag_answer_tokens_total", kind="prompt") == prompt_tokens
    assert value(scrape, "kgrag_answer_tokens_total", kind="completion") == completion_tokens
    # the model calls: at least the answers' generations (a strict retry makes more), with their tokens
    assert value(scrape, "kgrag_model_calls_total", role="answer", outcome="ok") >= 2
    assert value(scrape, "kgrag_model_tokens_total", role="answer", kind="prompt") >= prompt_tokens
    assert value(scrape, "kgrag_model_call_duration_seconds_count", role="answer", outcome="ok") >= 2
    # the gate's verdict calls are model calls too, counted apart as the judge's
    judged = sum(r["provenance"]["gate"].get("judge_prompt_tokens") or 0 for r in records)
    assert value(scrape, "kgrag_model_tokens_total", role="judge", kind="prompt") >= judged
    if judged:
        assert value(scrape, "kgrag_model_calls_total", role="judge", outcome="ok") >= 1
    assert value(scrape, "kgrag_http_requests_total", method="POST", route="/v1/answer", status="200") == 2
    assert value(scrape, "kgrag_http_request_duration_seconds_count", method="POST", route="/v1/answer") == 2
    assert value(scrape, "kgrag_admission_in_flight") == 0 and value(scrape, "kgrag_admission_waiting") == 0
    held = sum(1 for r in records if r["provenance"]["gate"]["decision"] == "review")
    assert value(scrape, "kgrag_review_queue_depth") >= held
    # retrieval latency by mode (graph, the default), from each answer's trace; the graph-context lookup beside it
    retrieve = [t["duration_ms"] / 1000 for r in records for t in r["provenance"]["trace"] if t["step"] == "retrieve"]
    assert value(scrape, "kgrag_retrieval_duration_seconds_count", mode="graph") == len(retrieve) == 2
    assert value(scrape, "kgrag_retrieval_duration_seconds_sum", mode="graph") == pytest.approx(sum(retrieve))
    assert value(scrape, "kgrag_retrieval_duration_seconds_count", mode="graph_context") == 2
    # the drift watch: seeded with the store's earlier answers, then these two
    audit = SqliteAuditStore(StoreLayout(sample_store).audit)
    stored = audit.count()
    audit.close()
    windows = value(scrape, "kgrag_kpi_window_answers", window="current") + value(
        scrape, "kgrag_kpi_window_answers", window="baseline"
    )
    assert windows == min(stored, api.settings.drift.window + api.settings.drift.baseline) >= 2
    assert 0 <= value(scrape, "kgrag_kpi_current", kpi="release_rate") <= 1


def test_the_gate_judges_tokens_are_counted_apart_from_the_generations(answer_records) -> None:  # type: ignore[no-untyped-def]
    metrics = ApiMetrics()
    released = answer_records.released
    metrics.answer(released)
    metrics.answer(answer_records.abstained)  # failed by a cheap stage: the judge never ran
    scrape = samples(generate_latest(metrics.registry).decode())
    judge_prompt, judge_completion = released.provenance.gate.judge_tokens()
    assert judge_prompt > 0 and judge_completion > 0
    assert value(scrape, "kgrag_gate_judge_tokens_total", kind="prompt") == judge_prompt
    assert value(scrape, "kgrag_gate_judge_tokens_total", kind="completion") == judge_completion
    generated = (released.provenance.prompt_tokens or 0) + (answer_records.abstained.provenance.prompt_tokens or 0)
    assert value(scrape, "kgrag_answer_tokens_total", kind="prompt") == generated
