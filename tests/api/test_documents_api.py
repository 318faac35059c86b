"""Documents over HTTP: uploads and deletions run as background jobs through the ingestion code, over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.settings import Settings
from core.types import AnswerRecord
from pipelines.compose.jobs import document_jobs
from pipelines.jobs.documents import UploadArea
from pipelines.jobs.records import JobRecord, SqliteJobStore, now_iso
from pipelines.jobs.runner import JobRunner
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import ADMIN, CHAT, bearer, key_settings
from tests.api.test_answer_api import assert_problem
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer, free_port
from tests.pipelines.ingest.pdfmaker import bomb_bytes, token_bomb_bytes

ROOT = Path(__file__).resolve().parents[2]
FACT = "# Zephyr gate\n\nThe Zephyr-9 loading dock gate opens with access code 4471 on weekdays.\n"
H = bearer(ADMIN)


def store_copy(sample_store: Path, tmp_path: Path) -> Path:
    """A private copy of the shared sample store (jobs write into it)."""
    root = tmp_path / "store"
    shutil.copytree(sample_store, root, symlinks=True)
    return root


def admin_settings(
    store: Path, tmp_path: Path, base_url: str | None = None, model: str = "m", **extra: Any
) -> Settings:
    return settings_for(
        store,
        base_url or closed_port_url(),
        model,
        api={"keys": key_settings(), **extra.pop("api", {})},
        audit={"url": f"sqlite:///{tmp_path / 'audit.sqlite'}"},
        **extra,
    )


def wait_job(client: httpx.Client, location: str, timeout_s: float = 300.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(location, headers=H).json()
        if job["status"] in {"succeeded", "partial", "failed"}:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {location} did not finish: {job}")


def upload(client: httpx.Client, *files: tuple[str, bytes]) -> httpx.Response:
    return client.post("/v1/documents", files=[("files", (name, data)) for name, data in files], headers=H)


@pytest.mark.integration
def test_upload_job_then_answer_sees_the_new_document_then_delete(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    smol_server: RunningModelServer,
    tmp_path: Path,
) -> None:
    root = store_copy(sample_store, tmp_path)
    api = live_api(
        admin_settings(
            root,
            tmp_path,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"enabled": False},
        )
    )
    before = api.client.get("/v1/documents", headers=H).json()
    assert before["total"] == 6 and not any(d["uploaded"] for d in before["items"])

    accepted = upload(api.client, ("ops/zephyr-gate.md", FACT.encode()))
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert accepted.headers["location"] == f"/v1/jobs/{body['job_id']}" == body["location"]
    assert body["documents"] == ["ops/zephyr-gate.md"] and body["status"] == "queued"
    assert (root / "uploads" / "ops" / "zephyr-gate.md").read_text("utf-8") == FACT  # stored before the 202

    job = wait_job(api.client, body["location"])
    assert job["status"] == "succeeded" and job["error"] is None, job
    assert (
        job["report"]["documents_added"] == 1 and job["report"]["snapshot_id"] != job["report"]["previous_snapshot_id"]
    )
    assert job["progress"]["stages"]["files"]["done"] == job["progress"]["stages"]["files"]["total"] == 1
    assert job["progress"]["stages"]["chunks"] == {"done": 1, "total": 1}
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]

    doc = api.client.get("/v1/documents/ops/zephyr-gate.md", headers=H).json()
    assert doc["uploaded"] is True and doc["chunks"] == 1 and doc["title"] == "Zephyr gate" and doc["ingested_at"]
    listed = api.client.get("/v1/documents?limit=2&offset=0", headers=H).json()
    assert listed["total"] == 7 and len(listed["items"]) == 2
    assert [j["job_id"] for j in api.client.get("/v1/jobs", headers=H).json()["items"]] == [body["job_id"]]

    with SqliteChunkStore(root / "chunks.sqlite") as chunks:
        new_chunks = set(chunks.chunk_ids_for_document("ops/zephyr-gate.md"))
    answer = api.client.post(
        "/v1/answer",
        json={"question": "What is the access code of the Zephyr-9 loading dock gate?"},
        headers=bearer(CHAT),
    )
    record = AnswerRecord.model_validate(answer.json())
    assert new_chunks & {r.chunk_id for r in record.provenance.retrieval}, record.provenance.retrieval

    deleted = api.client.delete("/v1/documents/ops/zephyr-gate.md", headers=H)
    assert deleted.status_code == 202, deleted.text
    gone = wait_job(api.client, deleted.headers["location"])
    assert gone["status"] == "succeeded" and gone["kind"] == "delete" and gone["report"]["documents_deleted"] == 1
    assert not (root / "uploads" / "ops" / "zephyr-gate.md").exists()
    assert_problem(api.client.get("/v1/documents/ops/zephyr-gate.md", headers=H), 404, "zephyr-gate.md")
    assert api.client.get("/v1/documents", headers=H).json()["total"] == 6
    assert_problem(api.client.delete("/v1/documents/ops/zephyr-gate.md", headers=H), 404, "no document")


def test_uploads_are_validated_with_clear_problems(live_api, sample_store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = store_copy(sample_store, tmp_path)
    api = live_api(admin_settings(root, tmp_path, api={"max_upload_bytes": 20_000}))
    c = api.client
    assert_problem(upload(c, ("tool.exe", b"MZ\x00\x01")), 415, "unsupported type '.exe'")
    assert_problem(c.post("/v1/documents", content=b"hello", headers={**H, "content-type": "text/plain"}), 415, "text")
    assert_problem(upload(c, ("latin1.txt", "caf\xe9 au lait".encode("latin-1"))), 422, "not valid UTF-8")
    assert_problem(upload(c, ("blank.md", b"  \n")), 422, "empty")
    assert_problem(upload(c, ("fake.pdf", b"hello")), 422, "not a PDF")
    assert_problem(upload(c, ("bad.jsonl", b'{"id": "x"}\n')), 422, "'text'")
    assert_problem(upload(c, ("../escape.md", b"# Hi\n\nText.")), 422, "cannot be used as a document id")
    assert_problem(upload(c, (".hidden.md", b"# Hi\n\nText.")), 422, "cannot be used as a document id")
    assert_problem(upload(c, ("big.txt", b"x" * 30_000)), 413, "20000-byte limit")
    assert_problem(c.post("/v1/documents", data={"note": "x"}, headers=H), 415, "x-www-form-urlencoded")
    assert_problem(c.post("/v1/documents", files={"note": (None, "x")}, headers=H), 422, "'note' is not a file")
    assert_problem(c.post("/v1/documents", json={"documents": []}, headers=H), 422, "documents")
    assert_problem(
        c.post("/v1/documents", json={"documents": [{"id": "a/../b", "text": "t"}]}, headers=H), 422, "a/../b"
    )
    # one bad file refuses the whole upload: nothing is stored, no job is queued
    assert_problem(upload(c, ("good.md", b"# Good\n\nFine."), ("bad.txt", b"\xff\xfe")), 422, "bad.txt")
    assert not (root / "uploads" / "good.md").exists()
    assert c.get("/v1/jobs", headers=H).json()["total"] == 0
    assert_problem(c.get("/v1/jobs/nope", headers=H), 404, "no job 'nope'")
    assert_problem(c.get("/v1/documents/nope.md", headers=H), 404, "no document 'nope.md'")
    assert_problem(c.delete("/v1/documents/nope.md", headers=H), 404, "no document 'nope.md'")
    assert_problem(c.get("/v1/jobs?status=done", headers=H), 422, "status")

    accepted = c.post(
        "/v1/documents",
        json={"documents": [{"id": "faq/parking", "title": "Parking", "text": "Bays 1-9 are free."}]},
        headers=H,
    )
    assert accepted.status_code == 202 and accepted.json()["documents"] == ["faq/parking"], accepted.text
    job = wait_job(c, accepted.headers["location"])
    assert job["status"] == "succeeded", job
    doc = c.get("/v1/documents/faq/parking", headers=H).json()
    assert doc["title"] == "Parking" and doc["uploaded"] is True and doc["media_type"] == "text/plain"


def test_hostile_pdfs_are_refused_with_422_problems_and_no_library_text(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    tmp_path: Path,
) -> None:
    root = store_copy(sample_store, tmp_path)
    c = live_api(admin_settings(root, tmp_path)).client
    for name, data in [("bomb.pdf", bomb_bytes()), ("tokens.pdf", token_bomb_bytes()), ("cut.pdf", b"%PDF-1.4\n1 0")]:
        response = upload(c, ("good.md", b"# Good\n\nFine."), (name, data))
        assert_problem(response, 422, f"{name!r} cannot be ingested")
        detail = response.json()["detail"]  # our words: no library exception, no server path
        assert "Error" not in detail and "pypdf" not in detail.lower() and str(root) not in response.text, detail
    assert "decompression bomb" in upload(c, ("bomb.pdf", bomb_bytes())).json()["detail"]
    assert not (root / "uploads" / "good.md").exists()
    assert c.get("/v1/jobs", headers=H).json()["total"] == 0


def _hold_lock(store: Path) -> subprocess.Popen[str]:
    code = (
        "import sys, time; from pathlib import Path; from pipelines.ingest.locking import IngestLock; "
        "lock = IngestLock(Path(sys.argv[1]) / 'ingest.lock', purpose='ingest'); lock.acquire(); "
        "print('held', flush=True); time.sleep(120)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(store)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_job_waits_for_a_concurrent_cli_run_then_proceeds(live_api, sample_store: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = store_copy(sample_store, tmp_path)
    holder = _hold_lock(root)
    try:
        api = live_api(admin_settings(root, tmp_path, jobs={"lock_wait_s": 120}))
        location = upload(api.client, ("canteen.md", b"# Canteen\n\nLunch is served from 12:00.")).headers["location"]
        deadline = time.monotonic() + 60
        while (job := api.client.get(location, headers=H).json())["progress"]["stage"] != "waiting_for_lock":
            assert time.monotonic() < deadline and job["status"] in {"queued", "running"}, job
            time.sleep(0.1)
        assert job["status"] == "running" and f"pid {holder.pid}" in job["progress"]["detail"], job
        first = api.client.delete("/v1/documents/employee-handbook.md", headers=H)
        again = api.client.delete("/v1/documents/employee-handbook.md", headers=H)
        assert first.status_code == again.status_code == 202 and first.json() == again.json()  # one queued job
    finally:
        holder.kill()
        holder.wait()
    job = wait_job(api.client, location)
    assert job["status"] == "succeeded" and job["report"]["documents_added"] == 1, job
    deleted = wait_job(api.client, first.headers["location"])
    assert deleted["status"] == "succeeded" and deleted["report"]["deleted_documents"] == ["employee-handbook.md"]
    assert api.client.get("/v1/jobs", headers=H).json()["total"] == 2


def test_job_gives_up_on_a_held_lock_with_a_clear_message(sample_store: Path, tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    root = store_copy(sample_store, tmp_path)
    UploadArea(root).accept_texts([("note", "", "A short note about the canteen.")])
    holder = _hold_lock(root)
    try:
        settings = admin_settings(root, tmp_path, jobs={"lock_wait_s": 0.5})
        jobs = SqliteJobStore(tmp_path / "jobs.sqlite")
        record = JobRecord(job_id="j1", kind="ingest", documents=["note"], created_at=now_iso())
        runner = JobRunner(jobs, document_jobs(settings, lambda: embedder, poll_s=0.1))
        runner._run(record)
    finally:
        holder.kill()
        holder.wait()
    stored = jobs.get("j1")
    assert stored.status == "failed" and stored.finished_at, stored
    assert "gave up after waiting 0.5 s for the store lock" in (stored.error or "")
    assert f"pid {holder.pid}" in (stored.error or "") and "submit the job again" in (stored.error or "")


def test_a_crash_mid_job_is_failed_at_restart_and_records_survive(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    tmp_path: Path,
) -> None:
    """``kgrag serve`` is killed (SIGKILL) with one job running and one queued; the next API marks both failed."""
    root = store_copy(sample_store, tmp_path)
    settings = admin_settings(root, tmp_path)
    first = live_api(settings)
    done = wait_job(first.client, upload(first.client, ("a.txt", b"Alpha text.")).headers["location"])
    assert done["status"] == "succeeded"

    holder = _hold_lock(root)  # keeps the served API's next job running (waiting for the lock)
    port = free_port()
    env = {
        **os.environ,
        "KGRAG_API__KEYS": json.dumps(key_settings()),
        "KGRAG_LLM_BASE_URL": closed_port_url(),
        "KGRAG_AUDIT__URL": f"sqlite:///{tmp_path / 'audit.sqlite'}",
    }
    kgrag = str(Path(sys.executable).parent / "kgrag")
    log = (tmp_path / "serve.log").open("wb")
    served = subprocess.Popen(
        [kgrag, "serve", "--store", str(root), "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 180
        while True:
            assert served.poll() is None and time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            try:
                if client.get("/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        running = upload(client, ("b.txt", b"Beta text.")).json()["location"]
        queued = upload(client, ("c.txt", b"Gamma text.")).json()["location"]
        while client.get(running, headers=H).json()["progress"]["stage"] != "waiting_for_lock":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        served.kill()  # SIGKILL: no shutdown code runs
        served.wait()
        log.close()
        holder.kill()
        holder.wait()
    second = live_api(settings)
    assert second.client.get(f"/v1/jobs/{done['job_id']}", headers=H).json() == done
    for location, was in ((running, "running"), (queued, "queued")):
        job = second.client.get(location, headers=H).json()
        assert job["status"] == "failed" and "interrupted" in job["error"] and f"was {was}" in job["error"], job
    assert second.client.get("/v1/jobs?status=failed", headers=H).json()["total"] == 2
    # their files were stored before the 202: the next upload job ingests them too
    after = wait_job(second.client, upload(second.client, ("d.txt", b"Delta text.")).headers["location"])
    assert after["status"] == "succeeded" and after["report"]["documents_added"] == 3, after["report"]


def test_first_upload_creates_the_store_and_the_api_starts_serving_it(live_api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    api = live_api(admin_settings(tmp_path / "new-store", tmp_path))
    assert api.client.get("/healthz").status_code == 503
    assert api.client.get("/v1/documents", headers=H).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert_problem(api.client.post("/v1/answer", json={"question": "Who?"}, headers=H), 503, "no kgrag store")
    job = wait_job(api.client, upload(api.client, ("first.md", b"# First\n\nThe first document.")).headers["location"])
    assert job["status"] == "succeeded" and job["report"]["documents_added"] == 1, job
    health = api.client.get("/healthz").json()
    assert health["documents"] == 1 and health["status"] == "degraded"  # store open; the model is not running
    assert_problem(api.client.post("/v1/answer", json={"question": "Who?"}, headers=H), 503, "not reachable")
