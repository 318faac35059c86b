"""Request body size limits, enforced before the body reaches a route (413 problem document)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import problem_from_error
from core.errors import PayloadTooLargeError


class BodySizeLimit:
    """ASGI middleware: bodies over ``max_bytes`` (``max_upload_bytes`` under ``upload_prefix``) get a 413."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_upload_bytes: int, upload_prefix: str) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_prefix = upload_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS", "DELETE"}:
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        limit = self.max_upload_bytes if path.startswith(self.upload_prefix) else self.max_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(scope, receive, send, limit)
            return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await self._reject(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.app(scope, replay, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_from_error(
            PayloadTooLargeError(
                f"the request body is over the {limit}-byte limit for {scope.get('path', '')}",
                hint="send a smaller body (limits: KGRAG_API__MAX_BODY_BYTES, KGRAG_API__MAX_UPLOAD_BYTES)",
            )
        )
        await response(scope, receive, send)
