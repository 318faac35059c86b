"""Errors as RFC 9457 problem documents: one clear message, the fix, and the right status code."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import KgragError

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, code: str, title: str, detail: str, hint: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body: dict[str, object] = {
        "type": f"https://kgrag.dev/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_from_error(exc: KgragError) -> JSONResponse:
    """The problem document of a kgrag error: its status, code, message and hint."""
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return problem(exc.http_status, exc.code, type(exc).__name__, exc.message, exc.hint, headers)


def install_problem_handlers(app: FastAPI) -> None:
    """Map kgrag errors and request validation errors to problem documents (never a stack trace)."""

    @app.exception_handler(KgragError)
    async def kgrag_error(_: Request, exc: KgragError) -> JSONResponse:
        return problem_from_error(exc)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return problem(
            exc.status_code, f"http-{exc.status_code}", detail, detail, "see /docs for the API", dict(exc.headers or {})
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
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
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        return problem(
            500,
            "internal-error",
            "Internal error",
            f"{type(exc).__name__}: {exc}",
            "this is a bug; the server log has the details",
        )
