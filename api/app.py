"""The FastAPI application factory. State lives on the app instance, built from injected settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI, Request
from pydantic import BaseModel, Field

from api.auth import KeyRing, require
from api.chat import build_router as chat_routes
from api.compliance import build_router as compliance_routes
from api.deadlines import request_deadline, run_model_work
from api.deps import Answers
from api.documents import build_router as document_routes
from api.documents import start_documents
from api.health import build_router as health_routes
from api.kpis import build_router as kpi_routes
from api.limits import BodySizeLimit
from api.metrics import RequestMetrics
from api.problems import install_problem_handlers
from api.requestid import RequestId
from api.reviews import build_router as review_routes
from api.shutdown import install_shutdown_hook
from api.state import AppState, build_state, seed_drift
from api.tracing import RequestTracing
from api.ui import build_router as ui_routes
from core.errors import KgragError
from core.settings import Settings, load_settings
from core.types import AnswerRecord
from pipelines.answer.conversation import QuestionRewriter
from pipelines.compose.answer import build_answer_service
from pipelines.compose.models import load_embedder, prompt_registry
from pipelines.compose.stores import build_audit, open_store
from pipelines.compose.tracing import build_tracing

if TYPE_CHECKING:
    from core.tracing import Tracing

log = logging.getLogger("kgrag.api")


def _open(state: AppState) -> None:
    try:
        embedder = state.embedder = state.embedder or load_embedder(state.settings)
        state.store = open_store(state.settings, embedder, create=False)
        state.audit = build_audit(state.settings, state.store)
        seed_drift(state)
        state.service = build_answer_service(
            state.settings,
            state.store,
            embedder,
            audit=state.audit,
            model=state.model,
            tracing=state.tracing,
            judge_guard=state.judge_guard,
        )
        state.rewriter = QuestionRewriter(state.model, prompt_registry(state.settings), state.settings.prompts.label)
    except KgragError as exc:
        log.error("store not available: %s", exc)
        state.startup_error = exc


def create_app(settings: Settings | None = None, tracing: Tracing | None = None) -> FastAPI:
    """Build the API. Without explicit settings, they are read from the environment now (not at import).

    ``tracing``: the tracer provider to emit spans with (tests give one with an in-memory exporter); by default the
    one ``settings.tracing`` asks for (none when tracing is off), built here and shut down with the app.
    """
    settings = settings or load_settings()
    owned = tracing is None
    tracing = tracing if tracing is not None else build_tracing(settings)
    state = build_state(settings, tracing)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(state)
        app.state.documents = start_documents(state, lambda: _open(state))
        undo_hook = install_shutdown_hook(state.admission, state.settings.api.shutdown_grace_s)
        try:
            yield
        finally:
            undo_hook()
            state.admission.close(0.0)
            state.admission.shutdown()
            app.state.documents.stop()
            if owned and tracing is not None:
                tracing.shutdown()  # exports the spans still queued

    app = FastAPI(
        title="kgrag",
        version="0.1.0",
        lifespan=lifespan,
        description="Answers from an organisation's documents, with citations, graph facts and provenance.",
    )
    app.state.kgrag = state
    app.state.keyring = KeyRing(state.settings.api.keys)
    if app.state.keyring.enabled:
        log.info("API keys: %d configured; every /v1 endpoint needs one", len(state.settings.api.keys))
    else:
        log.warning("no API keys configured (KGRAG_API__KEYS): authentication is OFF; bind to 127.0.0.1 only")
    install_problem_handlers(app)
    api = state.settings.api
    app.add_middleware(
        BodySizeLimit,
        max_bytes=api.max_body_bytes,
        max_upload_bytes=api.max_upload_bytes,
        upload_prefix="/v1/documents",
    )
    if api.metrics_enabled:
        app.add_middleware(RequestMetrics, metrics=state.metrics)
    app.add_middleware(RequestId)
    if tracing is not None:
        app.add_middleware(RequestTracing, tracer=tracing.tracer)  # outermost: the span holds the whole request

    class AnswerRequest(BaseModel):
        """Body of ``POST /v1/answer``; the question's length limit is ``KGRAG_API__MAX_QUESTION_CHARS``."""

        question: str = Field(
            min_length=1, max_length=api.max_question_chars, examples=["Who wrote the employee handbook?"]
        )

    async def answer(body: AnswerRequest, request: Request, service: Answers) -> AnswerRecord:
        """Answer a question; the record (citations, facts, provenance) is stored before it is returned.

        Waits for a place in the model's admission queue; ``X-Request-Timeout`` (seconds) shortens the deadline.
        A request stopped at its deadline or by its client leaving stores nothing.
        """
        deadline = request_deadline(request)
        state.breaker.check()
        record = await run_model_work(request, deadline, lambda: service.answer(body.question, deadline=deadline))
        state.metrics.answer(record)
        return record

    # The body model is built here (its limit is a setting); FastAPI resolves string annotations in module globals.
    answer.__annotations__["body"] = AnswerRequest
    app.post(
        "/v1/answer",
        response_model=AnswerRecord,
        tags=["answers"],
        dependencies=[Depends(require("chat"))],
        responses={
            429: {"description": "the model's queue is full (Retry-After)"},
            503: {
                "description": "cannot start or finish within the deadline, shutting down, or the model's breaker "
                "is open (Retry-After)"
            },
        },
    )(answer)

    app.include_router(chat_routes())
    app.include_router(compliance_routes())
    app.include_router(review_routes())
    app.include_router(document_routes())
    app.include_router(kpi_routes())
    app.include_router(ui_routes())

    app.include_router(health_routes())

    return app
