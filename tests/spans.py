"""Spans for tests: a :class:`core.tracing.Tracing` whose spans go to the SDK's in-memory exporter, and the tree
they form."""

from __future__ import annotations

import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.settings import TracingSettings
from core.tracing import Tracing


def memory_tracing(**settings: object) -> tuple[Tracing, InMemorySpanExporter]:
    """A tracer provider that keeps every ended span in memory (``settings``: :class:`TracingSettings` fields)."""
    exporter = InMemorySpanExporter()
    return Tracing(TracingSettings(**settings), exporter=exporter), exporter  # type: ignore[arg-type]


def ended(
    exporter: InMemorySpanExporter, name: str, count: int = 1, timeout_s: float = 10.0
) -> tuple[ReadableSpan, ...]:
    """The finished spans once ``count`` named ``name`` have ended (a server span ends just after its response was
    sent, so a client may look before it has)."""
    deadline = time.monotonic() + timeout_s
    while True:
        spans = exporter.get_finished_spans()
        if len(named(spans, name)) >= count or time.monotonic() > deadline:
            return spans
        time.sleep(0.01)


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """The spans whose parent is ``parent``, by start time."""
    found = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    found = named(spans, name)
    assert len(found) == 1, f"{len(found)} spans named {name!r} in {sorted(s.name for s in spans)}"
    return found[0]


def tree(spans: Sequence[ReadableSpan]) -> str:
    """The spans as an indented tree of names (roots: spans whose parent is not among them)."""
    ids = {s.context.span_id for s in spans}
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        lines.append("  " * depth + span.name)
        for child in children(spans, span):
            walk(child, depth + 1)

    for root in sorted(
        (s for s in spans if s.parent is None or s.parent.span_id not in ids), key=lambda s: s.start_time or 0
    ):
        walk(root, 0)
    return "\n".join(lines)
