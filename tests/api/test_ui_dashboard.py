"""The KPI dashboard at /ui/dashboard in a real headless Chromium (Debian's chromium driven by Playwright), over a
store whose audit file holds real answer records spread over five days: what the page draws is checked against the
JSON of ``GET /v1/kpis`` (bars, points, rows), and a screenshot is saved under test-artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.ops.kpis import KpiReport
from pipelines.store.layout import StoreLayout
from pipelines.store.sql_audit import SqliteAuditStore
from tests.api.conftest import closed_port_url, settings_for
from tests.api.keys import COMPLIANCE, bearer, key_settings
from tests.api.test_documents_api import store_copy
from tests.api.test_ui import ARTIFACTS, CHROMIUM_ARGS
from tests.pipelines.ops.answers import Made, day, redated, with_entailment

DECISIONS = ("released", "review", "abstained")


def five_days(made: Made) -> list:  # type: ignore[type-arg]
    """Released answers judged well at first; later days abstain and hold more, and are judged worse."""
    good, weak = with_entailment(made.released, 0.92), with_entailment(made.released, 0.61)
    plan = {
        1: [good] * 4,
        2: [good] * 3 + [made.abstained],
        4: [weak, made.abstained, made.held, made.abstained],
        5: [made.abstained, weak, made.held],
    }
    return [redated(r, day(d, 8 + i)) for d, records in plan.items() for i, r in enumerate(records)]


@pytest.mark.integration
def test_dashboard_draws_the_kpis_in_headless_chromium(  # type: ignore[no-untyped-def]
    live_api, answer_records: Made, sample_store: Path, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("Debian's chromium is not installed: run `apt-get install -y chromium` (as .ci/run does)")
    store = store_copy(sample_store, tmp_path)
    audit = SqliteAuditStore(StoreLayout(store).audit)
    records = five_days(answer_records)
    for r in records:
        audit.save(r)
    held = next(r for r in records if r.provenance.gate.decision == "review")
    audit.add_review(held.answer_id, reviewer="ann", decision="approved", note="", corrected_answer=None)
    audit.close()
    api = live_api(
        settings_for(
            store,
            closed_port_url(),
            "m",
            api={"keys": key_settings()},
            drift={"window": 6, "baseline": 9, "min_answers": 3},
        )
    )
    response = api.client.get("/v1/kpis?from=2026-01-01&to=2026-01-05", headers=bearer(COMPLIANCE))
    assert response.status_code == 200, response.text
    report = KpiReport.model_validate(response.json())
    assert report.answers == len(records) and len(report.daily) == 5 and report.drift.drifting

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(api.base_url) else outside.append(r.url))
        page.goto(f"{api.base_url}/ui/dashboard")
        page.fill("#key", COMPLIANCE)
        page.dispatch_event("#key", "change")
        page.fill("#from", "2026-01-01")
        page.fill("#to", "2026-01-05")
        page.click("#period button[type=submit]")
        page.wait_for_selector("body[data-loaded]")

        # answers per day: one group per day (the empty third day included), one bar per decision with answers
        days = page.eval_on_selector_all(
            "#daily g.day",
            "gs => gs.map(g => ({day: g.dataset.day, bars: [...g.querySelectorAll('rect.bar')].map(r => "
            "({kind: r.classList[1], count: +r.dataset.count, height: +r.getAttribute('height')}))}))",
        )
        assert [d["day"] for d in days] == [d.day for d in report.daily]
        per_answer = set()
        for drawn, data in zip(days, report.daily, strict=True):
            expected = [(k, getattr(data, k)) for k in DECISIONS if getattr(data, k)]
            assert [(b["kind"], b["count"]) for b in drawn["bars"]] == expected, drawn
            per_answer |= {round(b["height"] / b["count"], 6) for b in drawn["bars"]}
        assert len(per_answer) == 1, f"bar heights are proportional to the counts: {per_answer}"
        assert page.locator("#daily rect.bar").count() == sum(
            1 for d in report.daily for k in DECISIONS if getattr(d, k)
        )

        # release rate: one point per day with answers
        points = page.eval_on_selector_all("#rate circle", "cs => cs.map(c => [c.dataset.day, +c.dataset.rate])")
        assert points == [[d.day, d.release_rate] for d in report.daily if d.answers]

        # latency: a p50 and a p95 bar per workflow step
        steps = page.eval_on_selector_all(
            "#latency g.step",
            "gs => gs.map(g => [g.dataset.step, +g.querySelector('rect.p50').dataset.value, "
            "+g.querySelector('rect.p95').dataset.value])",
        )
        assert steps == [[s, p.p50, p.p95] for s, p in report.latency_s.items()]

        # drift: a table row per KPI, the drifting ones marked; paired bars where both windows have a value
        rows = page.eval_on_selector_all("#drift tbody tr", "rs => rs.map(r => [r.dataset.kpi, r.className])")
        assert [k for k, _ in rows] == [k.kpi for k in report.drift.kpis]
        assert [k for k, cls in rows if cls == "drifting"] == report.drift.drifting
        pairs = page.eval_on_selector_all("#drift-chart g.kpi", "gs => gs.map(g => g.dataset.kpi)")
        assert pairs == [k.kpi for k in report.drift.kpis if k.current is not None and k.baseline is not None]
        assert "mean_entailment" in pairs

        assert page.locator("#abstained li").count() == len(report.top_abstained) == 1
        assert page.inner_text("#tiles .tile[data-tile='answers'] b") == str(report.answers)
        turnaround = page.inner_text("#tiles .tile[data-tile='review turnaround p50'] small")
        assert "1 reviewed, 1 pending" in turnaround
        tokens = page.inner_text("#tiles .tile[data-tile='tokens/answer'] small")
        judge = report.tokens.judge_prompt + report.tokens.judge_completion
        assert judge > 0 and f"{report.tokens.completion} completion + {judge} judge" in tokens
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-dashboard.png"), full_page=True)

        page.fill("#key", "wrong")
        page.dispatch_event("#key", "change")
        page.click("#period button[type=submit]")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('401')")
        browser.close()
    assert outside == [], f"the page fetched outside the API: {outside}"
    assert (ARTIFACTS / "ui-dashboard.png").stat().st_size > 10_000
