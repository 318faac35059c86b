"""The review flow over real HTTP: answers the gate held (its judge unreachable -> review) are pending for the asker,
listed for compliance, approved with edits or rejected with a reason as new linked records, and released to the
asker on the next poll; roles are enforced."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.types import AnswerRecord
from pipelines.answer.service import REVIEW_TEXT
from pipelines.store.sql_audit import SqlAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import CHAT, COMPLIANCE, bearer, key_settings
from tests.api.test_answer_api import assert_problem
from tests.conftest import RunningModelServer
from tests.prompt_copies import answer_prompts_at

QUESTIONS = ["How many days of paid annual leave do employees get?", "Who founded Northwind Robotics?"]


@pytest.mark.integration
def test_held_answers_are_reviewed_and_released_on_the_next_poll(
    live_api,
    sample_store: Path,
    smol_server: RunningModelServer,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = tmp_path / "store"
    shutil.copytree(sample_store, store, symlinks=True)
    api = live_api(
        settings_for(
            store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=2,  # two tokens of free text: answer v2 (a v3 JSON reply would not close)
            prompts={"directory": answer_prompts_at(tmp_path / "prompts", 2)},
            # Only the judge stage, and the judge's server is down: every answer is held for review.
            gate={"stages": ["judge"], "judge_base_url": closed_port_url(), "retries": 0},
            api={"keys": key_settings()},
            audit={"url": f"sqlite:///{tmp_path / 'audit.sqlite'}"},
        )
    )
    chat, compliance = bearer(CHAT), bearer(COMPLIANCE)
    held = []
    for question in QUESTIONS:
        response = api.client.post("/v1/answer", json={"question": question}, headers=chat)
        assert response.status_code == 200, response.text
        record = AnswerRecord.model_validate(response.json())
        assert record.provenance.gate.decision == "review" and record.answer == REVIEW_TEXT, record.provenance.gate
        held.append(record)
    first, second = held

    for record in held:
        status = api.client.get(f"/v1/answers/{record.answer_id}/status", headers=chat)
        assert status.status_code == 200 and status.json()["status"] == "pending", status.text
        assert status.json()["answer"] == REVIEW_TEXT

    queue = api.client.get("/v1/reviews", headers=compliance)
    assert queue.status_code == 200
    assert {a["answer_id"] for a in queue.json()["items"]} >= {first.answer_id, second.answer_id}

    # Roles: the asker cannot work the queue, compliance cannot poll as the asker, nobody anonymous.
    assert_problem(api.client.get("/v1/reviews", headers=chat), 403, "needs role 'compliance'")
    assert_problem(
        api.client.post(f"/v1/reviews/{first.answer_id}", json={"decision": "approve"}, headers=chat),
        403,
        "needs role 'compliance'",
    )
    assert_problem(api.client.get(f"/v1/answers/{first.answer_id}/status", headers=compliance), 403, "role 'chat'")
    assert_problem(api.client.get("/v1/reviews"), 401, "needs an API key")

    # Bad reviews are one clear error each.
    assert_problem(
        api.client.post(f"/v1/reviews/{second.answer_id}", json={"decision": "reject"}, headers=compliance),
        422,
        "a rejection needs a reason",
    )
    assert_problem(
        api.client.post(
            f"/v1/reviews/{first.answer_id}", json={"decision": "approve", "text": " "}, headers=compliance
        ),
        422,
        "edited text is empty",
    )
    assert_problem(
        api.client.post("/v1/reviews/no-such-answer", json={"decision": "approve"}, headers=compliance),
        404,
        "no-such-answer",
    )

    edited = "Employees get 28 days of paid annual leave per year [1]."
    approve = api.client.post(
        f"/v1/reviews/{first.answer_id}",
        json={"decision": "approve", "text": edited, "reason": "checked against the handbook"},
        headers=compliance,
    )
    assert approve.status_code == 201, approve.text
    assert approve.json()["decision"] == "corrected" and approve.json()["reviewer"] == "reviewer"
    reject = api.client.post(
        f"/v1/reviews/{second.answer_id}",
        json={"decision": "reject", "reason": "the draft does not name the founder"},
        headers=compliance,
    )
    assert reject.status_code == 201 and reject.json()["decision"] == "rejected"

    released = api.client.get(f"/v1/answers/{first.answer_id}/status", headers=chat).json()
    assert released["status"] == "approved" and released["answer"] == edited
    assert released["review"]["note"] == "checked against the handbook"
    rejected = api.client.get(f"/v1/answers/{second.answer_id}/status", headers=chat).json()
    assert rejected["status"] == "rejected" and "does not name the founder" in rejected["answer"]

    remaining = api.client.get("/v1/reviews", headers=compliance).json()["items"]
    assert not {a["answer_id"] for a in remaining} & {first.answer_id, second.answer_id}
    # The reviews are the audit store's linked records; the answer record itself never changed.
    linked = api.client.get(f"/v1/answers/{first.answer_id}/reviews", headers=compliance).json()
    assert [r["review_id"] for r in linked] == [approve.json()["review_id"]]
    original = api.client.get(f"/v1/answers/{first.answer_id}", headers=compliance).json()
    assert AnswerRecord.model_validate(original) == first

    # Only held answers go through the queue: an answer the gate abstained on is a 409, and its asker sees that.
    audit = SqlAuditStore(f"sqlite:///{tmp_path / 'audit.sqlite'}")
    gate = first.provenance.gate.model_copy(update={"decision": "abstained", "reason": "model abstained"})
    abstained = first.model_copy(
        update={"answer_id": "abstained-1", "provenance": first.provenance.model_copy(update={"gate": gate})}
    )
    audit.save(abstained)
    audit.close()
    assert_problem(
        api.client.post("/v1/reviews/abstained-1", json={"decision": "approve"}, headers=compliance),
        409,
        "not held for review",
    )
    assert api.client.get("/v1/answers/abstained-1/status", headers=chat).json()["status"] == "abstained"
