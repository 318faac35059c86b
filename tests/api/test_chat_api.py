"""The OpenAI-compatible chat surface, driven by the real ``openai`` client against a server on 127.0.0.1."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest

from core.types import AnswerRecord
from pipelines.answer.conversation import QuestionRewriter, Turn
from prompts.registry import FilePromptRegistry
from tests.api.conftest import settings_for
from tests.api.keys import CHAT, COMPLIANCE, bearer, key_settings
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer

QUESTION = "How many days of paid annual leave do employees get?"


def check_markers(text: str, citations: list[dict]) -> None:  # type: ignore[type-arg]
    for group in re.findall(r"\[(\d+(?:\s*,\s*\d+)*)\]", text):
        for n in group.split(","):
            assert 1 <= int(n) <= len(citations), (text, len(citations))


@pytest.mark.integration
def test_openai_client_plain_streamed_and_follow_up(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    smol_server: RunningModelServer,
    tmp_path: Path,
) -> None:
    api = live_api(
        settings_for(
            sample_store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"enabled": False},
            # a long deadline: on a loaded 2-core machine one SmolLM2 answer has taken over 120 s
            api={"keys": key_settings(), "stream_keepalive_s": 0.05, "request_timeout_s": 600},
            audit={"url": f"sqlite:///{tmp_path / 'audit.sqlite'}"},
        )
    )
    client = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=CHAT, max_retries=0, timeout=600)
    assert [m.id for m in client.models.list()] == ["kgrag-answer"]

    done = client.chat.completions.create(model="kgrag-answer", messages=[{"role": "user", "content": QUESTION}])
    ext = done.model_extra["kgrag"]  # type: ignore[index]
    text = done.choices[0].message.content or ""
    assert done.choices[0].finish_reason == "stop" and done.id == f"chatcmpl-{ext['answer_id']}"
    stored = AnswerRecord.model_validate(
        api.client.get(f"/v1/answers/{ext['answer_id']}", headers=bearer(COMPLIANCE)).json()
    )
    assert stored.answer == text and stored.question == QUESTION and ext["rewritten"] is False
    conv = stored.provenance.conversation
    assert conv is not None and conv.original_question == QUESTION == conv.rewritten_question
    assert conv.rewritten is False and conv.condense_prompt is None and conv.history_turns == 0
    assert ext["citations"] == [c.model_dump() for c in stored.citations]
    check_markers(text, ext["citations"])

    stream = client.chat.completions.create(
        model="kgrag-answer", messages=[{"role": "user", "content": QUESTION}], stream=True
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop" and all(c.choices[0].finish_reason is None for c in chunks[:-1])
    sext = final.model_extra["kgrag"]  # type: ignore[index]
    assert all("kgrag" not in (c.model_extra or {}) for c in chunks[:-1])
    streamed = api.client.get(f"/v1/answers/{sext['answer_id']}", headers=bearer(COMPLIANCE)).json()
    assert streamed["answer"] == content and len(content) > 0
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert len(pieces) >= len(content.split()) > 1, pieces  # token-sized: one word (with its leading space) each
    assert all(len(p) <= 24 + 1 for p in pieces) and len({c.id for c in chunks}) == 1
    check_markers(content, sext["citations"])

    # the raw stream: keep-alive comments while the answer is made and gated, then data events, then [DONE]
    raw_body = {"model": "kgrag-answer", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with api.client.stream("POST", "/v1/chat/completions", json=raw_body, headers=bearer(CHAT)) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    first_data = next(i for i, line in enumerate(lines) if line.startswith("data: "))
    assert first_data > 0 and set(lines[:first_data]) == {": keep-alive"}, lines[:5]
    assert all(line.startswith("data: ") for line in lines[first_data:]) and lines[-1] == "data: [DONE]"

    follow = client.chat.completions.create(
        model="kgrag-answer",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": text},
            {"role": "user", "content": [{"type": "text", "text": "And how many sick days?"}]},
        ],
    )
    fext = follow.model_extra["kgrag"]  # type: ignore[index]
    assert fext["rewritten"] is True and fext["question"].strip()
    record = api.client.get(f"/v1/answers/{fext['answer_id']}", headers=bearer(COMPLIANCE)).json()
    assert record["question"] == fext["question"] and fext["original_question"] == "And how many sick days?"
    audit = record["provenance"]["conversation"]  # the chat audit: original message, its rewrite, the prompt version
    condense = FilePromptRegistry(None).resolve("condense", "production").ref()
    assert audit["original_question"] == "And how many sick days?" and audit["rewritten"] is True
    assert audit["rewritten_question"] == fext["question"] and audit["history_turns"] == 2
    assert audit["condense_prompt"] == condense.model_dump() and audit["condense_model"]

    with pytest.raises(openai.NotFoundError, match="not offered"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    bad = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()
    reviewer = openai.OpenAI(base_url=f"{api.base_url}/v1", api_key=COMPLIANCE, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        reviewer.chat.completions.create(model="kgrag-answer", messages=[{"role": "user", "content": QUESTION}])


@pytest.mark.slow
@pytest.mark.integration
def test_follow_up_is_rewritten_standalone_with_qwen(qwen_server: RunningModelServer) -> None:
    rewriter = QuestionRewriter(qwen_server.client(max_tokens=64), FilePromptRegistry(None))
    history = [
        Turn(role="user", content="How many days of paid annual leave do employees get?"),
        Turn(role="assistant", content="Employees get 28 days of paid annual leave per year [1]."),
    ]
    out = rewriter.rewrite(history, "Can they carry any of them over to next year?")
    assert out.prompt is not None and out.prompt.name == "condense"
    assert "leave" in out.question.lower() and "they" not in out.question.lower().split(), out.question
    assert rewriter.rewrite([], "Who founded Northwind?").question == "Who founded Northwind?"
