"""The tracer provider built from settings: its own (never OpenTelemetry's global one), sampled at the configured
ratio, exporting to the console or over OTLP/HTTP (to a receiver on 127.0.0.1 that decodes the protobuf)."""

from __future__ import annotations

import json

import pytest
from opentelemetry import trace

from core.errors import ConfigurationError
from core.settings import TracingSettings, load_settings
from core.spans import NO_SPAN, span, trace_id
from core.tracing import Tracing
from pipelines.compose.tracing import build_tracing
from tests.otlp import OtlpReceiver
from tests.spans import memory_tracing


def test_tracing_is_off_unless_an_exporter_is_chosen() -> None:
    assert build_tracing(load_settings()) is None
    with pytest.raises(ConfigurationError, match="exports nothing"):
        Tracing(TracingSettings(exporter="none"))
    with span(None, "nothing") as opened:
        assert opened is NO_SPAN and trace_id(opened) is None


def test_the_provider_is_never_the_global_one() -> None:
    tracing, exporter = memory_tracing()
    with span(tracing.tracer, "mine") as opened:
        assert trace_id(opened) == format(opened.get_span_context().trace_id, "032x")
    assert [s.name for s in exporter.get_finished_spans()] == ["mine"]
    assert not isinstance(trace.get_tracer_provider(), type(tracing.provider))


def test_a_sample_ratio_of_zero_records_nothing_but_keeps_trace_ids() -> None:
    tracing, exporter = memory_tracing(sample_ratio=0.0)
    with span(tracing.tracer, "dropped") as opened:
        assert not opened.is_recording() and trace_id(opened) is not None
    assert exporter.get_finished_spans() == ()


def test_the_console_exporter_prints_each_span_as_it_ends(capsys: pytest.CaptureFixture[str]) -> None:
    tracing = Tracing(TracingSettings(exporter="console", service_name="kgrag-debug"))
    with span(tracing.tracer, "printed", {"kgrag.x": 1}):
        pass
    printed = json.loads(capsys.readouterr().out)
    assert printed["name"] == "printed" and printed["attributes"] == {"kgrag.x": 1}
    assert printed["resource"]["attributes"]["service.name"] == "kgrag-debug"
    tracing.shutdown()


def test_otlp_spans_are_batched_and_flushed_to_the_collector() -> None:
    receiver = OtlpReceiver()
    try:
        settings = TracingSettings(exporter="otlp", endpoint=receiver.url, headers={"x-token": "t"})
        tracing = Tracing(settings)
        with span(tracing.tracer, "outer", {"kgrag.n": 3}), span(tracing.tracer, "inner"):
            pass
        assert receiver.spans == [], "batched: nothing is sent before a flush (or the batch delay)"
        assert tracing.force_flush()
        outer, inner = receiver.named("outer")[0], receiver.named("inner")[0]
        assert inner.parent_span_id == outer.span_id and inner.trace_id == outer.trace_id
        assert outer.attributes == {"kgrag.n": 3} and outer.resource["service.name"] == "kgrag"
        tracing.shutdown()
        with span(tracing.tracer, "after shutdown"):
            pass
        assert not receiver.named("after shutdown")
    finally:
        receiver.close()
