"""``GET /v1/kpis`` (role ``compliance`` or ``admin``): the KPI report of a period, as ``kgrag report --json`` writes
it, computed from the audit store and the ingestion run reports; the /ui dashboard draws its charts from it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from api.auth import require
from api.deps import Audit, State
from pipelines.ops.kpis import KpiReport, build_report
from pipelines.ops.period import parse_period
from pipelines.store.layout import StoreLayout


def build_router() -> APIRouter:
    """The KPI route."""
    router = APIRouter(tags=["operations"], dependencies=[Depends(require("compliance"))])

    @router.get("/v1/kpis", response_model=KpiReport)
    def kpis(
        st: State,
        store: Audit,
        from_: str | None = Query(None, alias="from", max_length=40, description="ISO date or datetime (inclusive)"),
        to: str | None = Query(None, max_length=40, description="ISO date (whole day included) or datetime"),
    ) -> KpiReport:
        """Answers, decision rates, latency by workflow step (p50/p95), tokens, review turnaround, the most often
        abstained questions, drift, answers per day and the ingestion runs of ``[from, to)`` (default: all)."""
        period = parse_period(from_, to)
        settings = st.settings
        return build_report(
            store, StoreLayout(settings.store_dir).reports, period, kpis=settings.kpis, drift=settings.drift
        )

    return router
