"""For compliance staff: list and search answers, read one, its provenance graph (JSON or GraphML), reviews as
new linked records, the review queue, and a CSV export for a date range."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from api.auth import require
from api.deps import Audit
from core.errors import InputError
from core.settings import ApiKey
from core.types import AnswerRecord, GateDecision
from pipelines.answer.provenance import ProvenanceGraph, build_graph, to_graphml
from pipelines.store.base import AnswerSummary, AuditStore, Review, ReviewDecision

MAX_PAGE = 500
MAX_EXPORT = 100_000


class AnswerList(BaseModel):
    """A page of answers, newest first."""

    items: list[AnswerSummary]
    limit: int
    offset: int


class ReviewRequest(BaseModel):
    """A reviewer's decision; a correction carries the corrected answer text."""

    reviewer: str = Field(default="", max_length=200, description="Defaults to the API key's name.")
    decision: ReviewDecision
    note: str = Field(default="", max_length=10_000)
    corrected_answer: str | None = Field(default=None, max_length=20_000)


def _instant(value: str | None, name: str, *, end: bool) -> str | None:
    """ISO date or datetime → ISO UTC string; a bare ``to`` date includes that whole day."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day + timedelta(days=1) if end else day, time(0), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError as exc:
        raise InputError(
            f"{name}={value!r} is not an ISO date or datetime", hint=f"use e.g. {name}=2026-11-21 or 2026-11-21T09:00Z"
        ) from exc
    return moment.astimezone(UTC).isoformat()


def _filters(from_: str | None, to: str | None, decision: GateDecision | None, q: str | None) -> dict[str, Any]:
    start, stop = _instant(from_, "from", end=False), _instant(to, "to", end=True)
    if start and stop and start >= stop:
        raise InputError(f"from={from_} is not before to={to}", hint="swap them")
    return {"start": start, "end": stop, "decision": decision, "q": q or None}


FromQ = Query(None, alias="from", max_length=40, description="ISO date or datetime (inclusive)")
ToQ = Query(None, max_length=40, description="ISO date (whole day included) or datetime (exclusive)")
DecisionQ = Query(None, description="released, abstained or review")
TextQ = Query(None, max_length=500, description="text to find in the question, answer or sources")


def build_router() -> APIRouter:
    """The compliance routes (role ``compliance``)."""
    router = APIRouter(tags=["compliance"], dependencies=[Depends(require("compliance"))])

    @router.get("/v1/answers", response_model=AnswerList)
    def list_answers(
        store: Audit,
        from_: str | None = FromQ,
        to: str | None = ToQ,
        decision: GateDecision | None = DecisionQ,
        q: str | None = TextQ,
        limit: int = Query(50, ge=1, le=MAX_PAGE),
        offset: int = Query(0, ge=0, le=10_000_000),
    ) -> AnswerList:
        """Stored answers, newest first, filtered by time range, gate decision and text."""
        items = store.list_answers(**_filters(from_, to, decision, q), limit=limit, offset=offset)
        return AnswerList(items=items, limit=limit, offset=offset)

    @router.get("/v1/exports/answers.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
    def export_answers(
        store: Audit,
        from_: str | None = FromQ,
        to: str | None = ToQ,
        decision: GateDecision | None = DecisionQ,
        q: str | None = TextQ,
    ) -> Response:
        """CSV of the answers in a date range (one row per answer; citations as document:start-end)."""
        rows = store.list_answers(**_filters(from_, to, decision, q), limit=MAX_EXPORT)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(
            ["answer_id", "created_at", "decision", "question", "answer", "citations", "model", "prompt", "reviews"]
        )
        for row in rows:
            rec = store.get(row.answer_id)
            prov = rec.provenance
            writer.writerow(
                [
                    rec.answer_id,
                    rec.created_at,
                    prov.gate.decision,
                    rec.question,
                    rec.answer,
                    "; ".join(f"{c.document_id}:{c.start}-{c.end}" for c in rec.citations),
                    prov.model,
                    f"{prov.prompt.name}@{prov.prompt.version}",
                    row.reviews,
                ]
            )
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="answers.csv"'},
        )

    @router.get("/v1/answers/{answer_id}", response_model=AnswerRecord)
    def get_answer(answer_id: str, store: Audit) -> AnswerRecord:
        """A stored answer record by id, exactly as it was returned."""
        return store.get(answer_id)

    def provenance_graph(store: AuditStore, answer_id: str) -> ProvenanceGraph:
        record = store.get(answer_id)
        sources = store.sources(answer_id)
        documents = store.document_versions(sorted({s.document_sha256 for s in sources}))
        return build_graph(record, sources, documents, store.reviews(answer_id))

    @router.get(
        "/v1/answers/{answer_id}/provenance",
        response_model=ProvenanceGraph,
        responses={200: {"content": {"application/graphml+xml": {}}}},
    )
    def get_provenance(
        answer_id: str, store: Audit, format: Literal["json", "graphml"] = Query("json")
    ) -> ProvenanceGraph | Response:
        """The answer's W3C PROV-style graph, built from the record and the sources as they were at answer time."""
        graph = provenance_graph(store, answer_id)
        if format == "graphml":
            return Response(
                to_graphml(graph),
                media_type="application/graphml+xml",
                headers={"Content-Disposition": f'attachment; filename="provenance-{answer_id}.graphml"'},
            )
        return graph

    @router.get("/v1/answers/{answer_id}/reviews", response_model=list[Review])
    def list_reviews(answer_id: str, store: Audit) -> list[Review]:
        """Reviews of an answer, oldest first."""
        store.get(answer_id)
        return store.reviews(answer_id)

    @router.post("/v1/answers/{answer_id}/reviews", response_model=Review, status_code=201)
    def add_review(
        answer_id: str,
        body: ReviewRequest,
        key: Annotated[ApiKey | None, Depends(require("compliance"))],
        store: Audit,  # after the key: a wrong key is a 401 even while the store is unavailable
    ) -> Review:
        """Record a review as a new record linked to the answer; the answer record itself never changes."""
        reviewer = body.reviewer.strip() or (key.name if key else "anonymous")
        return store.add_review(
            answer_id, reviewer=reviewer, decision=body.decision, note=body.note, corrected_answer=body.corrected_answer
        )

    @router.get("/v1/review-queue", response_model=AnswerList)
    def review_queue(store: Audit, limit: int = Query(50, ge=1, le=MAX_PAGE)) -> AnswerList:
        """Answers the gate held for review that no one has reviewed yet, newest first."""
        held = store.list_answers(decision="review", limit=MAX_EXPORT)
        return AnswerList(items=[a for a in held if a.reviews == 0][:limit], limit=limit, offset=0)

    return router
