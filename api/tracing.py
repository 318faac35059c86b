"""Request spans: a server span per HTTP request, in the caller's trace when the request carries ``traceparent``
(W3C Trace Context), and a ``traceparent`` response header naming this request's span.

Installed only when tracing is on. The span is named ``<method> <route template>`` (``POST /v1/answer``; never the
raw path) and tagged by the HTTP semantic conventions; everything the request does (an answer's workflow, model
calls, gate) is a child of it.
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.requestid import request_id_of

#: The W3C Trace Context propagator: reads and writes ``traceparent`` and ``tracestate``.
PROPAGATOR = TraceContextTextMapPropagator()
_CARRIED = {b"traceparent", b"tracestate"}


class RequestTracing:
    """ASGI middleware: one server span per HTTP request on ``tracer``, parented by an incoming ``traceparent``."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers") or [] if k in _CARRIED}
        method = scope.get("method", "GET")
        attributes = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        with self.tracer.start_as_current_span(
            method, context=PROPAGATOR.extract(carrier), kind=SpanKind.SERVER, attributes=attributes
        ) as span:
            outgoing: dict[str, str] = {}
            PROPAGATOR.inject(outgoing)  # this request's span, as the client's next hop's parent
            status = 500

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                    headers = MutableHeaders(scope=message)
                    for name, value in outgoing.items():
                        headers[name] = value
                await send(message)

            try:
                await self.app(scope, receive, sending)
            finally:
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                request_id = request_id_of(scope)
                if request_id:
                    span.set_attribute("kgrag.request_id", request_id)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
