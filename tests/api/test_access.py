"""API keys and roles on every endpoint, body size limits, and problem documents, over real HTTP (no model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import Settings
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import ADMIN, CHAT, COMPLIANCE, bearer, key_settings
from tests.api.test_answer_api import assert_problem

CHAT_BODY = {"model": "kgrag-answer", "messages": [{"role": "user", "content": "Who?"}]}
REVIEW_BODY = {"decision": "approved"}
#: (method, path, body, role that may call it)
ENDPOINTS = [
    ("POST", "/v1/answer", {"question": "Who?"}, "chat"),
    ("POST", "/v1/chat/completions", CHAT_BODY, "chat"),
    ("GET", "/v1/models", None, "chat"),
    ("GET", "/v1/answers", None, "compliance"),
    ("GET", "/v1/answers/x1", None, "compliance"),
    ("GET", "/v1/answers/x1/provenance", None, "compliance"),
    ("GET", "/v1/answers/x1/reviews", None, "compliance"),
    ("POST", "/v1/answers/x1/reviews", REVIEW_BODY, "compliance"),
    ("GET", "/v1/review-queue", None, "compliance"),
    ("GET", "/v1/reviews", None, "compliance"),
    ("POST", "/v1/reviews/x1", {"decision": "approve"}, "compliance"),
    ("GET", "/v1/answers/x1/status", None, "chat"),
    ("GET", "/v1/exports/answers.csv", None, "compliance"),
    ("POST", "/v1/documents", {"documents": []}, "admin"),  # an invalid body: the shared store is never written
    ("GET", "/v1/documents", None, "admin"),
    ("GET", "/v1/documents/employee-handbook.md", None, "admin"),
    ("DELETE", "/v1/documents/no-such-doc.md", None, "admin"),
    ("GET", "/v1/jobs", None, "admin"),
    ("GET", "/v1/jobs/j1", None, "admin"),
]
KEY_FOR = {"chat": CHAT, "compliance": COMPLIANCE, "admin": ADMIN}


def with_keys(store: Path, tmp_path: Path, **extra: object) -> Settings:
    return settings_for(
        store,
        closed_port_url(),
        "m",
        api={"keys": key_settings(), **extra},
        audit={"url": f"sqlite:///{tmp_path / 'audit.sqlite'}"},
    )


@pytest.fixture
def api(live_api, sample_store: Path, tmp_path: Path) -> Iterator[object]:  # type: ignore[no-untyped-def]
    yield live_api(with_keys(sample_store, tmp_path, max_body_bytes=4096))


def call(api, method: str, path: str, body: object, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return api.client.request(method, path, json=body, headers=headers or {})


@pytest.mark.parametrize(("method", "path", "body", "role"), ENDPOINTS)
def test_every_endpoint_checks_key_and_role(api, method: str, path: str, body: object, role: str) -> None:  # type: ignore[no-untyped-def]
    missing = call(api, method, path, body)
    assert_problem(missing, 401, "needs an API key")
    assert missing.headers["www-authenticate"] == "Bearer"
    assert_problem(call(api, method, path, body, bearer("not-a-key")), 401, "not valid")
    assert_problem(call(api, method, path, body, {"X-API-Key": "nope"}), 401, "not valid")
    others = [k for r, k in KEY_FOR.items() if r not in {role, "admin"}]
    for other in others:
        assert_problem(call(api, method, path, body, bearer(other)), 403, f"needs role {role!r}")
    for key in (KEY_FOR[role], ADMIN):
        allowed = call(api, method, path, body, bearer(key))
        assert allowed.status_code not in {401, 403}, allowed.text
    allowed = call(api, method, path, body, {"X-API-Key": KEY_FOR[role]})
    assert allowed.status_code not in {401, 403}, allowed.text


def test_allowed_calls_reach_the_endpoint(api) -> None:  # type: ignore[no-untyped-def]
    """With the right key the endpoint itself answers: no model here (503), unknown answer (404), empty list."""
    assert_problem(call(api, "POST", "/v1/answer", {"question": "Who?"}, bearer(CHAT)), 503, "not reachable")
    assert call(api, "GET", "/v1/models", None, bearer(CHAT)).json()["data"][0]["id"] == "kgrag-answer"
    assert_problem(call(api, "GET", "/v1/answers/x1", None, bearer(COMPLIANCE)), 404, "x1")
    assert_problem(call(api, "POST", "/v1/answers/x1/reviews", REVIEW_BODY, bearer(COMPLIANCE)), 404, "x1")
    assert call(api, "GET", "/v1/answers", None, bearer(COMPLIANCE)).json()["items"] == []
    csv = call(api, "GET", "/v1/exports/answers.csv", None, bearer(COMPLIANCE))
    assert csv.status_code == 200 and csv.text.startswith("answer_id,created_at,decision")
    assert call(api, "GET", "/v1/documents/employee-handbook.md", None, bearer(ADMIN)).json()["chunks"] > 0
    assert call(api, "GET", "/v1/jobs", None, bearer(ADMIN)).json()["items"] == []
    assert_problem(call(api, "DELETE", "/v1/documents/no-such-doc.md", None, bearer(ADMIN)), 404, "no-such-doc")
    bad_model = dict(CHAT_BODY, model="gpt-4")
    assert_problem(call(api, "POST", "/v1/chat/completions", bad_model, bearer(CHAT)), 404, "'gpt-4' is not offered")


def test_public_paths_need_no_key(api) -> None:  # type: ignore[no-untyped-def]
    assert api.client.get("/healthz").status_code == 200
    assert api.client.get("/openapi.json").status_code == 200
    page = api.client.get("/ui/")
    assert page.status_code == 200 and '<script src="/ui/app.js">' in page.text
    assert "cdn" not in page.text.lower() and "https://" not in api.client.get("/ui/app.js").text
    assert_problem(api.client.get("/ui/secrets.txt"), 404, "no UI file")
    assert_problem(api.client.get("/nowhere"), 404, "no route GET /nowhere")


def test_body_size_limits_are_413_problems(api) -> None:  # type: ignore[no-untyped-def]
    big = {"question": "x" * 5000}
    assert_problem(api.client.post("/v1/answer", json=big, headers=bearer(CHAT)), 413, "4096-byte limit")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"question": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    chunked = api.client.post(
        "/v1/answer", content=chunks(), headers={**bearer(CHAT), "content-type": "application/json"}
    )
    assert_problem(chunked, 413, "4096-byte limit")


def test_request_errors_are_clear_problems(api) -> None:  # type: ignore[no-untyped-def]
    h = bearer(COMPLIANCE)
    assert_problem(api.client.get("/v1/answers?from=yesterday", headers=h), 422, "from='yesterday' is not an ISO")
    assert_problem(api.client.get("/v1/answers?from=2026-02-02&to=2026-01-01", headers=h), 422, "is not before")
    assert_problem(api.client.get("/v1/answers?decision=maybe", headers=h), 422, "decision")
    assert_problem(api.client.get("/v1/answers/x1/provenance?format=pdf", headers=h), 422, "format")
    no_user = {"model": "kgrag-answer", "messages": [{"role": "system", "content": "hi"}]}
    assert_problem(call(api, "POST", "/v1/chat/completions", no_user, bearer(CHAT)), 422, "no user message")
    image = {"model": "kgrag-answer", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}
    assert_problem(call(api, "POST", "/v1/chat/completions", image, bearer(CHAT)), 422, "'image_url' is not supported")


def test_invalid_key_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="sha256"):
        Settings(api={"keys": [{"name": "k", "sha256": "plain-text-key", "roles": ["chat"]}]})  # type: ignore[arg-type]


def test_no_keys_means_open_access(live_api, sample_store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m", audit={"url": f"sqlite:///{tmp_path}/a.db"}))
    assert api.client.get("/v1/answers").status_code == 200
    assert api.client.get("/v1/models").status_code == 200
