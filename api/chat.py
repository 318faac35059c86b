"""The OpenAI-compatible surface: ``POST /v1/chat/completions`` (plain and SSE-streamed) and ``GET /v1/models``.

The last user message is the question; earlier turns are used to rewrite it into a standalone question before
retrieval; the answer's provenance records both (``provenance.conversation``).

Streaming and the gate: no text leaves before the gate has released it, so a stream cannot carry the model's tokens
as they are generated. Instead the request is checked first (a bad model name or an empty question is a plain
problem response); then, if the answer is not ready within ``KGRAG_API__STREAM_KEEPALIVE_S``, the SSE response
starts and sends a comment line (``: keep-alive``) every interval while retrieval, generation and the gate run, so
proxies and clients do not time out; OpenAI clients ignore comments. Once the record is stored, the released text
follows in token-sized chunks (a word with its leading space; long words split), then a final chunk with
``finish_reason`` and the ``kgrag`` extension (answer id, citations, facts), then ``[DONE]``. A failure after the
stream started is sent as an OpenAI-style ``{"error": ...}`` event before ``[DONE]`` (the ``openai`` client raises it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from api.auth import require
from api.deadlines import request_deadline, run_model_work
from api.deps import Answers
from api.state import answer_service, app_state, question_rewriter
from core.deadline import Deadline
from core.errors import InputError, KgragError, ModelNotFoundError
from core.types import AnswerRecord, Citation, FactCitation
from pipelines.answer.conversation import QuestionRewriter, Rewrite, Turn
from pipelines.answer.service import AnswerService

MODEL_PREFIX = "kgrag-"
STREAM_PIECE_CHARS = 24
_WORD_START = re.compile(r"(?<=\S)(?=\s)")
KEEPALIVE = ": keep-alive\n\n"
log = logging.getLogger("kgrag.api")


class ChatMessage(BaseModel):
    """A chat message; ``content`` is a string or a list of parts of which only ``text`` parts are read."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InputError(
                    f"message part of type {part.get('type')!r} is not supported", hint="send text content only"
                )
            parts.append(part["text"])
        return "\n".join(parts)


class ChatCompletionRequest(BaseModel):
    """An OpenAI chat-completions request; sampling options are accepted and ignored (the workflow decides)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=200, examples=["kgrag-answer"])
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False


class KgragExtension(BaseModel):
    """The ``kgrag`` field of a completion (and of a stream's final chunk): where the answer came from."""

    answer_id: str
    question: str = Field(description="The standalone question that was answered.")
    original_question: str = Field(default="", description="The last user message as sent.")
    decision: str
    citations: list[Citation]
    facts: list[FactCitation]
    rewritten: bool


class ChatChoiceMessage(BaseModel):
    """The assistant's message."""

    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    """One choice (always one)."""

    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """An OpenAI ``chat.completion`` object with the ``kgrag`` extension field."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    kgrag: KgragExtension


class ModelCard(BaseModel):
    """An answer workflow offered as a model."""

    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "kgrag"
    workflow: dict[str, str]


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


def offered_models(service: AnswerService) -> list[ModelCard]:
    wf = service.workflow
    return [ModelCard(id=f"{MODEL_PREFIX}{wf.name}", workflow={"name": wf.name, "version": wf.version})]


def _split(messages: list[ChatMessage]) -> tuple[list[Turn], str]:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        raise InputError("the conversation has no user message", hint='add {"role": "user", "content": "..."}')
    question = messages[last_user].text().strip()
    if not question:
        raise InputError("the last user message is empty", hint="ask a question in plain words")
    history = [Turn(role=m.role, content=m.text()) for m in messages[:last_user] if m.role in {"user", "assistant"}]
    return history, question


class _Prepared(BaseModel):
    """A checked chat request: what to rewrite and answer, with the services that will do it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    service: AnswerService
    rewriter: QuestionRewriter
    history: list[Turn]
    question: str


def _prepare(request: Request, body: ChatCompletionRequest) -> _Prepared:
    """Everything that can be refused before answering: store state, model name, the messages, the question."""
    service = answer_service(request)
    names = [m.id for m in offered_models(service)]
    if body.model not in names:
        raise ModelNotFoundError(f"model {body.model!r} is not offered here", hint=f"use one of: {', '.join(names)}")
    history, question = _split(body.messages)
    service.validate_question(question)
    return _Prepared(service=service, rewriter=question_rewriter(request), history=history, question=question)


def _run(prepared: _Prepared, deadline: Deadline) -> tuple[AnswerRecord, Rewrite]:
    deadline.check()
    rewrite = prepared.rewriter.rewrite(prepared.history, prepared.question)
    return prepared.service.answer(rewrite.question, conversation=rewrite.reference(), deadline=deadline), rewrite


async def _answer(request: Request, body: ChatCompletionRequest, deadline: Deadline) -> tuple[AnswerRecord, Rewrite]:
    """Check the request, then rewrite and answer once the model's admission queue lets it start."""
    prepared = await run_in_threadpool(_prepare, request, body)
    st = app_state(request)
    st.breaker.check()
    record, rewrite = await run_model_work(request, deadline, lambda: _run(prepared, deadline))
    st.metrics.answer(record)
    return record, rewrite


def _extension(record: AnswerRecord, rewrite: Rewrite) -> KgragExtension:
    return KgragExtension(
        answer_id=record.answer_id,
        question=record.question,
        decision=record.provenance.gate.decision,
        citations=record.citations,
        facts=record.facts,
        rewritten=rewrite.prompt is not None,
        original_question=rewrite.original,
    )


def _pieces(text: str) -> Iterator[str]:
    """Token-sized pieces that concatenate to ``text``: each word with its leading whitespace, long ones split."""
    for word in _WORD_START.split(text):
        for i in range(0, len(word), STREAM_PIECE_CHARS):
            yield word[i : i + STREAM_PIECE_CHARS]


def _sse(record: AnswerRecord, rewrite: Rewrite, model: str) -> Iterator[str]:
    base = {"id": f"chatcmpl-{record.answer_id}", "object": "chat.completion.chunk", "created": int(time.time())}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {**base, "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(body)}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(record.answer):
        yield chunk({"content": piece})
    yield chunk({}, "stop", kgrag=_extension(record, rewrite).model_dump())
    yield "data: [DONE]\n\n"


def _error_event(exc: BaseException) -> str:
    if isinstance(exc, KgragError):
        error = {"message": str(exc), "type": exc.code, "code": exc.http_status}
    else:
        log.error("chat stream failed: unhandled %s", type(exc).__name__, exc_info=exc)
        error = {
            "message": "the server failed to answer; the server log has the details",
            "type": "internal-error",
            "code": 500,
        }
    return f"data: {json.dumps({'error': error})}\n\n"


async def _keepalive_stream(
    task: asyncio.Future[tuple[AnswerRecord, Rewrite]], interval_s: float, model: str
) -> AsyncIterator[str]:
    """Comments while the answer is made and gated (one at once: the stream starts because an interval passed),
    then the released answer's chunks (or an error event)."""
    yield KEEPALIVE
    while not task.done():
        await asyncio.wait({task}, timeout=interval_s)
        if not task.done():
            yield KEEPALIVE
    try:
        record, rewrite = task.result()
    except Exception as exc:
        yield _error_event(exc)
        yield "data: [DONE]\n\n"
        return
    for piece in _sse(record, rewrite, model):
        yield piece


def build_router() -> APIRouter:
    """The chat routes (role ``chat``)."""
    router = APIRouter(tags=["chat"], dependencies=[Depends(require("chat"))])

    @router.get("/v1/models", response_model=ModelList)
    def list_models(service: Answers) -> ModelList:
        """The answer workflows, as models a chat frontend can pick."""
        return ModelList(data=offered_models(service))

    @router.post(
        "/v1/chat/completions",
        response_model=ChatCompletion,
        responses={200: {"content": {"text/event-stream": {}}, "description": "with stream=true: SSE chunks"}},
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request) -> Any:
        """Answer the last user message (made standalone using the earlier turns); stored before it is returned.

        With ``stream=true``: SSE ``: keep-alive`` comments while the answer is made and gated, then the released
        text in token-sized chunks, a final chunk with the ``kgrag`` extension, and ``[DONE]``.
        """
        deadline = request_deadline(request)
        if body.stream:
            prepared = await run_in_threadpool(_prepare, request, body)
            task = asyncio.ensure_future(run_model_work(request, deadline, lambda: _run(prepared, deadline)))
            interval = app_state(request).settings.api.stream_keepalive_s
            await asyncio.wait({task}, timeout=interval)
            if task.done():  # ready (or failed) within one interval: a plain stream, or a plain problem response
                record, rewrite = task.result()
                events: Iterator[str] | AsyncIterator[str] = _sse(record, rewrite, body.model)
            else:
                events = _keepalive_stream(task, interval, body.model)
            return StreamingResponse(
                events,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        record, rewrite = await _answer(request, body, deadline)
        return ChatCompletion(
            id=f"chatcmpl-{record.answer_id}",
            created=int(time.time()),
            model=body.model,
            choices=[ChatChoice(message=ChatChoiceMessage(content=record.answer))],
            kgrag=_extension(record, rewrite),
        )

    return router
