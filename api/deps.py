"""The app's dependencies as ``Annotated`` types: routes declare what they need, tests swap it with
``app.dependency_overrides[answer_service] = ...``.

Each accessor raises the store's startup error (503 with a hint) while what it gives is unavailable.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.state import AppState, answer_service, app_state, audit_store, question_rewriter
from pipelines.answer.conversation import QuestionRewriter
from pipelines.answer.service import AnswerService
from pipelines.store.base import AuditStore

State = Annotated[AppState, Depends(app_state)]
Answers = Annotated[AnswerService, Depends(answer_service)]
Audit = Annotated[AuditStore, Depends(audit_store)]
Rewriter = Annotated[QuestionRewriter, Depends(question_rewriter)]
