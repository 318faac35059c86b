"""A chat model behind the endpoint's circuit breaker, reporting each call's latency, outcome and tokens."""

from __future__ import annotations

import time
from typing import Any

from core.base import ChatModel, ModelCallObserver
from core.breaker import ModelBreaker
from core.errors import ModelCircuitOpenError, RequestCancelledError
from core.llm import ChatResult, parse_json_object


class GuardedModel:
    """A :class:`~core.base.ChatModel` that runs every call of ``inner`` through ``breaker`` and tells ``observer``
    about it; what ``inner`` returns or raises passes through unchanged."""

    def __init__(
        self,
        inner: ChatModel,
        breaker: ModelBreaker,
        observer: ModelCallObserver | None = None,
        *,
        role: str = "answer",
    ) -> None:
        self.inner = inner
        self.breaker = breaker
        self.observer = observer
        #: What the calls are for, as the observer counts them: ``answer`` or ``judge``.
        self.role = role

    @property
    def model(self) -> str:
        return self.inner.model

    def chat(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict[str, Any] | None = None,
        json_mode: bool = False,
        max_tokens: int | None = None,
        temperature: float | None = None,
        logprobs: int | None = None,
    ) -> ChatResult:
        started = time.perf_counter()
        outcome = "error"
        result: ChatResult | None = None
        try:
            result = self.breaker.call(
                lambda: self.inner.chat(
                    messages,
                    json_schema=json_schema,
                    json_mode=json_mode,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    logprobs=logprobs,
                )
            )
            outcome = "ok"
            return result
        except ModelCircuitOpenError:
            outcome = "rejected"
            raise
        except RequestCancelledError:
            outcome = "cancelled"  # the request's deadline or its client stopped the call: not the model's failure
            raise
        finally:
            if self.observer is not None:
                self.observer.model_call(
                    seconds=time.perf_counter() - started,
                    outcome=outcome,
                    prompt_tokens=result.prompt_tokens if result else None,
                    completion_tokens=result.completion_tokens if result else None,
                    role=self.role,
                )

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        result = self.chat(messages, json_schema=schema, json_mode=True, max_tokens=max_tokens)
        return parse_json_object(self.model, result.text)
