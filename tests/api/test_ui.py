"""The reviewer page at /ui in a real headless Chromium (Debian's chromium driven by Playwright), on an answer the
1.5B model gave with citations: search, open it, click each citation marker through to its source passage, check the
highlighted span, click graph nodes; a screenshot is saved under test-artifacts/."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from core.types import AnswerRecord
from tests.api.conftest import settings_for
from tests.api.keys import CHAT, COMPLIANCE, bearer, key_settings
from tests.conftest import RunningModelServer

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--headless"]


@pytest.mark.slow
@pytest.mark.integration
def test_ui_in_headless_chromium(
    live_api,  # type: ignore[no-untyped-def]
    sample_store: Path,
    qwen_server: RunningModelServer,
    tmp_path: Path,
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.fail("Debian's chromium is not installed: run `apt-get install -y chromium` (as .ci/run does)")
    api = live_api(
        settings_for(
            sample_store,
            qwen_server.base_url,
            qwen_server.name,
            gate={"enabled": False},
            api={"keys": key_settings()},
            audit={"url": f"sqlite:///{tmp_path / 'audit.sqlite'}"},
        )
    )
    response = api.client.post(
        "/v1/answer", json={"question": "How many days of paid annual leave do employees get?"}, headers=bearer(CHAT)
    )
    assert response.status_code == 200, response.text
    record = AnswerRecord.model_validate(response.json())
    assert record.provenance.gate.decision == "released" and record.citations, record
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", record.answer)]
    assert markers, record.answer

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        outside: list[str] = []
        page.on("request", lambda r: None if r.url.startswith(api.base_url) else outside.append(r.url))
        page.goto(f"{api.base_url}/ui")
        page.fill("#key", COMPLIANCE)
        page.dispatch_event("#key", "change")
        page.fill("#q", "annual leave")
        page.click("#search button[type=submit]")
        page.click(f"#results li[data-answer-id='{record.answer_id}']")
        page.wait_for_selector("#graph g.node")
        assert page.inner_text("#question") == record.question
        assert page.inner_text("#answer-text") == record.answer
        for i, n in enumerate(markers):
            page.click(f"#answer-text .marker >> nth={i}")
            citation = record.citations[n - 1]
            assert page.inner_text("#source-text mark.cite") == citation.text
            assert f"{citation.document_id}:{citation.start}-{citation.end}" in page.inner_text("#source-title")
        page.click(f"#graph g.node[data-id='passage:{record.answer_id}:1']")
        assert page.inner_text("#node-title").startswith("passage:")
        assert page.inner_text("#source-text mark.cite") == record.citations[0].text
        page.click("#graph g.node.document_version >> nth=0")
        assert page.inner_text("#node-title").startswith("document_version:")
        assert "sha256" in page.inner_text("#node-meta")
        page.click(f"#graph g.node[data-id='passage:{record.answer_id}:1']")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-provenance.png"), full_page=True)
        page.fill("#key", "wrong")
        page.dispatch_event("#key", "change")
        page.click("#queue")
        page.wait_for_function("document.getElementById('status').textContent.startsWith('401')")
        browser.close()
    assert outside == [], f"the page fetched outside the API: {outside}"
    assert (ARTIFACTS / "ui-provenance.png").stat().st_size > 10_000
