"""An in-process :class:`core.base.ChatModel` that plays back a script: for fast unit tests of workflow logic only.

It checks what the code around a model does (which calls it makes, with which prompt and parameters, how it reacts
to errors and odd replies), never what a model does: every feature it tests keeps its test against a real model
server (``smol_server`` / ``qwen_server`` in tests/conftest.py).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.errors import ModelOutputError
from core.llm import ChatResult

Messages = list[dict[str, str]]
#: What one scripted call does: reply with text, reply with a JSON object (serialised for ``chat``), raise an
#: exception (an instance or a class), or compute one of those from the messages it was sent.
Reply = str | dict[str, Any] | BaseException | type[BaseException] | Callable[[Messages], Any]


class ScriptExhaustedError(AssertionError):
    """The code under test called the model more times than the script allows."""


@dataclass(frozen=True)
class ScriptedCall:
    """One call the model received: the method, a copy of the messages, and the keyword parameters."""

    method: Literal["chat", "chat_json"]
    messages: Messages
    params: dict[str, Any] = field(default_factory=dict)

    def text(self, role: str | None = None) -> str:
        """The contents of the messages (of ``role`` only, when given), joined by newlines."""
        return "\n".join(m["content"] for m in self.messages if role is None or m["role"] == role)


class ScriptedChatModel:
    """Plays back ``replies`` in order, one per call, then ``respond(messages)`` for any further call (at most
    ``max_calls`` calls in all when given); a call beyond the script raises :class:`ScriptExhaustedError`.

    Every call is recorded in :attr:`calls`, including those that raise. The code under test may swallow the
    overrun error (a workflow step catches and retries it), so end a test with :meth:`assert_finished`.
    Thread-safe: workflow steps call it from worker threads.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        respond: Callable[[Messages], Any] | None = None,
        max_calls: int | None = None,
        model: str = "scripted",
        usage: tuple[int, int] | None = None,
    ) -> None:
        self._model = model
        #: (prompt, completion) tokens every ``chat`` reply reports, as a server's ``usage`` (None: not reported).
        self._usage = usage
        self._queue: deque[Reply] = deque(replies)
        self._respond = respond
        self._max_calls = max_calls
        self._lock = threading.Lock()
        self.calls: list[ScriptedCall] = []
        self.overruns = 0

    @property
    def model(self) -> str:
        return self._model

    @property
    def remaining(self) -> int:
        """Queued replies not used yet."""
        return len(self._queue)

    def assert_finished(self) -> None:
        """Fail unless every queued reply was used and no call went beyond the script."""
        assert self.overruns == 0, f"the model was called {self.overruns} time(s) more than scripted"
        assert not self._queue, f"{len(self._queue)} scripted reply(ies) never used ({len(self.calls)} call(s) made)"

    def _next(self, call: ScriptedCall) -> Any:
        with self._lock:
            self.calls.append(call)
            number = len(self.calls)
            beyond = self._max_calls is not None and number > self._max_calls
            reply: Reply | None = None
            if not beyond and self._queue:
                reply = self._queue.popleft()
            elif not beyond and self._respond is not None:
                reply = self._respond
            if reply is None:
                self.overruns += 1
                raise ScriptExhaustedError(f"unscripted model call #{number} ({call.method}): {call.text()[:200]!r}")
        if callable(reply) and not isinstance(reply, type):
            reply = reply(call.messages)
        if isinstance(reply, BaseException) or (isinstance(reply, type) and issubclass(reply, BaseException)):
            raise reply
        if not isinstance(reply, str | dict):
            raise TypeError(f"a scripted reply must be text or a JSON object, got {type(reply).__name__}")
        return reply

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
        params = {"json_schema": json_schema, "json_mode": json_mode, "max_tokens": max_tokens, "logprobs": logprobs}
        reply = self._next(ScriptedCall("chat", [dict(m) for m in messages], params | {"temperature": temperature}))
        text = reply if isinstance(reply, str) else json.dumps(reply)
        prompt, completion = self._usage or (None, None)
        return ChatResult(text=text, model=self._model, prompt_tokens=prompt, completion_tokens=completion)

    def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> dict[str, Any]:
        reply = self._next(
            ScriptedCall("chat_json", [dict(m) for m in messages], {"schema": schema, "max_tokens": max_tokens})
        )
        if isinstance(reply, dict):
            return reply
        # Text replies are parsed as the real client parses them, so bad JSON takes the same path.
        try:
            value = json.loads(reply)
        except json.JSONDecodeError as exc:
            raise ModelOutputError(f"model {self._model!r} returned invalid JSON: {exc.msg} at char {exc.pos}") from exc
        if not isinstance(value, dict):
            raise ModelOutputError(f"model {self._model!r} returned JSON that is not an object")
        return value


def agreeing_judge(usage: tuple[int, int] | None = None) -> ScriptedChatModel:
    """A claim judge that finds every claim entailed, and answers every question with its first evidence sentence
    that is not a heading (what a draft quoting that sentence says): for tests of the workflow around a release,
    where what a real judge decides is not the point. Each reply reports ``usage`` tokens when given."""

    def respond(messages: Messages) -> dict[str, str]:
        user = next(m["content"] for m in messages if m["role"] == "user")
        if "\nClaim: " not in user:
            lines = [line[2:] for line in user.splitlines() if line.startswith("- ")]
            first = next((line for line in lines if not line.lstrip().startswith("#")), "none")
            return {"answer": first}
        return {"verdict": "entailed"}

    return ScriptedChatModel(respond=respond, model="agreeing-judge", usage=usage)
