"""The FastAPI application factory. State lives on the app instance, built from injected settings."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from api.problems import install_problem_handlers
from core.errors import KgragError, StoreNotFoundError
from core.settings import Settings, load_settings
from core.types import AnswerRecord

if TYPE_CHECKING:
    from pipelines.answer import AnswerService
    from pipelines.store import KnowledgeStore

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


@dataclass
class AppState:
    """What the app holds for its lifetime: the settings, and the answer service once the store is open."""

    settings: Settings
    service: AnswerService | None = None
    store: KnowledgeStore | None = None
    startup_error: KgragError | None = None


def _open(state: AppState) -> None:
    from pipelines.factory import build_answer_service, load_embedder, open_store

    try:
        embedder = load_embedder(state.settings)
        state.store = open_store(state.settings, embedder, create=False)
        state.service = build_answer_service(state.settings, state.store, embedder)
    except KgragError as exc:
        log.error("store not available: %s", exc)
        state.startup_error = exc


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API. Without explicit settings, they are read from the environment now (not at import)."""
    state = AppState(settings=settings or load_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _open(state)
        yield

    app = FastAPI(
        title="kgrag",
        version="0.1.0",
        lifespan=lifespan,
        description="Answers from an organisation's documents, with citations, graph facts and provenance.",
    )
    app.state.kgrag = state
    install_problem_handlers(app)

    def service(request: Request) -> AnswerService:
        st: AppState = request.app.state.kgrag
        if st.service is None:
            raise st.startup_error or StoreNotFoundError("the store is not open yet")
        return st.service

    @app.post("/v1/answer", response_model=AnswerRecord, tags=["answers"])
    def answer(body: AnswerRequest, request: Request) -> AnswerRecord:
        """Answer a question; the record (citations, facts, provenance) is stored before it is returned."""
        return service(request).answer(body.question)

    @app.get("/v1/answers/{answer_id}", response_model=AnswerRecord, tags=["answers"])
    def get_answer(answer_id: str, request: Request) -> AnswerRecord:
        """A stored answer record by id."""
        return service(request).audit.get(answer_id)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz(request: Request, response: Response) -> Health:
        """Whether the store is open and the model endpoint answers (503 while the store is unavailable)."""
        from core.llm import ModelClient

        st: AppState = request.app.state.kgrag
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
