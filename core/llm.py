"""The model layer: one client for any OpenAI-compatible chat endpoint (the local llama.cpp server by default), or
for several replicas of one model (a comma-separated ``KGRAG_LLM_BASE_URL``; see :mod:`core.replicas`).

A call made inside a request's :meth:`~core.deadline.Deadline.bound` work is **interruptible**: it is sent by an
async client on a private event loop, and aborted (its connection closed) as soon as the request is cancelled
(client gone, shutdown) or its deadline passes, so that a server which stops on a closed connection stops
generating for nobody (``kgrag model serve`` does: :mod:`core.llama_server`). A call aborted at the deadline is the
model's failure (the breaker counts it, the replica is ejected) only when the endpoint's HTTP server does not even
answer then (a hung server); a live but busy one just ran out of the request's time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from functools import cached_property
from ssl import SSLContext
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import openai
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, Field

from core.deadline import Deadline, current_deadline
from core.errors import KgragError, ModelOutputError, ModelUnavailableError
from core.replicas import Replica, ReplicaPool, split_urls
from core.settings import Settings
from core.spans import NO_SPAN, SpanLike

if TYPE_CHECKING:
    from core.genai import ModelCallTracer

#: How often a call in flight looks at its request's deadline (seconds).
CANCEL_POLL_S = 0.1
#: How long the HTTP server of a live endpoint may take to answer, asked when a call to it ran past the deadline.
LIVENESS_PROBE_S = 2.0


class _Aborted(Exception):
    """A call stopped because its request's deadline passed or was cancelled."""


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
    #: Why generation stopped (``stop``, ``length``...), as the server said.
    finish_reason: str | None = None


class ModelClient:
    """Talks to an OpenAI-compatible endpoint through the official ``openai`` client.

    Connection failures become :class:`ModelUnavailableError` naming the URL and how to start the local server.
    ``base_url`` may list several endpoints serving the same model, comma-separated: each request goes to the least
    loaded one, and one that fails (connection error, timeout, HTTP 5xx) is ejected for ``replica_cooldown_s``
    (doubled for each ejection in a row, up to ``replica_cooldown_max_s``) while the request is retried on another
    (:class:`~core.replicas.ReplicaPool`).

    With ``traced`` (tracing on), each chat is a span named and tagged by the GenAI semantic conventions
    (:class:`~core.genai.ModelCallTracer`).
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
        replica_cooldown_s: float = 30.0,
        replica_cooldown_max_s: float = 300.0,
        traced: ModelCallTracer | None = None,
    ) -> None:
        self.base_url = base_url
        #: Opens a span per chat when tracing is on (:mod:`core.genai`).
        self.traced = traced
        self.model = model
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.timeout_s = timeout_s
        self._api_key = api_key
        urls = split_urls(base_url)
        #: The endpoints, their load and their health.
        self.pool = ReplicaPool(urls, cooldown_s=replica_cooldown_s, max_cooldown_s=replica_cooldown_max_s)
        self._clients = {
            url: openai.OpenAI(base_url=url, api_key=api_key, timeout=timeout_s, max_retries=0) for url in urls
        }
        self.client = self._clients[urls[0]]

    @classmethod
    def from_settings(cls, settings: Settings, *, traced: ModelCallTracer | None = None) -> ModelClient:
        """Build a client from ``KGRAG_LLM_*`` settings (``traced``: see the class)."""
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value(),
            timeout_s=settings.llm_timeout_s,
            max_tokens=settings.llm_max_tokens,
            temperature=settings.llm_temperature,
            replica_cooldown_s=settings.llm_replica_cooldown_s,
            replica_cooldown_max_s=settings.llm_replica_cooldown_max_s,
            traced=traced,
        )

    def async_client(self) -> openai.AsyncOpenAI:
        """An async client against the best endpoint now (for libraries such as Ragas that want one)."""
        url = self.pool.order()[0].url
        return openai.AsyncOpenAI(base_url=url, api_key=self._api_key, timeout=self.timeout_s, max_retries=0)

    def unavailable(self, detail: str, url: str | None = None) -> ModelUnavailableError:
        """The error raised when the endpoint (``url``, default all of them) cannot be used."""
        where = url or ", ".join(self._clients)
        return ModelUnavailableError(
            f"model server{'s' if where.count(',') else ''} at {where} {'are' if where.count(',') else 'is'} "
            f"not reachable: {detail}",
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
        max_tokens = max_tokens if max_tokens is not None else self.max_tokens
        temperature = self.temperature if temperature is None else temperature
        if self.traced is None:
            return self._chat(messages, json_schema, json_mode, max_tokens, temperature, logprobs, NO_SPAN)
        json_out = json_mode or json_schema is not None
        with self.traced.chat(
            self.model, messages, max_tokens=max_tokens, temperature=temperature, json_out=json_out
        ) as span:
            result = self._chat(messages, json_schema, json_mode, max_tokens, temperature, logprobs, span)
            self.traced.result(span, result)
            return result

    def _chat(
        self,
        messages: list[dict[str, str]],
        json_schema: dict[str, Any] | None,
        json_mode: bool,
        max_tokens: int,
        temperature: float,
        logprobs: int | None,
        span: SpanLike,
    ) -> ChatResult:
        kwargs: dict[str, Any] = {}
        if logprobs is not None:
            kwargs |= {"logprobs": True, "top_logprobs": logprobs}
        if json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": json_schema}
        elif json_mode:
            kwargs["response_format"] = {"type": "json_object"}
        kwargs |= {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        deadline = current_deadline()
        failures: list[tuple[str, str, ModelUnavailableError]] = []
        tried: set[str] = set()
        while (replica := self.pool.acquire(tried)) is not None:
            tried.add(replica.url)
            if span.is_recording():
                span.set_attributes(_server(replica.url))
            try:
                if deadline is not None:
                    deadline.check()
                response = self._create(replica.url, kwargs, deadline)
            except (_Aborted, openai.APITimeoutError) as exc:
                if deadline is None or deadline.remaining() > CANCEL_POLL_S:  # not the request's deadline: a failure
                    self.pool.release(replica, type(exc).__name__)
                    why = type(exc).__name__
                    span.add_event("replica failed", {"url.full": replica.url, "error.type": why})
                    failures.append((replica.url, why, _caused(self.unavailable(why, replica.url), exc)))
                    continue
                raise self._stopped(replica, deadline) from exc
            except openai.APIConnectionError as exc:
                self.pool.release(replica, type(exc).__name__)
                why = type(exc).__name__
                span.add_event("replica failed", {"url.full": replica.url, "error.type": why})
                failures.append((replica.url, why, _caused(self.unavailable(why, replica.url), exc)))
                continue  # the next replica, if there is one
            except openai.APIStatusError as exc:
                error = ModelUnavailableError(
                    f"model server at {replica.url} answered HTTP {exc.status_code}: {exc.message}",
                    hint=f"check that model {self.model!r} is served there (`kgrag model status`)",
                )
                if exc.status_code < 500:  # the request's fault, not the endpoint's: no other replica would differ
                    self.pool.release(replica)
                    raise error from exc
                self.pool.release(replica, f"HTTP {exc.status_code}")
                span.add_event("replica failed", {"url.full": replica.url, "error.type": str(exc.status_code)})
                failures.append((replica.url, f"HTTP {exc.status_code}", _caused(error, exc)))
                continue
            except BaseException:
                self.pool.release(replica)
                raise
            self.pool.release(replica)
            break
        else:
            raise self._all_failed(failures)
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
            finish_reason=choice.finish_reason,
        )

    def _create(self, url: str, params: dict[str, Any], deadline: Deadline | None) -> ChatCompletion:
        """One completion from ``url``: a plain blocking call outside a request, else an interruptible one."""
        if deadline is None or _in_event_loop():
            timeout = self.timeout_s if deadline is None else max(0.01, min(self.timeout_s, deadline.remaining()))
            return self._clients[url].chat.completions.create(**params, timeout=timeout)
        return asyncio.run(self._create_until(url, params, deadline))

    @cached_property
    def _tls(self) -> SSLContext:
        return httpx.create_ssl_context()  # built once (tens of ms), shared by the per-call async clients

    async def _create_until(self, url: str, params: dict[str, Any], deadline: Deadline) -> ChatCompletion:
        """The call on a client of this event loop's own, aborted as soon as ``deadline`` passes or is cancelled:
        closing the client closes the connection, which tells the server that nobody waits for the completion."""
        async with httpx.AsyncClient(verify=self._tls, timeout=self.timeout_s) as http:
            client = openai.AsyncOpenAI(base_url=url, api_key=self._api_key, max_retries=0, http_client=http)
            # The deadline is watched here; the client's own timeout is only a backstop behind it.
            timeout = min(self.timeout_s, deadline.remaining() + 1.0)
            call = asyncio.ensure_future(client.chat.completions.create(**params, timeout=timeout))
            while not call.done() and not deadline.expired:
                await asyncio.wait({call}, timeout=max(0.01, min(CANCEL_POLL_S, deadline.remaining())))
            if not call.done():
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await call
                raise _Aborted(deadline.reason)
            return call.result()

    def _stopped(self, replica: Replica, deadline: Deadline) -> KgragError:
        """The error of a call stopped by its request: cancelled (client gone), or past the deadline on a live
        endpoint (the request's :class:`~core.errors.RequestCancelledError`); past the deadline on an endpoint whose
        HTTP server does not even answer (hung): :class:`ModelUnavailableError`, and the replica is ejected."""
        if deadline.passed and not _answers_http(replica.url):
            why = "no reply within the request's deadline, and its HTTP server does not answer (hung)"
            self.pool.release(replica, why)
            return self.unavailable(why, replica.url)
        self.pool.release(replica)
        return deadline.stopped()

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        """Chat in JSON mode and parse the reply; invalid JSON raises :class:`ModelOutputError`."""
        result = self.chat(messages, json_schema=schema, json_mode=True, max_tokens=max_tokens)
        return parse_json_object(self.model, result.text)

    def _all_failed(self, failures: list[tuple[str, str, ModelUnavailableError]]) -> ModelUnavailableError:
        """The error of a request every replica failed (with one endpoint: that endpoint's error, as it was)."""
        if len(failures) == 1:
            return failures[0][2]
        error = self.unavailable("; ".join(f"{url}: {why}" for url, why, _ in failures))
        return _caused(error, failures[-1][2])

    def served_models(self, timeout_s: float = 3.0) -> list[str]:
        """Model ids the best reachable endpoint lists at ``/models``; raises :class:`ModelUnavailableError` if no
        endpoint is reachable (an unreachable one is ejected, as by a failed chat)."""
        failures: list[tuple[str, str, ModelUnavailableError]] = []
        tried: set[str] = set()
        while (replica := self.pool.acquire(tried)) is not None:
            tried.add(replica.url)
            try:
                response = httpx.get(
                    replica.url.rstrip("/") + "/models",
                    headers={"Authorization": f"Bearer {self._api_key}"},
                    timeout=timeout_s,
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                detail = str(exc) or type(exc).__name__
                self.pool.release(replica, detail)
                failures.append((replica.url, detail, _caused(self.unavailable(detail, replica.url), exc)))
                continue
            self.pool.release(replica)
            return [str(item.get("id")) for item in response.json().get("data", [])]
        raise self._all_failed(failures)


def _server(url: str) -> dict[str, str | int]:
    """``server.address`` and ``server.port`` of an endpoint URL (span attributes)."""
    where = urlsplit(url)
    return {
        "server.address": where.hostname or "",
        "server.port": where.port or (443 if where.scheme == "https" else 80),
    }


def parse_json_object(model: str, text: str) -> dict[str, Any]:
    """A JSON-mode reply parsed; invalid JSON, or JSON that is not an object, raises :class:`ModelOutputError`."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelOutputError(
            f"model {model!r} returned invalid JSON: {exc.msg} at char {exc.pos}",
            hint="retry, or use a model that follows JSON instructions",
        ) from exc
    if not isinstance(value, dict):
        raise ModelOutputError(f"model {model!r} returned JSON that is not an object")
    return value


def _answers_http(url: str) -> bool:
    """Whether the server at ``url`` answers an HTTP request at all (any status), within :data:`LIVENESS_PROBE_S`.

    Its origin is asked, not ``/models``: llama-cpp-python serves ``/models`` only between completions, while any
    other path is answered at once by its event loop, busy or not; a stopped (hung) process answers nothing."""
    parts = urlsplit(url)
    try:
        httpx.get(f"{parts.scheme}://{parts.netloc}/", timeout=LIVENESS_PROBE_S)
    except httpx.HTTPError:
        return False
    return True


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _caused(error: ModelUnavailableError, cause: BaseException) -> ModelUnavailableError:
    error.__cause__ = cause
    return error
