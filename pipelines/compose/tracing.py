"""Composition root, tracing: the process's :class:`~core.tracing.Tracing` when the settings turn tracing on.

With ``KGRAG_TRACING__EXPORTER=none`` (the default) there is none: the parts get no tracer, emit no span, and
OpenTelemetry is not even imported.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from core.settings import Settings
from pipelines.compose import lazy

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from core.genai import ModelCallTracer
    from core.tracing import Tracing


def build_tracing(settings: Settings) -> Tracing | None:
    """The tracer provider ``settings.tracing`` asks for, or None when tracing is off; the caller shuts it down."""
    if settings.tracing.exporter == "none":
        return None
    return lazy.Tracing(settings.tracing)


@contextmanager
def tracing_for(settings: Settings) -> Iterator[Tracing | None]:
    """:func:`build_tracing` for a command's lifetime: shut down (its queued spans exported) when the block ends."""
    tracing = build_tracing(settings)
    try:
        yield tracing
    finally:
        if tracing is not None:
            tracing.shutdown()


def tracer_of(tracing: Tracing | None) -> Tracer | None:
    """The tracer the parts are given (None: tracing off)."""
    return tracing.tracer if tracing is not None else None


def model_tracer(tracing: Tracing | None) -> ModelCallTracer | None:
    """What model clients open their spans with (None: tracing off)."""
    return tracing.models if tracing is not None else None
