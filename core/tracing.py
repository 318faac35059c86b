"""Tracing: an OpenTelemetry tracer provider of kgrag's own, built from :class:`~core.settings.TracingSettings`.

The provider is never installed as OpenTelemetry's global one (``trace.set_tracer_provider`` is not called): the
composition root builds a :class:`Tracing` (``pipelines.compose.tracing``), hands its :attr:`Tracing.tracer` to the
parts that emit spans, and shuts it down when the process (or the API's lifespan) ends, which flushes the spans
still queued. Imported only when tracing is on (through ``pipelines.compose.lazy``): with the ``none`` exporter,
nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Tracer

from core.errors import ConfigurationError
from core.genai import ModelCallTracer
from core.settings import TracingSettings

#: The instrumentation scope of every kgrag span.
SCOPE = "kgrag"


def build_exporter(settings: TracingSettings) -> SpanExporter:
    """The exporter ``settings.exporter`` names: OTLP over HTTP (protobuf) to ``endpoint``, or the console."""
    if settings.exporter == "otlp":
        return OTLPSpanExporter(
            endpoint=settings.endpoint, headers=dict(settings.headers), timeout=settings.export_timeout_s
        )
    if settings.exporter == "console":
        return ConsoleSpanExporter(service_name=settings.service_name, out=sys.stdout)  # stdout now, not at import
    raise ConfigurationError(
        f"tracing exporter {settings.exporter!r} exports nothing", hint="set KGRAG_TRACING__EXPORTER=otlp or console"
    )


class Tracing:
    """One process's tracer provider and the tracer its parts emit spans with.

    New traces are sampled at ``settings.sample_ratio``; a span whose parent came with a request (``traceparent``)
    follows the parent's decision. OTLP spans are exported in batches by a background thread; console spans, and
    spans sent to an ``exporter`` given here (tests: the SDK's in-memory exporter), as each one ends.
    """

    def __init__(
        self, settings: TracingSettings, *, exporter: SpanExporter | None = None, service: str | None = None
    ) -> None:
        self.settings = settings
        #: Whether prompt, question and answer text go into spans.
        self.capture_content = settings.capture_content
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
            resource=Resource.create({"service.name": service or settings.service_name}),
            shutdown_on_exit=False,  # shutdown() is called by whoever built this
        )
        processor: SpanProcessor
        if exporter is None and settings.exporter == "otlp":
            timeout_ms = int(settings.export_timeout_s * 1000)
            processor = BatchSpanProcessor(build_exporter(settings), export_timeout_millis=timeout_ms)
        else:
            processor = SimpleSpanProcessor(exporter or build_exporter(settings))
        self.provider.add_span_processor(processor)
        self.tracer: Tracer = self.provider.get_tracer(SCOPE)
        #: What model clients open their GenAI spans with.
        self.models = ModelCallTracer(self.tracer, capture_content=settings.capture_content)

    def force_flush(self) -> bool:
        """Export the spans that have ended and are still queued; False if that did not finish in time."""
        return self.provider.force_flush(int(self.settings.export_timeout_s * 1000))

    def shutdown(self) -> None:
        """Flush, then stop the exporter (spans ended after this are dropped)."""
        self.provider.shutdown()
