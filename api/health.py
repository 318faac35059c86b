"""``GET /healthz``: the store, the model, its breaker, its admission queue and the KPI drift, answered on the event
loop in milliseconds; and ``GET /metrics`` (Prometheus text format).

While answers run and the last model outcome was a success, the model is ``busy`` (not probed: a busy llama.cpp
server answers nothing else until it is done). Otherwise ``/models`` is probed on a worker thread, at most every
:data:`PROBE_TTL_S` seconds, and the result is reused in between.
"""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from api.admission import QueueStats
from api.auth import require
from api.state import AppState, ModelProbe, app_state, reopen_if_newer
from core.breaker import BreakerStats
from core.errors import KgragError
from core.llm import ModelClient
from pipelines.ops.drift import DriftReport

PROBE_TTL_S = 2.0
PROBE_TIMEOUT_S = 2.0
ModelStatus = Literal["ok", "busy", "unreachable"]


class Health(BaseModel):
    """Body of ``GET /healthz``."""

    status: str
    store: str
    documents: int | None = None
    chunks: int | None = None
    model_endpoint: str
    model_reachable: bool
    model_status: ModelStatus
    queue: QueueStats
    breaker: BreakerStats
    detail: str | None = None
    drift: DriftReport | None = Field(
        default=None, description="The KPIs' newest window against their baseline (informative: never degrades)."
    )


def _probe_now(st: AppState) -> ModelProbe:
    try:
        ModelClient.from_settings(st.settings).served_models(timeout_s=PROBE_TIMEOUT_S)
    except KgragError as exc:
        return ModelProbe(time.monotonic(), False, str(exc))
    return ModelProbe(time.monotonic(), True, None)


async def model_status(st: AppState) -> tuple[ModelStatus, str | None]:
    """``busy`` (answers running, recent calls fine), else the (cached) probe's ``ok`` or ``unreachable``."""
    if st.admission.model_state() == "busy":
        return "busy", None
    probe = st.model_probe
    if probe is None or time.monotonic() - probe.at > PROBE_TTL_S:
        probe = st.model_probe = await asyncio.to_thread(_probe_now, st)
    return ("ok", None) if probe.reachable else ("unreachable", probe.detail)


def _store_counts(st: AppState) -> dict[str, int]:
    reopen_if_newer(st)
    return st.store.counts() if st.store is not None else {}


class MetricsDisabledError(KgragError):
    """``GET /metrics`` on an API started with ``KGRAG_API__METRICS_ENABLED=false``."""

    http_status = 404
    code = "metrics-disabled"


LOOPBACK = frozenset({"127.0.0.1", "::1"})
_admin = require("admin")


def _metrics_access(request: Request) -> None:
    """Role ``admin``, or no key at all from 127.0.0.1 when ``KGRAG_API__METRICS_PUBLIC_ON_LOOPBACK`` is on."""
    client = request.client.host if request.client else None
    if app_state(request).settings.api.metrics_public_on_loopback and client in LOOPBACK:
        return
    _admin(request)


def build_router() -> APIRouter:
    """The health route (no authentication) and the metrics route (see :func:`_metrics_access`)."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz", response_model=Health)
    async def healthz(request: Request, response: Response) -> Health:
        """The store, the model (``ok``, ``busy`` or ``unreachable``) and the admission queue (503 while the store
        is unavailable)."""
        st = app_state(request)
        counts = await asyncio.to_thread(_store_counts, st)
        status, detail = await model_status(st)
        common = {
            "store": str(st.settings.store_dir),
            "model_endpoint": st.settings.llm_base_url,
            "model_reachable": status != "unreachable",
            "model_status": status,
            "queue": st.admission.stats(),
            "breaker": st.breaker.stats(),
            "drift": st.drift.report() if st.drift is not None else None,
        }
        if st.service is None or st.store is None:
            err = st.startup_error
            response.status_code = 503
            response.headers["Retry-After"] = "5"
            return Health(status="unavailable", detail=str(err) if err else "starting", **common)  # type: ignore[arg-type]
        healthy = status != "unreachable" and st.breaker.state == "closed"
        return Health(
            status="ok" if healthy else "degraded",
            documents=counts.get("documents"),
            chunks=counts.get("chunks"),
            detail=detail,
            **common,  # type: ignore[arg-type]
        )

    @router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    def metrics(request: Request) -> Response:
        """Prometheus metrics of this instance (text exposition format); role ``admin``, or open to 127.0.0.1 when
        ``KGRAG_API__METRICS_PUBLIC_ON_LOOPBACK`` is on."""
        st = app_state(request)
        if not st.metrics.enabled:
            raise MetricsDisabledError("metrics are off", hint="set KGRAG_API__METRICS_ENABLED=true")
        _metrics_access(request)
        return Response(generate_latest(st.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return router
