"""The FastAPI application factory. State lives on the app instance, built from injected settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from api.auth import KeyRing, require
from api.chat import build_router as chat_routes
from api.compliance import build_router as compliance_routes
from api.deps import Answers
from api.documents import build_router as document_routes
from api.documents import start_documents
from api.limits import BodySizeLimit
from api.problems import install_problem_handlers
from api.reviews import build_router as review_routes
from api.state import AppState, reopen_if_newer
from api.ui import build_router as ui_routes
from core.errors import KgragError
from core.llm import ModelClient
from core.settings import Settings, load_settings
from core.types import AnswerRecord
from pipelines.answer.conversation import QuestionRewriter
from pipelines.compose.answer import build_answer_service
from pipelines.compose.models import load_embedder, prompt_registry
from pipelines.compose.stores import build_audit, open_store

log = logging.getLogger("kgrag.api")


class AnswerRequest(BaseModel):
    """Body of ``POST /v1/answer``."""

    question: str = Field(min_length=1, max_length=20_000, examples=["Who wrote the employee handbook?"])


class Health(BaseModel):
    """Body of ``GET /healthz``."""

    status: str
    store: str
    documents: int | None = None
    chunks: int | None = None
    model_endpoint: str
    model_reachable: bool
    detail: str | None = None


def _open(state: AppState) -> None:
    try:
        embedder = state.embedder = state.embedder or load_embedder(state.settings)
        state.store = open_store(state.settings, embedder, create=False)
        state.audit = build_audit(state.settings, state.store)
        state.service = build_answer_service(state.settings, state.store, embedder, audit=state.audit)
        state.rewriter = QuestionRewriter(
            ModelClient.from_settings(state.settings), prompt_registry(state.settings), state.settings.prompts.label
        )
    except KgragError as exc:
        log.error("store not available: %s", exc)
        state.startup_error = exc


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. Without explicit settings, they are read from the environment now (not at import)."""
    state = AppState(settings=settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(state)
        app.state.documents = start_documents(state, lambda: _open(state))
        try:
            yield
        finally:
            app.state.documents.stop()

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

    @app.post("/v1/answer", response_model=AnswerRecord, tags=["answers"], dependencies=[Depends(require("chat"))])
    def answer(body: AnswerRequest, service: Answers) -> AnswerRecord:
        """Answer a question; the record (citations, facts, provenance) is stored before it is returned."""
        return service.answer(body.question)

    app.include_router(chat_routes())
    app.include_router(compliance_routes())
    app.include_router(review_routes())
    app.include_router(document_routes())
    app.include_router(ui_routes())

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz(request: Request, response: Response) -> Health:
        """Whether the store is open and the model endpoint answers (503 while the store is unavailable)."""

        st: AppState = request.app.state.kgrag
        reopen_if_newer(st)
        reachable, detail = True, None
        try:
            ModelClient.from_settings(st.settings).served_models(timeout_s=2.0)
        except KgragError as exc:
            reachable, detail = False, str(exc)
        if st.service is None or st.store is None:
            err = st.startup_error
            response.status_code = 503
            return Health(
                status="unavailable",
                store=str(st.settings.store_dir),
                model_endpoint=st.settings.llm_base_url,
                model_reachable=reachable,
                detail=str(err) if err else "starting",
            )
        counts = st.store.counts()
        return Health(
            status="ok" if reachable else "degraded",
            store=str(st.settings.store_dir),
            documents=counts["documents"],
            chunks=counts["chunks"],
            model_endpoint=st.settings.llm_base_url,
            model_reachable=reachable,
            detail=detail,
        )

    return app
