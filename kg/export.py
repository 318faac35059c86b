"""Export an embedded (networkx) graph as rows, JSON, Cypher or GraphML, and push it into a Bolt database.

The rows are the neutral form: ``documents``, ``chunks``, ``entities``, ``mentions`` and ``facts``, each a list of
plain dicts with the ids and keys both stores use. :meth:`kg.neo4j_store.Neo4jGraphStore.load_rows` loads them with
batched ``UNWIND``; the Cypher export writes the same graph as literal ``MERGE`` statements for ``cypher-shell``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx

from kg.networkx_store import NetworkxGraphStore
from kg.node_link import CHUNK_PREFIX, DOCUMENT_PREFIX, FACT, MENTIONS

if TYPE_CHECKING:
    from kg.neo4j_store import Neo4jGraphStore

Row = dict[str, Any]


@dataclass
class GraphRows:
    """A whole graph as lists of rows (ids without the networkx node prefixes, except entity ids)."""

    documents: list[Row] = field(default_factory=list)
    chunks: list[Row] = field(default_factory=list)
    entities: list[Row] = field(default_factory=list)
    mentions: list[Row] = field(default_factory=list)
    facts: list[Row] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Number of rows of each kind."""
        return {name: len(rows) for name, rows in asdict(self).items()}


def graph_rows(store: NetworkxGraphStore) -> GraphRows:
    """The rows of an embedded graph, in a stable order (by id, then key)."""
    graph = store.graph
    rows = GraphRows()
    for node, attrs in sorted(graph.nodes(data=True)):
        kind = attrs.get("kind")
        if kind == "document":
            rows.documents.append(
                {
                    "id": node.removeprefix(DOCUMENT_PREFIX),
                    **{k: attrs.get(k, "") for k in ("source", "title", "sha256", "media_type")},
                }
            )
        elif kind == "chunk":
            chunk = {k: attrs.get(k) for k in ("document_id", "source", "title", "start", "end", "ordinal", "sha256")}
            rows.chunks.append({"id": node.removeprefix(CHUNK_PREFIX), **chunk})
        elif kind == "entity":
            rows.entities.append(
                {
                    "id": node,
                    "name": attrs.get("name", ""),
                    "type": attrs.get("type", "thing"),
                    "description": attrs.get("description", ""),
                    "surface_forms": list(attrs.get("surface_forms", [])),
                }
            )
    for u, v, key, attrs in sorted(graph.edges(keys=True, data=True), key=lambda e: (e[0], e[1], e[2])):
        if attrs.get("kind") == MENTIONS:
            rows.mentions.append(
                {
                    "chunk_id": u.removeprefix(CHUNK_PREFIX),
                    "entity_id": v,
                    "key": key,
                    "start": attrs.get("start"),
                    "end": attrs.get("end"),
                }
            )
        elif attrs.get("kind") == FACT:
            rows.facts.append(
                {
                    "subject_id": u,
                    "object_id": v,
                    "key": key,
                    "predicate": attrs["predicate"],
                    "chunk_id": attrs["chunk_id"],
                    "evidence_start": attrs.get("evidence_start"),
                    "evidence_end": attrs.get("evidence_end"),
                }
            )
    return rows


def to_json(rows: GraphRows) -> str:
    """The rows as one JSON object (``documents``, ``chunks``, ``entities``, ``mentions``, ``facts``)."""
    return json.dumps(asdict(rows), ensure_ascii=False, indent=1)


def cypher_literal(value: Any) -> str:
    """A Cypher literal for a JSON-like value (strings escaped; None is ``null``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
        return f"'{escaped}'"
    if isinstance(value, list):
        return "[" + ", ".join(cypher_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"`{k}`: {cypher_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Cypher literal for {type(value).__name__}")


def to_cypher(rows: GraphRows) -> str:
    """The graph as Cypher statements, one per line, that rebuild it in an empty Neo4j-compatible database."""

    def props(row: Row, skip: tuple[str, ...] = ()) -> str:
        renamed = {("char_start" if k == "start" else "char_end" if k == "end" else k): v for k, v in row.items()}
        return ", ".join(f"{k}: {cypher_literal(v)}" for k, v in renamed.items() if k not in skip and v is not None)

    lines = [
        "CREATE CONSTRAINT kgrag_document_id IF NOT EXISTS FOR (d:Document) REQUIRE d.id IS UNIQUE;",
        "CREATE CONSTRAINT kgrag_chunk_id IF NOT EXISTS FOR (c:Chunk) REQUIRE c.id IS UNIQUE;",
        "CREATE CONSTRAINT kgrag_entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE;",
    ]
    for row in rows.documents:
        lines.append(f"MERGE (d:Document {{id: {cypher_literal(row['id'])}}}) SET d += {{{props(row, ('id',))}}};")
    for row in rows.chunks:
        lines.append(f"MERGE (c:Chunk {{id: {cypher_literal(row['id'])}}}) SET c += {{{props(row, ('id',))}}};")
        if row.get("document_id"):
            lines.append(
                f"MATCH (d:Document {{id: {cypher_literal(row['document_id'])}}}), "
                f"(c:Chunk {{id: {cypher_literal(row['id'])}}}) MERGE (d)-[:CONTAINS]->(c);"
            )
    for row in rows.entities:
        lines.append(f"MERGE (e:Entity {{id: {cypher_literal(row['id'])}}}) SET e += {{{props(row, ('id',))}}};")
    for row in rows.mentions:
        lines.append(
            f"MATCH (c:Chunk {{id: {cypher_literal(row['chunk_id'])}}}), "
            f"(e:Entity {{id: {cypher_literal(row['entity_id'])}}}) "
            f"MERGE (c)-[m:MENTIONS {{key: {cypher_literal(row['key'])}}}]->(e) "
            f"SET m += {{{props(row, ('chunk_id', 'entity_id', 'key'))}}};"
        )
    for row in rows.facts:
        lines.append(
            f"MATCH (s:Entity {{id: {cypher_literal(row['subject_id'])}}}), "
            f"(o:Entity {{id: {cypher_literal(row['object_id'])}}}) "
            f"MERGE (s)-[f:FACT {{key: {cypher_literal(row['key'])}}}]->(o) "
            f"SET f += {{{props(row, ('subject_id', 'object_id', 'key'))}}};"
        )
    return "\n".join(lines) + "\n"


def write_graphml(store: NetworkxGraphStore, path: Path) -> None:
    """Write the graph as GraphML (lists such as surface forms become JSON strings; missing values are dropped)."""
    graph = nx.MultiDiGraph()
    for node, attrs in store.graph.nodes(data=True):
        graph.add_node(node, **_graphml_attrs(attrs))
    for u, v, key, attrs in store.graph.edges(keys=True, data=True):
        graph.add_edge(u, v, key=key, **_graphml_attrs(attrs))
    nx.write_graphml(graph, path)


def _graphml_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v for k, v in attrs.items() if v is not None
    }


def push(rows: GraphRows, target: Neo4jGraphStore, *, progress: Callable[[str, int], None] | None = None) -> None:
    """Load the rows into the target database, batch by batch (``progress(kind, rows_done)`` after each batch).

    Every write is a ``MERGE``, so pushing again (or after an interrupted push) converges to the same graph.
    """
    target.load_rows(
        documents=rows.documents,
        chunks=rows.chunks,
        entities=rows.entities,
        mentions=rows.mentions,
        facts=rows.facts,
        progress=progress,
    )
