"""An answer's provenance as a W3C PROV-style graph: nodes (entities, activities, agents) and typed edges.

answer -> claims (answer sentences) -> cited passages and graph facts -> chunks -> document versions (as snapshot at
answer time) -> ingestion; and the workflow run that generated the answer, with its prompt version, model,
workflow version and gate. Exported as JSON or GraphML.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from pydantic import BaseModel, Field

from core.text import sentence_spans
from core.types import AnswerRecord
from pipelines.store.base import DocumentVersion, Review, SourceSnapshot

ProvType = Literal["entity", "activity", "agent"]
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_LEADING_MARKERS = re.compile(r"\s*(?:\[\d+(?:\s*,\s*\d+)*\]\s*)+")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    return escape(_NOT_XML.sub("", text))


def _qa(text: str) -> str:
    return quoteattr(_NOT_XML.sub("", text))


class ProvNode(BaseModel):
    """A PROV node: ``kind`` says what it is in kgrag terms (answer, claim, passage, chunk, document_version...)."""

    id: str
    prov_type: ProvType
    kind: str
    label: str
    text: str = ""
    attributes: dict[str, Any] = Field(default_factory=dict)


class ProvEdge(BaseModel):
    """A PROV relation from ``source`` to ``target`` (e.g. passage wasDerivedFrom chunk)."""

    source: str
    target: str
    relation: str


class ProvenanceGraph(BaseModel):
    """The provenance graph of one answer."""

    answer_id: str
    nodes: list[ProvNode]
    edges: list[ProvEdge]


def _short(text: str, n: int = 48) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _claim_spans(text: str) -> list[tuple[int, int]]:
    """Answer sentences; citation markers after a full stop (``... days. [1]``) belong to the sentence before."""
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        lead = _LEADING_MARKERS.match(text, start, end)
        if spans and lead and lead.end() > start:
            spans[-1] = (spans[-1][0], start + len(text[start : lead.end()].rstrip()))
            start = lead.end()
            while start < end and text[start].isspace():
                start += 1
        if start < end:
            spans.append((start, end))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def _conversation(
    record: AnswerRecord, node: Callable[[ProvNode], str], edge: Callable[[str, str, str], None], run: str
) -> None:
    """A chat request: the message as sent, and the rewrite (condense prompt version, model) that made it standalone."""
    conv = record.provenance.conversation
    if conv is None:
        return
    message = node(
        ProvNode(
            id=f"message:{record.answer_id}",
            prov_type="entity",
            kind="chat_message",
            label=_short(conv.original_question),
            text=conv.original_question,
            attributes={"history_turns": conv.history_turns},
        )
    )
    if not conv.rewritten or conv.condense_prompt is None:
        edge(run, message, "used")
        return
    rewrite = node(
        ProvNode(
            id=f"rewrite:{record.answer_id}",
            prov_type="activity",
            kind="rewrite",
            label="standalone question",
            text=conv.rewritten_question,
            attributes=conv.model_dump(),
        )
    )
    edge(rewrite, message, "used")
    ref = conv.condense_prompt
    prompt = node(
        ProvNode(
            id=f"prompt:{ref.name}@{ref.version}",
            prov_type="entity",
            kind="prompt",
            label=f"prompt {ref.name} v{ref.version}",
            attributes=ref.model_dump(),
        )
    )
    edge(rewrite, prompt, "used")
    if conv.condense_model:
        model = node(
            ProvNode(id=f"model:{conv.condense_model}", prov_type="agent", kind="model", label=conv.condense_model)
        )
        edge(rewrite, model, "wasAssociatedWith")
    edge(run, rewrite, "wasInformedBy")


def build_graph(
    record: AnswerRecord,
    sources: list[SourceSnapshot],
    documents: dict[str, DocumentVersion],
    reviews: list[Review] | None = None,
) -> ProvenanceGraph:
    """Build the graph from the stored record and its source snapshot (never from the live, re-indexable store)."""
    nodes: dict[str, ProvNode] = {}
    edges: list[ProvEdge] = []

    def node(n: ProvNode) -> str:
        nodes.setdefault(n.id, n)
        return n.id

    def edge(source: str, target: str, relation: str) -> None:
        edges.append(ProvEdge(source=source, target=target, relation=relation))

    prov = record.provenance
    answer = node(
        ProvNode(
            id=f"answer:{record.answer_id}",
            prov_type="entity",
            kind="answer",
            label=_short(record.answer),
            text=record.answer,
            attributes={"question": record.question, "created_at": record.created_at, "decision": prov.gate.decision},
        )
    )
    run = node(
        ProvNode(
            id=f"run:{record.answer_id}",
            prov_type="activity",
            kind="workflow_run",
            label=f"{prov.workflow.name} run",
            attributes={"trace": [t.model_dump() for t in prov.trace], "draft": prov.draft},
        )
    )
    edge(answer, run, "wasGeneratedBy")
    workflow = node(
        ProvNode(
            id=f"workflow:{prov.workflow.name}@{prov.workflow.version}",
            prov_type="agent",
            kind="workflow",
            label=f"workflow {prov.workflow.name} v{prov.workflow.version}",
            attributes=prov.workflow.model_dump(),
        )
    )
    edge(run, workflow, "wasAssociatedWith")
    model = node(ProvNode(id=f"model:{prov.model}", prov_type="agent", kind="model", label=prov.model))
    edge(run, model, "wasAssociatedWith")
    prompt = node(
        ProvNode(
            id=f"prompt:{prov.prompt.name}@{prov.prompt.version}",
            prov_type="entity",
            kind="prompt",
            label=f"prompt {prov.prompt.name} v{prov.prompt.version}",
            attributes=prov.prompt.model_dump(),
        )
    )
    edge(run, prompt, "used")
    _conversation(record, node, edge, run)
    gate = node(
        ProvNode(
            id=f"gate:{record.answer_id}",
            prov_type="activity",
            kind="gate",
            label=f"gate: {prov.gate.decision}",
            text=prov.gate.reason,
            attributes=prov.gate.model_dump(),
        )
    )
    edge(gate, run, "wasInformedBy")
    edge(answer, gate, "wasGeneratedBy")

    snap = {s.chunk_id: s for s in sources}

    def chunk_node(chunk_id: str) -> str:
        s = snap.get(chunk_id)
        cid = node(
            ProvNode(
                id=f"chunk:{chunk_id}",
                prov_type="entity",
                kind="chunk",
                label=f"chunk {_short(chunk_id, 32)}",
                text=s.text if s else "",
                attributes=(
                    {"document_id": s.document_id, "start": s.start, "end": s.end, "snapshot": True}
                    if s
                    else {"snapshot": False}
                ),
            )
        )
        if s is not None:
            doc = documents.get(s.document_sha256)
            dv = node(
                ProvNode(
                    id=f"docv:{s.document_sha256}",
                    prov_type="entity",
                    kind="document_version",
                    label=f"{s.document_id} @{s.document_sha256[:8]}",
                    text=doc.text if doc else "",
                    attributes={
                        "document_id": s.document_id,
                        "sha256": s.document_sha256,
                        "source": doc.source if doc else "",
                        "title": doc.title if doc else "",
                        "first_seen": doc.first_seen if doc else "",
                    },
                )
            )
            edge(cid, dv, "wasDerivedFrom")
            run_id = s.snapshot_id or s.document_sha256
            ingest = node(
                ProvNode(
                    id=f"ingest:{run_id}",
                    prov_type="activity",
                    kind="ingestion",
                    label=f"ingestion run {run_id}" if s.snapshot_id else f"ingestion of {s.document_id}",
                    attributes={"snapshot_id": s.snapshot_id, "source": doc.source if doc else ""},
                )
            )
            edge(dv, ingest, "wasGeneratedBy")
        return cid

    passages: list[str] = []
    for n, c in enumerate(record.citations, start=1):
        pid = node(
            ProvNode(
                id=f"passage:{record.answer_id}:{n}",
                prov_type="entity",
                kind="passage",
                label=f"[{n}] {_short(c.text, 40)}",
                text=c.text,
                attributes=c.model_dump(),
            )
        )
        edge(pid, chunk_node(c.chunk_id), "wasDerivedFrom")
        passages.append(pid)

    for i, (start, end) in enumerate(_claim_spans(record.answer)):
        sentence = record.answer[start:end]
        cid = node(
            ProvNode(
                id=f"claim:{record.answer_id}:{i}",
                prov_type="entity",
                kind="claim",
                label=_short(sentence),
                text=sentence,
                attributes={"start": start, "end": end},
            )
        )
        edge(answer, cid, "hadMember")
        for m in _MARKER.finditer(sentence):
            for num in (int(x) for x in m.group(1).split(",")):
                if 1 <= num <= len(passages):
                    edge(cid, passages[num - 1], "wasDerivedFrom")

    for i, f in enumerate(record.facts):
        fid = node(
            ProvNode(
                id=f"fact:{record.answer_id}:{i}",
                prov_type="entity",
                kind="fact",
                label=_short(f"{f.subject} {f.predicate} {f.object}"),
                text=f"{f.subject} {f.predicate} {f.object}",
                attributes=f.model_dump(),
            )
        )
        edge(run, fid, "used")
        edge(fid, chunk_node(f.chunk_id), "wasDerivedFrom")

    for r in prov.retrieval:
        edge(run, chunk_node(r.chunk_id), "used")

    for rv in reviews or []:
        rid = node(
            ProvNode(
                id=f"review:{rv.review_id}",
                prov_type="activity",
                kind="review",
                label=f"review: {rv.decision} by {rv.reviewer}",
                text=rv.corrected_answer or rv.note,
                attributes=rv.model_dump(),
            )
        )
        edge(rid, answer, "used")
    return ProvenanceGraph(answer_id=record.answer_id, nodes=list(nodes.values()), edges=edges)


def to_graphml(graph: ProvenanceGraph) -> str:
    """GraphML with kind, prov_type, label and text as node data and the relation as edge data."""
    keys = [("kind", "node"), ("prov_type", "node"), ("label", "node"), ("text", "node"), ("relation", "edge")]
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">',
        *(f'  <key id="{k}" for="{scope}" attr.name="{k}" attr.type="string"/>' for k, scope in keys),
        f'  <graph id={_qa("answer:" + graph.answer_id)} edgedefault="directed">',
    ]
    for n in graph.nodes:
        lines.append(f"    <node id={_qa(n.id)}>")
        for k in ("kind", "prov_type", "label", "text"):
            lines.append(f'      <data key="{k}">{_x(str(getattr(n, k)))}</data>')
        lines.append("    </node>")
    for i, e in enumerate(graph.edges):
        lines.append(f'    <edge id="e{i}" source={_qa(e.source)} target={_qa(e.target)}>')
        lines.append(f'      <data key="relation">{_x(e.relation)}</data>')
        lines.append("    </edge>")
    lines += ["  </graph>", "</graphml>"]
    return "\n".join(lines) + "\n"
