"""Spans of model calls, named and tagged by the OpenTelemetry GenAI semantic conventions.

One span per chat completion, ``{gen_ai.operation.name} {gen_ai.request.model}`` (``chat qwen2.5-coder-1.5b``), kind
client, with ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model`` / ``max_tokens`` /
``temperature``, ``gen_ai.output.type``, ``server.address`` / ``server.port`` of the endpoint that answered,
``gen_ai.response.model``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens`` / ``output_tokens``,
and ``error.type`` on failure. The messages and the reply (``gen_ai.input.messages``, ``gen_ai.output.messages``)
only with ``capture_content``. Built by :class:`core.tracing.Tracing` and given to :class:`core.llm.ModelClient`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry.trace import Span, SpanKind, Tracer

OPERATION = "chat"
#: The API spoken (OpenAI's chat completions), whoever serves it.
PROVIDER = "openai"


class ModelReply(Protocol):
    """What a model call returned, as its span records it (:class:`core.llm.ChatResult`)."""

    text: str
    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reason: str | None


class ModelCallTracer:
    """Opens a span per model call on ``tracer``; ``capture_content`` puts the messages and the reply in it."""

    def __init__(self, tracer: Tracer, *, capture_content: bool = False) -> None:
        self.tracer = tracer
        self.capture_content = capture_content

    @contextmanager
    def chat(
        self, model: str, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, json_out: bool
    ) -> Iterator[Span]:
        """The span of one chat completion (current inside the block); an exception is recorded with its type."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": OPERATION,
            "gen_ai.provider.name": PROVIDER,
            "gen_ai.request.model": model,
            "gen_ai.request.max_tokens": max_tokens,
            "gen_ai.request.temperature": temperature,
            "gen_ai.output.type": "json" if json_out else "text",
        }
        if self.capture_content:
            attributes["gen_ai.input.messages"] = json.dumps(
                [{"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in messages]
            )
        with self.tracer.start_as_current_span(
            f"{OPERATION} {model}", kind=SpanKind.CLIENT, attributes=attributes
        ) as span:
            try:
                yield span
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__name__)
                raise

    def result(self, span: Span, result: ModelReply) -> None:
        """Record what the model answered: the model that served it, finish reason, tokens (and the reply)."""
        span.set_attribute("gen_ai.response.model", result.model)
        span.set_attribute("gen_ai.response.finish_reasons", [result.finish_reason] if result.finish_reason else [])
        if result.prompt_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", result.prompt_tokens)
        if result.completion_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", result.completion_tokens)
        if self.capture_content:
            output = {"role": "assistant", "parts": [{"type": "text", "content": result.text}]}
            span.set_attribute(
                "gen_ai.output.messages", json.dumps([output | {"finish_reason": result.finish_reason or ""}])
            )
