"""The review flow: compliance staff work the queue of answers the gate held; the asker polls for the outcome.

- ``GET /v1/reviews`` (role ``compliance``): answers held for review that nobody has reviewed yet, newest first.
- ``POST /v1/reviews/{answer_id}`` (role ``compliance``): approve (optionally with edited text) or reject, with a
  reason. The review is a new record linked to the answer (the audit store's review rows, shared with
  ``/v1/answers/{id}/reviews``); the answer record itself never changes.
- ``GET /v1/answers/{answer_id}/status`` (role ``chat``): what the asker sees: ``pending`` while held, then the
  approved (possibly edited) answer, or that it was rejected and why.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from api.auth import require
from api.compliance import MAX_PAGE, AnswerList
from api.deps import Audit
from core.errors import InputError, ReviewConflictError
from core.settings import ApiKey
from core.types import AnswerRecord, Citation
from pipelines.store.base import Review, ReviewDecision
from prompts.constants import ABSTENTION_TEXT

AnswerState = Literal["released", "pending", "approved", "rejected", "abstained"]
REJECTED_TEXT = "A reviewer did not release this answer."


class ReviewAction(BaseModel):
    """A reviewer's decision on a held answer: approve (``text`` replaces the draft when given) or reject."""

    decision: Literal["approve", "reject"]
    reason: str = Field(default="", max_length=10_000, description="Why; required to reject.")
    text: str | None = Field(default=None, max_length=20_000, description="Edited answer text to release instead.")
    reviewer: str = Field(default="", max_length=200, description="Defaults to the API key's name.")


class AnswerStatus(BaseModel):
    """An answer as its asker sees it now: released by the gate, pending review, approved, rejected or abstained."""

    answer_id: str
    question: str
    status: AnswerState
    answer: str
    citations: list[Citation] = Field(default_factory=list)
    review: Review | None = Field(default=None, description="The review that decided it, when one did.")


def status_of(record: AnswerRecord, reviews: list[Review]) -> AnswerStatus:
    """The asker's view of ``record`` given its reviews (the newest review decides)."""
    ids = {"answer_id": record.answer_id, "question": record.question}
    decision = record.provenance.gate.decision
    if decision == "released":
        return AnswerStatus.model_validate(
            ids | {"status": "released", "answer": record.answer, "citations": record.citations}
        )
    if decision == "abstained":
        return AnswerStatus.model_validate(ids | {"status": "abstained", "answer": record.answer})
    if not reviews:
        return AnswerStatus.model_validate(ids | {"status": "pending", "answer": record.answer})
    latest = reviews[-1]
    if latest.decision == "rejected":
        why = f" Reason: {latest.note}" if latest.note.strip() else ""
        return AnswerStatus.model_validate(
            ids | {"status": "rejected", "answer": REJECTED_TEXT + why, "review": latest}
        )
    text = latest.corrected_answer if latest.corrected_answer else record.provenance.draft
    return AnswerStatus.model_validate(
        ids | {"status": "approved", "answer": text or ABSTENTION_TEXT, "review": latest}
    )


def build_router() -> APIRouter:
    """The review queue (role ``compliance``) and the asker's status poll (role ``chat``)."""
    router = APIRouter(tags=["reviews"])

    @router.get("/v1/reviews", response_model=AnswerList, dependencies=[Depends(require("compliance"))])
    def pending_reviews(store: Audit, limit: int = Query(50, ge=1, le=MAX_PAGE)) -> AnswerList:
        """Answers the gate held for review that no one has reviewed yet, newest first."""
        held = store.list_answers(decision="review", limit=100_000)
        return AnswerList(items=[a for a in held if a.reviews == 0][:limit], limit=limit, offset=0)

    @router.post("/v1/reviews/{answer_id}", response_model=Review, status_code=201)
    def review(
        answer_id: str,
        body: ReviewAction,
        key: Annotated[ApiKey | None, Depends(require("compliance"))],
        store: Audit,  # after the key: a wrong key is a 401 even while the store is unavailable
    ) -> Review:
        """Approve (optionally with edited text) or reject a held answer; stored as a new linked review record."""
        record = store.get(answer_id)
        if record.provenance.gate.decision != "review":
            raise ReviewConflictError(
                f"answer {answer_id} was {record.provenance.gate.decision} by the gate, not held for review",
                hint=f"annotate it with POST /v1/answers/{answer_id}/reviews instead",
            )
        reason = body.reason.strip()
        if body.decision == "reject" and not reason:
            raise InputError("a rejection needs a reason", hint="send {'decision': 'reject', 'reason': '...'}")
        edited = body.text.strip() if body.text is not None else None
        if body.text is not None and not edited:
            raise InputError("the edited text is empty", hint="leave out 'text' to release the draft as it is")
        reviewer = body.reviewer.strip() or (key.name if key else "anonymous")
        decision: ReviewDecision = "rejected" if body.decision == "reject" else ("corrected" if edited else "approved")
        return store.add_review(answer_id, reviewer=reviewer, decision=decision, note=reason, corrected_answer=edited)

    @router.get("/v1/answers/{answer_id}/status", response_model=AnswerStatus, dependencies=[Depends(require("chat"))])
    def answer_status(answer_id: str, store: Audit) -> AnswerStatus:
        """The asker's poll: pending while held for review; then the approved (possibly edited) answer, or why it
        was rejected."""
        return status_of(store.get(answer_id), store.reviews(answer_id))

    return router
