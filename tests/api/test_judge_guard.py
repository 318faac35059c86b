"""The gate's judge calls go through the model endpoint's circuit breaker and are counted in ``/metrics`` as the
judge's: a judge endpoint that fails opens the breaker the answer model shares (real connection failures, a closed
port on 127.0.0.1)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import generate_latest

from api.state import build_state
from core.errors import ModelCircuitOpenError
from core.guarded import GuardedModel
from core.llm import ModelClient
from core.settings import BreakerSettings, GateSettings
from evals.gate.factory import build_gate
from tests.api.conftest import closed_port_url, settings_for
from tests.api.test_metrics import samples, value

QUESTION = "Where was Marie Curie born?"
CONTEXTS = ["Marie Curie was a physicist and chemist. She was born in Warsaw, Poland, in 1867."]
FAITHFUL = "Marie Curie was born in Warsaw, Poland [1]."


def test_judge_failures_open_the_shared_breaker_and_count_as_the_judges(embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(
        tmp_path,
        closed_port_url(),
        "m",
        breaker=BreakerSettings(failures=2, cooldown_s=60),
        gate=GateSettings(retries=0, timeout_s=2),
    )
    state = build_state(settings)
    gate = build_gate(settings.gate, ModelClient.from_settings(settings), embedder, guard=state.judge_guard)
    for _ in range(2):
        record = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
        assert record.decision == "review" and "ModelUnavailableError" in record.reason, record.reason
    assert state.breaker.state == "open", "the judge's failures count on the endpoint's breaker"
    refused = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert refused.decision == "review" and "ModelCircuitOpenError" in refused.reason, refused.reason
    with pytest.raises(ModelCircuitOpenError):  # the answer model shares it
        state.model.chat([{"role": "user", "content": "hi"}])
    scrape = samples(generate_latest(state.metrics.registry).decode())
    assert value(scrape, "kgrag_model_calls_total", role="judge", outcome="error") == 2
    assert value(scrape, "kgrag_model_calls_total", role="judge", outcome="rejected") == 1
    assert value(scrape, "kgrag_model_calls_total", role="answer", outcome="rejected") == 1


def test_a_judge_on_another_endpoint_has_a_breaker_of_its_own(tmp_path: Path) -> None:
    judge_url = closed_port_url()
    settings = settings_for(tmp_path, closed_port_url(), "m", gate=GateSettings(judge_base_url=judge_url))
    state = build_state(settings)
    guarded = state.judge_guard(ModelClient(base_url=judge_url, model="judge")) if state.judge_guard else None
    assert isinstance(guarded, GuardedModel) and guarded.role == "judge"
    assert guarded.breaker is not state.breaker and guarded.breaker.endpoint == judge_url
    same = build_state(settings_for(tmp_path, closed_port_url(), "m"))
    shared = same.judge_guard(ModelClient(base_url="http://127.0.0.1:9/v1", model="m")) if same.judge_guard else None
    assert isinstance(shared, GuardedModel) and shared.breaker is same.breaker
