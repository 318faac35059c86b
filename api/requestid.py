"""Request ids: an incoming ``X-Request-ID`` is kept if it is sane, else one is made; every response carries it."""

from __future__ import annotations

import re
import uuid

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_SCOPE_KEY = "kgrag.request_id"


def request_id_of(scope: Scope) -> str | None:
    """The id :class:`RequestId` gave this request (None outside it)."""
    value = scope.get(_SCOPE_KEY)
    return value if isinstance(value, str) else None


class RequestId:
    """ASGI middleware: picks the request's id (the client's if it matches ``[A-Za-z0-9._:-]{1,128}``) and sets the
    ``X-Request-ID`` response header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _SANE.match(incoming) else uuid.uuid4().hex
        scope[_SCOPE_KEY] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if REQUEST_ID_HEADER.lower() not in headers:
                    headers.append(REQUEST_ID_HEADER, rid)
            await send(message)

        await self.app(scope, receive, send_with_id)
