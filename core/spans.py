"""Spans for the parts that are handed a tracer, without importing OpenTelemetry: with no tracer (tracing off, the
default) they cost a ``None`` check.

A part takes ``tracer: opentelemetry.trace.Tracer | None`` (built by :class:`core.tracing.Tracing` in the composition
root) and opens its spans with :func:`span`, which yields the span, or :data:`NO_SPAN` when there is no tracer.
Spans nest through OpenTelemetry's context (a ``contextvars`` variable): ``asyncio`` tasks and ``asyncio.to_thread``
carry it, so a model call made in a workflow step's thread is a child of that step's span.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

#: What a span attribute may hold.
AttributeValue = str | bool | int | float | Sequence[str] | Sequence[bool] | Sequence[int] | Sequence[float]


class SpanLike(Protocol):
    """The part of an OpenTelemetry span the instrumented code writes to."""

    def is_recording(self) -> bool: ...

    def set_attribute(self, key: str, value: Any) -> None: ...

    def set_attributes(self, attributes: Mapping[str, Any]) -> None: ...

    def add_event(
        self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None
    ) -> None: ...


class _NoSpan:
    """A span that records nothing (there is no tracer)."""

    def is_recording(self) -> bool:
        return False

    def set_attribute(self, key: str, value: Any) -> None:
        return None

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        return None

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None, timestamp: int | None = None) -> None:
        return None


#: The span :func:`span` yields when there is no tracer (stateless, shared).
NO_SPAN: SpanLike = _NoSpan()


@contextmanager
def span(
    tracer: Tracer | None, name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[SpanLike]:
    """A span named ``name``, current (the parent of spans opened inside it) until the block ends; an exception that
    leaves the block is recorded on it and sets its status to error. Without a tracer: :data:`NO_SPAN`."""
    if tracer is None:
        yield NO_SPAN
        return
    with tracer.start_as_current_span(name, attributes=attributes) as opened:
        yield opened


def instant(tracer: Tracer | None, name: str, attributes: Mapping[str, AttributeValue]) -> None:
    """A span that starts and ends now, under the current span (e.g. a workflow step that was skipped)."""
    if tracer is not None:
        tracer.start_span(name, attributes=attributes).end()


def trace_id(opened: SpanLike) -> str | None:
    """The span's trace id as 32 hex digits (as ``traceparent`` writes it), or None without a valid one."""
    context = getattr(opened, "get_span_context", None)
    if context is None:
        return None
    found = context()
    return format(found.trace_id, "032x") if found.is_valid else None
