"""Claim splitting and GraphML export of the provenance graph (pure functions, no servers)."""

from __future__ import annotations

import io

import networkx as nx

from core.types import (
    AnswerRecord,
    Citation,
    ConversationRef,
    FactCitation,
    GateRecord,
    PromptRef,
    Provenance,
    RetrievalRef,
    WorkflowRef,
)
from pipelines.answer.provenance import _claim_spans, build_graph, to_graphml
from pipelines.store.base import DocumentVersion, SourceSnapshot


def test_markers_after_a_full_stop_belong_to_the_sentence_before() -> None:
    text = "Leave is 28 days. [1] Unused leave carries over [2]. Ask HR."
    assert [text[a:b] for a, b in _claim_spans(text)] == [
        "Leave is 28 days. [1]",
        "Unused leave carries over [2].",
        "Ask HR.",
    ]


def test_graph_links_claims_to_cited_passages_and_exports_graphml() -> None:
    doc_text = "Intro.\x01 Staff get 28 days <of> leave & more."
    start = doc_text.index("Staff")
    record = AnswerRecord(
        answer_id="a1",
        question="How much leave?",
        answer="Staff get 28 days. [1] Nothing else.",
        citations=[
            Citation(
                chunk_id="c1",
                document_id="d1",
                source="d1.md",
                start=start,
                end=len(doc_text),
                text=doc_text[start:],
                score=1.0,
            )
        ],
        facts=[FactCitation(subject="Staff", predicate="get", object="leave", chunk_id="c1")],
        provenance=Provenance(
            prompt=PromptRef(name="answer", version=1, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="m",
            retrieval=[RetrievalRef(chunk_id="c1", score=0.5, method="dense")],
            gate=GateRecord(decision="released"),
        ),
        created_at="2026-11-21T00:00:00+00:00",
    )
    snap = SourceSnapshot(
        chunk_id="c1",
        document_id="d1",
        document_sha256="h1",
        start=start,
        end=len(doc_text),
        text=doc_text[start:],
        role="cited",
    )
    version = DocumentVersion(
        sha256="h1", document_id="d1", source="d1.md", title="", media_type="text/plain", text=doc_text, first_seen=""
    )
    graph = build_graph(record, [snap], {"h1": version})
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    assert ("claim:a1:0", "wasDerivedFrom", "passage:a1:1") in edges
    assert not any(s == "claim:a1:1" and r == "wasDerivedFrom" for s, r, _ in edges)
    assert ("passage:a1:1", "wasDerivedFrom", "chunk:c1") in edges
    assert ("chunk:c1", "wasDerivedFrom", "docv:h1") in edges and ("docv:h1", "wasGeneratedBy", "ingest:h1") in edges
    assert ("fact:a1:0", "wasDerivedFrom", "chunk:c1") in edges and ("run:a1", "used", "chunk:c1") in edges
    g = nx.read_graphml(io.BytesIO(to_graphml(graph).encode()))
    assert g.nodes["docv:h1"]["text"] == doc_text.replace("\x01", "")
    assert ("claim:a1:0", "passage:a1:1", "wasDerivedFrom") in {(a, b, d["relation"]) for a, b, d in g.edges(data=True)}
    assert g.number_of_edges() == len(graph.edges)


def test_a_chat_rewrite_is_in_the_graph() -> None:
    condense = PromptRef(name="condense", version=3, sha256="c" * 64)
    record = AnswerRecord(
        answer_id="a2",
        question="How many sick days do employees get?",
        answer="Ten [1].",
        provenance=Provenance(
            prompt=PromptRef(name="answer", version=1, sha256="0" * 64),
            workflow=WorkflowRef(name="answer", version="2"),
            model="m",
            gate=GateRecord(decision="released"),
            conversation=ConversationRef(
                original_question="And sick days?",
                rewritten_question="How many sick days do employees get?",
                rewritten=True,
                condense_prompt=condense,
                condense_model="small",
                history_turns=2,
            ),
        ),
        created_at="2026-11-21T00:00:00+00:00",
    )
    graph = build_graph(record, [], {})
    edges = {(e.source, e.relation, e.target) for e in graph.edges}
    assert ("rewrite:a2", "used", "message:a2") in edges and ("run:a2", "wasInformedBy", "rewrite:a2") in edges
    assert ("rewrite:a2", "used", "prompt:condense@3") in edges and (
        "rewrite:a2",
        "wasAssociatedWith",
        "model:small",
    ) in edges
    nodes = {n.id: n for n in graph.nodes}
    assert nodes["message:a2"].text == "And sick days?" and nodes["rewrite:a2"].text == record.question
    assert nodes["prompt:condense@3"].attributes["sha256"] == "c" * 64
    plain = record.model_copy(deep=True)
    plain.provenance.conversation = ConversationRef(
        original_question=record.question, rewritten_question=record.question, rewritten=False
    )
    plain_edges = {(e.source, e.relation, e.target) for e in build_graph(plain, [], {}).edges}
    assert ("run:a2", "used", "message:a2") in plain_edges and not any(s == "rewrite:a2" for s, _, _ in plain_edges)
