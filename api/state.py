"""What the app holds for its lifetime, and accessors that raise the right error while something is unavailable."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request

from api.admission import AdmissionQueue
from api.metrics import ApiMetrics, LiveSources
from core.base import ChatModel
from core.breaker import ModelBreaker
from core.errors import KgragError, StoreNotFoundError
from core.guarded import GuardedModel
from core.llm import ModelClient
from core.settings import Settings
from pipelines.answer.conversation import QuestionRewriter
from pipelines.answer.service import AnswerService
from pipelines.compose.answer import build_answer_service
from pipelines.compose.stores import open_store
from pipelines.compose.tracing import model_tracer
from pipelines.ops.drift import DriftWatch
from pipelines.ops.samples import recent_samples
from pipelines.store.base import AuditStore
from pipelines.store.knowledge import KnowledgeStore
from retrieval.base import Embedder

if TYPE_CHECKING:
    from core.tracing import Tracing
    from evals.gate.base import VerdictModel

log = logging.getLogger("kgrag.api")


@dataclass(frozen=True)
class ModelProbe:
    """A probe of the model endpoint's ``/models``: when (monotonic), and what it found."""

    at: float
    reachable: bool
    detail: str | None


@dataclass
class AppState:
    """The settings, the model's admission queue, its breaker, the answer model behind it, the metrics and the KPI
    drift watch (None when drift is off); once the store is open: the answer service, its audit store and the
    question rewriter."""

    settings: Settings
    admission: AdmissionQueue
    breaker: ModelBreaker
    metrics: ApiMetrics
    #: The answer model (and the rewriter's): the configured endpoint behind :attr:`breaker`, observed by
    #: :attr:`metrics`.
    model: ChatModel
    service: AnswerService | None = None
    store: KnowledgeStore | None = None
    audit: AuditStore | None = None
    rewriter: QuestionRewriter | None = None
    startup_error: KgragError | None = None
    embedder: Embedder | None = None
    reload_lock: threading.Lock = field(default_factory=threading.Lock)
    #: The last probe of the model endpoint (``/healthz``).
    model_probe: ModelProbe | None = None
    drift: DriftWatch | None = None
    #: The tracer provider (None: tracing off).
    tracing: Tracing | None = None
    #: Wraps the gate's judge client: behind :attr:`breaker` when the judge is the answer endpoint (else its own
    #: breaker), observed by :attr:`metrics` as role ``judge``.
    judge_guard: Callable[[ModelClient], VerdictModel] | None = None


def build_state(settings: Settings, tracing: Tracing | None = None) -> AppState:
    """The app's parts that live as long as it: admission queue, breaker, guarded model, metrics registry, drift
    watch (and the tracer provider, given)."""
    client = ModelClient.from_settings(settings, traced=model_tracer(tracing))
    admission = AdmissionQueue(settings.llm_base_url, settings.admission, ejected=client.pool.ejected)
    breaker = ModelBreaker(settings.llm_base_url, settings.breaker)
    drift = DriftWatch(settings.drift) if settings.drift.enabled else None
    metrics = ApiMetrics(retrieval_mode=settings.retrieval.mode, drift=drift, enabled=settings.api.metrics_enabled)
    observer = metrics if metrics.enabled else None
    model = GuardedModel(client, breaker, observer)
    judge_url = settings.gate.judge_base_url
    # a judge on another endpoint has a breaker of its own; on the answer model's, it shares that one
    judge_breaker = (
        ModelBreaker(judge_url, settings.breaker) if judge_url and judge_url != settings.llm_base_url else breaker
    )

    def judge_guard(judge: ModelClient) -> VerdictModel:
        return GuardedModel(judge, judge_breaker, observer, role="judge")

    state = AppState(
        settings=settings,
        admission=admission,
        breaker=breaker,
        metrics=metrics,
        model=model,
        drift=drift,
        tracing=tracing,
        judge_guard=judge_guard,
    )
    metrics.watch(
        LiveSources(admission, breaker, lambda: review_queue_depth(state), lambda: snapshot_age(state), drift)
    )
    return state


def seed_drift(st: AppState) -> None:
    """Fill the drift watch with the newest answers of the audit store (once it is open); a failure is logged and
    the watch starts empty."""
    if st.drift is None or st.audit is None:
        return
    try:
        st.drift.seed(recent_samples(st.audit, st.drift.capacity))
    except Exception as exc:  # optional: a database error of any kind leaves the watch empty, never stops start-up
        log.warning("drift watch not seeded from the audit store: %s: %s", type(exc).__name__, exc)


def snapshot_age(st: AppState) -> float | None:
    """Seconds since the snapshot the API serves was published (None while no store is open)."""
    store = st.store
    published = store.published_at() if store is not None else None
    return max(0.0, time.time() - published) if published is not None else None


def review_queue_depth(st: AppState) -> int | None:
    """Answers held for review that nobody has reviewed yet (None while the audit store is not open)."""
    if st.audit is None:
        return None
    try:
        held = st.audit.list_answers(decision="review", limit=100_000)
    except KgragError as exc:  # the audit database is down: the scrape goes on without this gauge
        log.warning("review queue depth not available: %s", exc)
        return None
    return sum(1 for a in held if a.reviews == 0)


def reopen_if_newer(st: AppState) -> None:
    """Switch to the snapshot ingestion published last (one ``readlink`` per request when nothing changed).

    Requests already running keep the store they started with; ingestion keeps the previous snapshot's files, so
    they stay readable until the run after next.
    """

    if st.store is None or st.embedder is None:
        return
    current = KnowledgeStore.current_snapshot_id(st.settings.store_dir)
    if current is None or current == st.store.snapshot_id:
        return
    with st.reload_lock:
        if st.store.snapshot_id == current:
            return

        store = open_store(st.settings, st.embedder, create=False)
        st.service = build_answer_service(
            st.settings,
            store,
            st.embedder,
            audit=st.audit,
            model=st.model,
            tracing=st.tracing,
            judge_guard=st.judge_guard,
        )
        st.store = store
        log.info("switched to snapshot %s", current)


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.kgrag
    return state


def _unavailable(st: AppState) -> KgragError:
    return st.startup_error or StoreNotFoundError("the store is not open yet", hint="retry in a moment")


def answer_service(request: Request) -> AnswerService:
    st = app_state(request)
    reopen_if_newer(st)
    if st.service is None:
        raise _unavailable(st)
    return st.service


def audit_store(request: Request) -> AuditStore:
    st = app_state(request)
    if st.audit is None:
        raise _unavailable(st)
    return st.audit


def question_rewriter(request: Request) -> QuestionRewriter:
    st = app_state(request)
    if st.rewriter is None:
        raise _unavailable(st)
    return st.rewriter
