"""KPIs over real HTTP: ``GET /v1/kpis`` over a store whose audit file holds real answer records, the drift watch
seeded from it in ``/metrics`` and ``/healthz``, the serving snapshot's age, and a document job's ingestion counts."""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path

from core.settings import DriftSettings
from pipelines.ops.kpis import KpiReport, build_report
from pipelines.ops.period import parse_period
from pipelines.store.layout import StoreLayout
from pipelines.store.sql_audit import SqliteAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import ADMIN, CHAT, COMPLIANCE, bearer, key_settings
from tests.api.test_answer_api import assert_problem
from tests.api.test_documents_api import FACT, store_copy, upload, wait_job
from tests.api.test_metrics import samples, value
from tests.pipelines.ops.answers import Made
from tests.pipelines.ops.test_drift import series

DRIFT = {"window": 10, "baseline": 30, "min_answers": 10}


def test_kpis_drift_and_snapshot_age_over_http(  # type: ignore[no-untyped-def]
    live_api, answer_records: Made, sample_store: Path, tmp_path: Path
) -> None:
    store = store_copy(sample_store, tmp_path)
    # Only this test's answers: other tests may have answered over the shared sample store before this one.
    StoreLayout(store).audit.unlink(missing_ok=True)
    audit = SqliteAuditStore(StoreLayout(store).audit)
    for record in series(answer_records, 30, 10):  # released answers, then half of the newest ten abstained
        audit.save(record)
    api = live_api(settings_for(store, closed_port_url(), "m", api={"keys": key_settings()}, drift=DRIFT))
    c = api.client

    got = c.get("/v1/kpis", params={"from": "2026-01-01", "to": "2026-01-02"}, headers=bearer(COMPLIANCE))
    assert got.status_code == 200, got.text
    report = KpiReport.model_validate(got.json())
    expected = build_report(
        audit,
        StoreLayout(store).reports,
        parse_period("2026-01-01", "2026-01-02"),
        kpis=api.settings.kpis,
        drift=DriftSettings(**DRIFT),
    )
    audit.close()
    assert report.model_copy(update={"generated_at": ""}) == expected.model_copy(update={"generated_at": ""})
    assert report.answers == 40 and report.drift.drifting == ["release_rate", "abstain_rate", "facts_share"]
    assert c.get("/v1/kpis", headers=bearer(ADMIN)).json()["answers"] == 40, "admin may read them too"

    # hostile input: problem documents, never a 500
    assert_problem(c.get("/v1/kpis?from=2026-02-30", headers=bearer(COMPLIANCE)), 422, "is not an ISO date")
    assert_problem(c.get("/v1/kpis?from=2026-01-05&to=2026-01-01", headers=bearer(COMPLIANCE)), 422, "is not before")
    assert c.get("/v1/kpis?to=" + "9" * 200, headers=bearer(COMPLIANCE)).status_code == 422
    assert_problem(c.get("/v1/kpis", headers=bearer(CHAT)), 403, "needs role 'compliance'")
    assert_problem(c.get("/v1/kpis"), 401, "needs an API key")

    # the API's drift watch was seeded from the audit store at start-up
    scrape = samples(c.get("/metrics", headers=bearer(ADMIN)).text)
    rows = {r.kpi: r for r in report.drift.kpis}
    for kpi in ("release_rate", "abstain_rate", "facts_share", "retrieval_top_score"):
        assert value(scrape, "kgrag_kpi_current", kpi=kpi) == rows[kpi].current
        assert value(scrape, "kgrag_kpi_baseline", kpi=kpi) == rows[kpi].baseline
    assert value(scrape, "kgrag_kpi_drifting", kpi="release_rate") == 1
    assert value(scrape, "kgrag_kpi_drifting", kpi="review_rate") == 0
    assert ("kgrag_kpi_current", (("kpi", "mean_faithfulness"),)) not in scrape, "no value: no sample"
    assert value(scrape, "kgrag_kpi_window_answers", window="current") == 10
    assert value(scrape, "kgrag_kpi_window_answers", window="baseline") == 30
    manifest = json.loads((store / "current" / "manifest.json").read_text("utf-8"))
    published = datetime.fromisoformat(manifest["created_at"]).timestamp()
    age = value(scrape, "kgrag_snapshot_age_seconds")
    assert age > 0 and abs(age - (time.time() - published)) < 60

    health = c.get("/healthz").json()
    assert health["drift"]["drifting"] == ["release_rate", "abstain_rate", "facts_share"]
    assert health["drift"]["current_answers"] == 10


def test_a_document_job_is_counted_in_the_ingestion_families(  # type: ignore[no-untyped-def]
    live_api, sample_store: Path, tmp_path: Path
) -> None:
    store = store_copy(sample_store, tmp_path)
    api = live_api(settings_for(store, closed_port_url(), "m", api={"keys": key_settings()}))
    before = samples(api.client.get("/metrics", headers=bearer(ADMIN)).text)
    old_age = value(before, "kgrag_snapshot_age_seconds")
    accepted = upload(api.client, ("zephyr.md", FACT.encode()))
    assert accepted.status_code == 202, accepted.text
    job = wait_job(api.client, accepted.headers["location"])
    assert job["status"] == "succeeded", job
    run = job["report"]
    api.client.get("/healthz")  # a request: the API switches to the new snapshot
    scrape = samples(api.client.get("/metrics", headers=bearer(ADMIN)).text)
    assert value(scrape, "kgrag_ingest_runs_total", kind="ingest", status="succeeded") == 1
    assert value(scrape, "kgrag_ingest_documents_total", change="added") == run["documents_added"] == 1
    assert value(scrape, "kgrag_ingest_chunks_total", kind="embedded") == run["chunks_embedded"] > 0
    assert value(scrape, "kgrag_ingest_chunks_total", kind="extracted") == run["chunks_extracted"]
    assert value(scrape, "kgrag_ingest_failures_total", kind="extraction") == 0
    assert value(scrape, "kgrag_ingest_tokens_total", kind="prompt") == 0, "the offline extractor costs none"
    assert value(scrape, "kgrag_ingest_run_duration_seconds_count") == 1
    assert value(scrape, "kgrag_snapshot_age_seconds") < old_age, "the new snapshot is younger"
