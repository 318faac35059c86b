"""``kgrag report`` in a subprocess over a store whose audit file holds real answer records: rich tables, the JSON
report (the same as the KPI code computes in-process), and one clear red line for bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from core.settings import DriftSettings, KpiSettings
from pipelines.ops.kpis import KpiReport, build_report
from pipelines.ops.period import parse_period
from pipelines.store.layout import StoreLayout
from pipelines.store.sql_audit import SqliteAuditStore
from tests.pipelines.cli.test_main import assert_clear_error, kgrag
from tests.pipelines.ops.answers import Made, day, redated, write


def store_with_answers(root: Path, made: Made, sample_store: Path) -> Path:
    """A store directory with an audit file of ten real answers over three January days, and the sample store's run
    reports."""
    layout = StoreLayout(root)
    shutil.copytree(StoreLayout(sample_store).reports, layout.reports)
    audit = SqliteAuditStore(layout.audit)
    write(
        audit,
        [redated(made.released, day(1, h)) for h in range(8, 12)]
        + [redated(made.abstained, day(2, h)) for h in range(8, 11)]
        + [redated(made.held, day(3, h)) for h in range(8, 11)],
    )
    audit.close()
    return root


def test_report_prints_tables_and_writes_the_json(answer_records: Made, sample_store: Path, tmp_path: Path) -> None:
    store = store_with_answers(tmp_path / "store", answer_records, sample_store)
    out = tmp_path / "kpis.json"
    proc = kgrag("report", "--store", str(store), "--from", "2026-01-02", "--to", "2026-01-03", "--json", str(out))
    assert proc.returncode == 0, proc.stderr
    for title in ("latency by workflow step", "review", "drift: newest", "most often abstained", "ingestion runs"):
        assert title in proc.stdout, proc.stdout
    assert "Who founded Northwind Robotics?" in proc.stdout
    written = KpiReport.model_validate_json(out.read_text("utf-8"))
    assert written.answers == 6 and written.decisions == {"released": 0, "abstained": 3, "review": 3}
    audit = SqliteAuditStore(StoreLayout(store).audit)
    expected = build_report(
        audit,
        StoreLayout(store).reports,
        parse_period("2026-01-02", "2026-01-03"),
        kpis=KpiSettings(),
        drift=DriftSettings(),
    )
    audit.close()
    assert written.model_copy(update={"generated_at": ""}) == expected.model_copy(update={"generated_at": ""})

    whole = kgrag("report", "--store", str(store), "--json", "-")
    assert whole.returncode == 0, whole.stderr
    report = json.loads(whole.stdout)
    assert report["answers"] == 10 and report["ingestion"]["runs"] == 1, "stdout holds the JSON only"
    assert report["ingestion"]["prompt_tokens"] == 0, "the sample store was ingested offline"


def test_bad_input_is_one_red_line(answer_records: Made, sample_store: Path, tmp_path: Path) -> None:
    store = store_with_answers(tmp_path / "store", answer_records, sample_store)
    assert_clear_error(kgrag("report", "--store", str(store), "--from", "2026-02-30"), 2, "is not an ISO date")
    assert_clear_error(kgrag("report", "--store", str(store), "--to", "last week"), 2, "to='last week'")
    assert_clear_error(
        kgrag("report", "--store", str(store), "--from", "2026-01-05", "--to", "2026-01-01"), 2, "is not before"
    )
    missing = tmp_path / "no-such-store"
    assert_clear_error(kgrag("report", "--store", str(missing)), 1, "no answers recorded")
    assert not missing.exists(), "a report never creates a store"
    assert_clear_error(
        kgrag("report", "--store", str(store), "--json", str(tmp_path / "no" / "dir" / "k.json")), 2, "cannot write"
    )
