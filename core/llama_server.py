"""``python -m core.llama_server``: llama-cpp-python's OpenAI-compatible server, which also stops a non-streamed
completion when its client disconnects.

llama-cpp-python stops a *streamed* completion whose client went away, but runs a non-streamed one to its end (up
to ``max_tokens``) for nobody. kgrag's client aborts a call when the request behind it is cancelled or passes its
deadline (:mod:`core.llm`); so that this frees the model, this entry point runs the same server (same arguments
as ``python -m llama_cpp.server``) with two additions:

- an ASGI middleware that, once a POST's body has been read, watches the connection and sets a per-request flag
  when the client disconnects;
- ``Llama.create_completion`` (which every chat format calls) gets a stopping criterion that ends the generation
  at the next token once the flag is set (the prompt being evaluated is finished first: llama.cpp cannot stop
  that). The completion then ends as if stopped, and its response goes nowhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from functools import wraps
from typing import Any

import llama_cpp
import llama_cpp.server.__main__ as llama_main

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

#: Set when the client of the request being served here has disconnected (None outside a watched request).
_GONE: ContextVar[threading.Event | None] = ContextVar("llama_server_client_gone", default=None)


class WatchDisconnect:
    """ASGI middleware: after a POST's body has been read, a task waits for ``http.disconnect`` and sets the
    request's flag (uvicorn answers every ``receive()`` with ``http.disconnect`` once the client has gone)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        gone = threading.Event()
        body_read = asyncio.Event()

        async def tracked() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif message["type"] == "http.request" and not message.get("more_body", False):
                body_read.set()
            return message

        async def watch() -> None:
            await body_read.wait()
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        token = _GONE.set(gone)
        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, tracked, send)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            _GONE.reset(token)


def _stop_when(gone: threading.Event) -> Callable[[Any, Any], bool]:
    def client_gone(input_ids: Any, logits: Any) -> bool:
        return gone.is_set()

    return client_gone


def install() -> None:
    """Patch this process's llama-cpp-python: completions stop at the next token once their client has gone, and
    the server app is built with :class:`WatchDisconnect` in front."""
    create = llama_cpp.Llama.create_completion

    @wraps(create)
    def create_completion(self: llama_cpp.Llama, *args: Any, **kwargs: Any) -> Any:
        gone = _GONE.get()
        if gone is not None:
            criteria = kwargs.get("stopping_criteria") or []
            kwargs["stopping_criteria"] = llama_cpp.StoppingCriteriaList([*criteria, _stop_when(gone)])
        return create(self, *args, **kwargs)

    llama_cpp.Llama.create_completion = create_completion  # type: ignore[method-assign]
    build = llama_main.create_app

    @wraps(build)
    def create_app(*args: Any, **kwargs: Any) -> Any:
        app = build(*args, **kwargs)
        app.add_middleware(WatchDisconnect)
        return app

    llama_main.create_app = create_app  # type: ignore[attr-defined]


def main() -> None:
    install()
    llama_main.main()


if __name__ == "__main__":
    main()
