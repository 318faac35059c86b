"""The answer API over real HTTP, on a store ingested from data/ with the real embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import AnswerRecord
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.api.conftest import closed_port_url, settings_for
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, fragment: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and fragment in body["detail"], body
    assert "Traceback" not in response.text


def test_missing_store_is_a_503_problem(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(tmp_path / "nothing-here", closed_port_url(), "m"))
    assert_problem(api.client.post("/v1/answer", json={"question": "Who?"}), 503, "no kgrag store")
    health = api.client.get("/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unavailable"


def test_bad_requests_are_422_problems(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m"))
    assert_problem(api.client.post("/v1/answer", json={"question": "   "}), 422, "question is empty")
    assert_problem(api.client.post("/v1/answer", json={"question": ""}), 422, "question")
    assert_problem(api.client.post("/v1/answer", json={}), 422, "question")
    assert_problem(
        api.client.post("/v1/answer", content=b"{not json", headers={"content-type": "application/json"}),
        422,
        "JSON",
    )
    assert_problem(api.client.get("/v1/answers/does-not-exist"), 404, "does-not-exist")
    assert api.client.get("/docs").status_code == 200
    assert "/v1/answer" in api.client.get("/openapi.json").json()["paths"]


def test_unreachable_model_is_a_503_problem(live_api, sample_store: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(settings_for(sample_store, closed_port_url(), "m"))
    health = api.client.get("/healthz").json()
    assert health["status"] == "degraded" and health["model_reachable"] is False and health["documents"] == 6
    response = api.client.post("/v1/answer", json={"question": "Who founded Northwind Robotics?"})
    assert_problem(response, 503, "not reachable")
    assert "kgrag model serve" in response.json()["hint"]


@pytest.mark.integration
def test_plumbing_end_to_end_with_smollm(
    live_api,
    sample_store: Path,  # type: ignore[no-untyped-def]
    smol_server: RunningModelServer,
) -> None:
    """The whole path with the tiny model: every step runs, the record is stored before it is returned."""
    api = live_api(
        settings_for(
            sample_store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"timeout_s": 120, "retries": 0},
            # Two drafts and their claim verdicts on a busy 2-core machine: the plumbing, not the deadline, is tested.
            api={"request_timeout_s": 600},
        )
    )
    response = api.client.post("/v1/answer", json={"question": "How many days of paid annual leave do employees get?"})
    assert response.status_code == 200, response.text
    record = AnswerRecord.model_validate(response.json())
    assert [t.step for t in record.provenance.trace if t.step in {"retrieve", "graph_context"}]
    steps = [t.step for t in record.provenance.trace]
    assert steps[steps.index("assemble") :][:3] == ["assemble", "generate", "gate"]
    gate = record.provenance.gate
    assert gate.stages, "every gate stage is recorded"
    if gate.retried:  # the cascade failed the first draft: regenerated once with the strict prompt, re-scored
        assert steps[-3:] == ["assemble_strict", "generate_strict", "gate_strict"]
        assert gate.first_attempt is not None and gate.first_attempt.decision != "released"
    else:
        assert steps[-3:] == ["assemble", "generate", "gate"]
    assert record.provenance.model == smol_server.name
    expected_prompt = "answer_strict" if gate.retried else "answer"  # the released text's prompt, never a label
    assert record.provenance.prompt.name == expected_prompt and record.provenance.prompt.version >= 1
    assert record.provenance.retrieval and record.provenance.draft
    assert record.provenance.gate.decision in {"released", "abstained", "review"}
    stored = api.client.get(f"/v1/answers/{record.answer_id}")
    assert stored.status_code == 200 and stored.json() == response.json()


@pytest.mark.slow
@pytest.mark.integration
def test_answer_with_qwen_cites_the_right_text(
    live_api,
    sample_store: Path,  # type: ignore[no-untyped-def]
    qwen_server: RunningModelServer,
) -> None:
    api = live_api(settings_for(sample_store, qwen_server.base_url, qwen_server.name))
    response = api.client.post("/v1/answer", json={"question": "How many days of paid annual leave do employees get?"})
    assert response.status_code == 200, response.text
    body = response.json()
    record = AnswerRecord.model_validate(body)
    gate = record.provenance.gate
    assert gate.decision == "released", gate
    assert gate.scores.citation_coverage is not None and gate.stages, gate
    judged = [s for s in gate.stages if s.name == "judge" and s.outcome != "skipped"]
    assert not judged or gate.scores.faithfulness is not None, "the judge ran only when the cheap stages were unsure"
    assert "28" in record.answer
    assert record.citations, "a released answer cites its passages"
    chunks = SqliteChunkStore(sample_store / "chunks.sqlite")
    for citation in record.citations:
        document = chunks.get_document(citation.document_id)
        assert document is not None and document.text[citation.start : citation.end] == citation.text
    assert any("28 days" in c.text for c in record.citations)
    for fact in record.facts:
        assert chunks.get_chunk(fact.chunk_id) is not None
    assert api.client.get(f"/v1/answers/{record.answer_id}").json() == body


@pytest.mark.slow
@pytest.mark.integration
def test_gate_abstains_when_the_corpus_cannot_answer(
    live_api,
    sample_store: Path,  # type: ignore[no-untyped-def]
    qwen_server: RunningModelServer,
) -> None:
    api = live_api(settings_for(sample_store, qwen_server.base_url, qwen_server.name))
    response = api.client.post("/v1/answer", json={"question": "What was the population of Lagos in 1950?"})
    assert response.status_code == 200, response.text
    record = AnswerRecord.model_validate(response.json())
    assert record.provenance.gate.decision == "abstained", record.provenance.gate
    assert record.answer == "The documents do not answer this question."
    assert record.citations == []


def test_api_switches_to_the_snapshot_ingestion_published(live_api, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    """A running API notices a re-index (new snapshot) on its next request, without a restart."""
    import shutil

    from core.settings import load_settings
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.stores import open_store
    from tests.conftest import DATA_DIR

    src = tmp_path / "src"
    shutil.copytree(DATA_DIR, src)
    root = tmp_path / "store"
    settings = load_settings(store_dir=root)
    build_ingestor(settings, open_store(settings, embedder, create=True), embedder).ingest([src])
    api = live_api(settings_for(root, closed_port_url(), "m"))
    assert api.client.get("/healthz").json()["documents"] == 6
    (src / "canteen.md").write_text("# Canteen\n\nThe canteen serves lunch from 12:00 to 14:00.\n", "utf-8")
    build_ingestor(settings, open_store(settings, embedder, create=True), embedder).ingest([src])
    assert api.client.get("/healthz").json()["documents"] == 7
