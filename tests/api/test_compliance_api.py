"""Compliance endpoints over real HTTP: listing and search, the provenance graph (JSON, GraphML) built from the
answer-time snapshot, reviews as linked records, and the CSV export."""

from __future__ import annotations

import csv
import io
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

from core.types import AnswerRecord
from pipelines.answer.provenance import build_graph
from pipelines.store.sql_audit import SqliteAuditStore
from tests.api.conftest import settings_for
from tests.api.keys import CHAT, COMPLIANCE, bearer, key_settings
from tests.api.test_answer_api import assert_problem
from tests.conftest import ANSWER_V3_MAX_TOKENS, RunningModelServer

pytestmark = pytest.mark.integration
QUESTIONS = ["How many days of paid annual leave do employees get?", "Who founded Northwind Robotics?"]


@dataclass
class Answered:
    api: object
    audit: Path
    records: list[AnswerRecord]


@pytest.fixture
def answered(live_api, sample_store: Path, smol_server: RunningModelServer, tmp_path: Path) -> Iterator[Answered]:  # type: ignore[no-untyped-def]
    store = tmp_path / "store"
    shutil.copytree(sample_store, store, symlinks=True)
    audit = tmp_path / "audit.sqlite"
    api = live_api(
        settings_for(
            store,
            smol_server.base_url,
            smol_server.name,
            llm_max_tokens=ANSWER_V3_MAX_TOKENS,
            gate={"enabled": False},
            api={"keys": key_settings()},
            audit={"url": f"sqlite:///{audit}"},
        )
    )
    records = []
    for q in QUESTIONS:
        response = api.client.post("/v1/answer", json={"question": q}, headers=bearer(CHAT))
        assert response.status_code == 200, response.text
        records.append(AnswerRecord.model_validate(response.json()))
    yield Answered(api, audit, records)


def test_list_provenance_reviews_export_and_as_of(answered: Answered) -> None:
    api, h = answered.api, bearer(COMPLIANCE)
    first, second = answered.records
    listed = api.client.get("/v1/answers", headers=h).json()["items"]  # type: ignore[attr-defined]
    assert [a["answer_id"] for a in listed] == [second.answer_id, first.answer_id]
    found = api.client.get("/v1/answers", params={"q": "northwind ROBOTICS"}, headers=h).json()["items"]  # type: ignore[attr-defined]
    # The second question names the company; the first answer or its citations may too (the model's words are not
    # fixed). Only question, answer and citation texts are searched, never the provenance or the JSON keys.
    newest_first = list(reversed(answered.records))
    mentioning = [
        r.answer_id
        for r in newest_first
        if "northwind robotics" in "\n".join([r.question, r.answer, *(c.text for c in r.citations)]).lower()
    ]
    assert second.answer_id in mentioning
    assert [a["answer_id"] for a in found] == mentioning
    nowhere = api.client.get("/v1/answers", params={"q": "zebra-quartz-0"}, headers=h).json()["items"]  # type: ignore[attr-defined]
    assert nowhere == []
    day = first.created_at[:10]
    assert len(api.client.get("/v1/answers", params={"from": day, "to": day}, headers=h).json()["items"]) == 2  # type: ignore[attr-defined]
    assert api.client.get("/v1/answers", params={"to": "2000-01-01"}, headers=h).json()["items"] == []  # type: ignore[attr-defined]
    for decision in ("released", "review", "abstained"):
        got = api.client.get("/v1/answers", params={"decision": decision}, headers=h).json()["items"]  # type: ignore[attr-defined]
        want = [r.answer_id for r in reversed(answered.records) if r.provenance.gate.decision == decision]
        assert [a["answer_id"] for a in got] == want
    queue = api.client.get("/v1/review-queue", headers=h).json()["items"]  # type: ignore[attr-defined]
    assert [a["answer_id"] for a in queue] == [
        r.answer_id for r in reversed(answered.records) if r.provenance.gate.decision == "review"
    ]

    graph = api.client.get(f"/v1/answers/{first.answer_id}/provenance", headers=h).json()  # type: ignore[attr-defined]
    nodes = {n["id"]: n for n in graph["nodes"]}
    kinds = {n["kind"] for n in graph["nodes"]}
    assert {"answer", "workflow_run", "workflow", "model", "prompt", "gate", "claim", "chunk"} <= kinds
    assert {"document_version", "ingestion"} <= kinds
    rel = {(e["source"].split(":")[0], e["relation"], e["target"].split(":")[0]) for e in graph["edges"]}
    assert ("answer", "wasGeneratedBy", "run") in rel and ("run", "used", "prompt") in rel
    assert ("chunk", "wasDerivedFrom", "docv") in rel and ("docv", "wasGeneratedBy", "ingest") in rel
    runs = {n["attributes"]["snapshot_id"] for n in graph["nodes"] if n["kind"] == "ingestion"}
    assert len(runs) == 1 and None not in runs, "document versions link to the published ingestion snapshot"
    for n, citation in enumerate(first.citations, start=1):
        passage = nodes[f"passage:{first.answer_id}:{n}"]
        chunk_edge = next(e for e in graph["edges"] if e["source"] == passage["id"])
        doc_edge = next(
            e for e in graph["edges"] if e["source"] == chunk_edge["target"] and e["target"].startswith("docv:")
        )
        doc_text = nodes[doc_edge["target"]]["text"]
        assert doc_text[citation.start : citation.end] == citation.text
    if first.citations:
        assert ("claim", "wasDerivedFrom", "passage") in rel

    graphml = api.client.get(f"/v1/answers/{first.answer_id}/provenance?format=graphml", headers=h)  # type: ignore[attr-defined]
    assert graphml.headers["content-type"].startswith("application/graphml+xml")
    ET.fromstring(graphml.content)
    g = nx.read_graphml(io.BytesIO(graphml.content))
    assert g.number_of_nodes() == len(graph["nodes"]) and g.number_of_edges() == len(graph["edges"])

    review = api.client.post(  # type: ignore[attr-defined]
        f"/v1/answers/{first.answer_id}/reviews",
        json={"decision": "corrected", "note": "wrong figure", "corrected_answer": "Employees get 28 days."},
        headers=h,
    )
    assert review.status_code == 201 and review.json()["reviewer"] == "reviewer", review.text
    assert_problem(
        api.client.post(f"/v1/answers/{first.answer_id}/reviews", json={"decision": "corrected"}, headers=h),  # type: ignore[attr-defined]
        422,
        "corrected_answer",
    )
    again = api.client.get(f"/v1/answers/{first.answer_id}", headers=h).json()  # type: ignore[attr-defined]
    assert again == first.model_dump(mode="json"), "a review never changes the answer record"
    assert [r["decision"] for r in api.client.get(f"/v1/answers/{first.answer_id}/reviews", headers=h).json()] == [  # type: ignore[attr-defined]
        "corrected"
    ]
    graph2 = api.client.get(f"/v1/answers/{first.answer_id}/provenance", headers=h).json()  # type: ignore[attr-defined]
    assert any(n["kind"] == "review" and n["text"] == "Employees get 28 days." for n in graph2["nodes"])

    exported = api.client.get("/v1/exports/answers.csv", params={"from": day, "to": day}, headers=h)  # type: ignore[attr-defined]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["answer_id"] for r in rows] == [second.answer_id, first.answer_id]
    assert rows[1]["question"] == QUESTIONS[0] and rows[1]["reviews"] == "1" and rows[1]["answer"] == first.answer

    # "As of": the graph comes from the answer-time snapshot, not the live store. Wipe the store's documents
    # entirely and rebuild the graph from the audit database alone: the document versions are still there.
    shutil.rmtree(answered.audit.parent / "store")
    audit = SqliteAuditStore(answered.audit)
    sources = audit.sources(first.answer_id)
    assert sources and {s.role for s in sources} >= {"retrieved"}
    versions = audit.document_versions([s.document_sha256 for s in sources])
    rebuilt = build_graph(audit.get(first.answer_id), sources, versions, audit.reviews(first.answer_id))
    assert rebuilt.model_dump() == graph2 | {"answer_id": first.answer_id}
    for s in sources:
        assert versions[s.document_sha256].text[s.start : s.end] == s.text
    audit.close()
