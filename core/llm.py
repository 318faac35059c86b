"""The model layer: one client for any OpenAI-compatible chat endpoint (the local llama.cpp server by default)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
from pydantic import BaseModel, Field

from core.errors import ModelOutputError, ModelUnavailableError
from core.settings import Settings


class TokenLogprob(BaseModel):
    """One generated token, its log-probability, and the top alternatives the server gave at its position."""

    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)


class ChatResult(BaseModel):
    """Text the model produced, and which model produced it."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: Per generated token, its log-probability and the top alternatives (when asked for and served).
    logprobs: list[TokenLogprob] | None = None


class ModelClient:
    """Talks to an OpenAI-compatible endpoint through the official ``openai`` client.

    Connection failures become :class:`ModelUnavailableError` naming the URL and how to start the local server.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "local",
        timeout_s: float = 600.0,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> None:
        self.base_url = base_url
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._api_key = api_key
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelClient:
        """Build a client from ``KGRAG_LLM_*`` settings."""
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
        )

    def async_client(self) -> openai.AsyncOpenAI:
        """An async client against the same endpoint (for libraries such as Ragas that want one)."""
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=self._api_key, timeout=self.timeout_s, max_retries=0)

    def unavailable(self, detail: str) -> ModelUnavailableError:
        """The error raised when the endpoint cannot be used."""
        return ModelUnavailableError(
            f"model server at {self.base_url} is not reachable: {detail}",
            hint="start it with `kgrag model serve`, or set KGRAG_LLM_BASE_URL to a running OpenAI-compatible endpoint",
        )

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
        """Send a chat completion; with ``json_mode`` ask for a JSON object (optionally constrained by a schema);
        with ``logprobs`` ask for that many top alternatives per generated token."""
        kwargs: dict[str, Any] = {}
        if logprobs is not None:
            kwargs |= {"logprobs": True, "top_logprobs": logprobs}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        elif json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,  # type: ignore[arg-type]
                max_tokens=max_tokens if max_tokens is not None else self.max_tokens,
                temperature=self.temperature if temperature is None else temperature,
                **kwargs,
            )
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise self.unavailable(type(exc).__name__) from exc
        except openai.APIStatusError as exc:
            raise ModelUnavailableError(
                f"model server at {self.base_url} answered HTTP {exc.status_code}: {exc.message}",
                hint=f"check that model {self.model!r} is served there (`kgrag model status`)",
            ) from exc
        choice = response.choices[0]
        usage = response.usage
        tokens: list[TokenLogprob] | None = None
        if logprobs is not None and choice.logprobs is not None and choice.logprobs.content:
            tokens = [
                TokenLogprob(token=t.token, logprob=t.logprob, top={alt.token: alt.logprob for alt in t.top_logprobs})
                for t in choice.logprobs.content
            ]
        return ChatResult(
            text=choice.message.content or "",
            model=response.model or self.model,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            logprobs=tokens,
        )

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Chat in JSON mode and parse the reply; invalid JSON raises :class:`ModelOutputError`."""
        result = self.chat(messages, json_schema=schema, json_mode=True, max_tokens=max_tokens)
        try:
            value = json.loads(result.text)
        except json.JSONDecodeError as exc:
            raise ModelOutputError(
                f"model {self.model!r} returned invalid JSON: {exc.msg} at char {exc.pos}",
                hint="retry, or use a model that follows JSON instructions",
            ) from exc
        if not isinstance(value, dict):
            raise ModelOutputError(f"model {self.model!r} returned JSON that is not an object")
        return value

    def served_models(self, timeout_s: float = 3.0) -> list[str]:
        """Model ids the endpoint lists at ``/models``; raises :class:`ModelUnavailableError` if unreachable."""
        try:
            response = httpx.get(
                self.base_url.rstrip("/") + "/models",
                headers={"Authorization": f"Bearer {self._api_key}"},
                timeout=timeout_s,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise self.unavailable(str(exc) or type(exc).__name__) from exc
        return [str(item.get("id")) for item in response.json().get("data", [])]
