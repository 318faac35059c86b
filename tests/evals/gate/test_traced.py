"""The gate as a span: the real cascade (real MiniLM, real text) inside ``gate``, a child span per stage with its
outcome and recorded duration, and the judge's model calls (to a closed port on 127.0.0.1) as the gate's children."""

from __future__ import annotations

from opentelemetry.trace import StatusCode

from core.settings import GateSettings
from evals.gate.factory import build_gate
from evals.gate.traced import TracedGate
from tests.evals.gate.test_cascade import CONTEXTS, FAITHFUL, QUESTION, SWAPPED, cheap
from tests.evals.gate.test_ragas_gate import client_at, closed_port
from tests.spans import children, memory_tracing, one


def test_each_stage_is_a_child_span_with_its_outcome_and_duration(embedder) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    gate = build_gate(cheap(), client_at(closed_port()), embedder, tracing.tracer)
    assert isinstance(gate, TracedGate)
    record = gate.evaluate(QUESTION, SWAPPED, CONTEXTS)
    assert record.decision == "abstained"
    spans = exporter.get_finished_spans()
    root = one(spans, "gate")
    assert root.attributes["kgrag.gate.decision"] == "abstained"
    assert root.attributes["kgrag.gate.reason"] == record.reason
    assert root.attributes["kgrag.gate.score.lexical_support"] == record.scores.lexical_support
    stages = children(spans, root)
    assert [s.name for s in stages] == [f"gate_stage {s.name}" for s in record.stages]
    for span, stage in zip(stages, record.stages, strict=True):
        assert span.attributes["kgrag.gate.stage.outcome"] == stage.outcome
        assert span.attributes["kgrag.gate.stage.detail"] == stage.detail
        assert abs((span.end_time - span.start_time) / 1e6 - stage.duration_ms) < 0.01
        assert root.start_time <= span.start_time and span.end_time <= root.end_time
    outcome = {s.attributes["kgrag.gate.stage"]: s.attributes["kgrag.gate.stage.outcome"] for s in stages}
    assert outcome["lexical_support"] == "fail" and outcome["numbers"] == "skipped"
    assert one(stages, "gate_stage lexical_support").attributes["kgrag.gate.stage.score.lexical_support"] < 0.6
    # laid end to end, in the order they ran
    assert all(a.end_time == b.start_time for a, b in zip(stages, stages[1:], strict=False))


def test_the_judges_model_calls_are_children_of_the_gate(embedder) -> None:  # type: ignore[no-untyped-def]
    tracing, exporter = memory_tracing()
    client = client_at(closed_port(), timeout_s=2.0)
    client.traced = tracing.models  # the answer model's client: the judge's own client is built from it
    gate = build_gate(GateSettings(retries=0, timeout_s=2.0), client, embedder, tracing.tracer)
    record = gate.evaluate(QUESTION, FAITHFUL, CONTEXTS)
    assert record.decision == "review" and record.reason.startswith("gate_error"), record.reason
    spans = exporter.get_finished_spans()
    root = one(spans, "gate")
    calls = [s for s in children(spans, root) if s.name == "chat judge"]
    assert calls, [s.name for s in spans]
    for call in calls:
        assert call.attributes["gen_ai.operation.name"] == "chat"
        assert call.attributes["gen_ai.request.model"] == "judge"
        assert call.attributes["gen_ai.output.type"] == "json"
        assert call.attributes["error.type"] == "ModelUnavailableError"
        assert call.attributes["server.address"] == "127.0.0.1"
        assert call.status.status_code == StatusCode.ERROR
    stages = {s.attributes["kgrag.gate.stage"]: s for s in children(spans, root) if s.name.startswith("gate_stage")}
    assert stages["entailment"].attributes["kgrag.gate.stage.outcome"] == "error"
