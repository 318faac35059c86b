"""Errors as RFC 9457 problem documents: one clear message, the fix, the right status code and the request id.

Every 503 and 429 carries ``Retry-After`` (the error's own estimate, else :data:`DEFAULT_RETRY_AFTER_S`). An
unexpected exception is logged with its traceback and request id; the client gets our message and the id only.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.requestid import REQUEST_ID_HEADER, request_id_of
from core.errors import KgragError, RetryLaterError

PROBLEM_JSON = "application/problem+json"
DEFAULT_RETRY_AFTER_S = 5
log = logging.getLogger("kgrag.api")


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    hint: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    request_id: str | None = None,
    retry_after_s: float | None = None,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": f"https://kgrag.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    headers = dict(headers or {})
    if request_id:
        body["request_id"] = request_id
        headers[REQUEST_ID_HEADER] = request_id
    if status in (429, 503) and not any(k.lower() == "retry-after" for k in headers):
        seconds = DEFAULT_RETRY_AFTER_S if retry_after_s is None else max(1, math.ceil(retry_after_s))
        headers["Retry-After"] = str(seconds)
        body["retry_after_s"] = seconds
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_from_error(exc: KgragError, request_id: str | None = None) -> JSONResponse:
    """The problem document of a kgrag error: its status, code, message and hint (and ``Retry-After``)."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    retry = exc.retry_after_s if isinstance(exc, RetryLaterError) else None
    return problem(
        exc.http_status,
        exc.code,
        type(exc).__name__,
        exc.message,
        exc.hint,
        headers,
        request_id=request_id,
        retry_after_s=retry,
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Map kgrag errors and request validation errors to problem documents (never a stack trace)."""

    @app.exception_handler(KgragError)
    async def kgrag_error(request: Request, exc: KgragError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("request %s: %s: %s", request_id_of(request.scope), exc.code, exc, exc_info=exc)
        return problem_from_error(exc, request_id_of(request.scope))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return problem(
            exc.status_code,
            f"http-{exc.status_code}",
            detail,
            detail,
            "see /docs for the API",
            dict(exc.headers or {}),
            request_id=request_id_of(request.scope),
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
            parts.append(f"{where}: {err.get('msg')}")
        return problem(
            422,
            "invalid-request",
            "Invalid request",
            "; ".join(parts),
            "fix the named fields; see /docs for the request schema",
            request_id=request_id_of(request.scope),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id_of(request.scope)
        log.error("request %s: unhandled %s", rid, type(exc).__name__, exc_info=exc)
        return problem(
            500,
            "internal-error",
            "Internal error",
            "the server failed to handle this request",
            f"this is a bug; report request id {rid} (the server log has the details)",
            # uvicorn drops the connection after an unhandled error: say so, so that no client reuses it
            {"Connection": "close"},
            request_id=rid,
        )
