"""A :class:`kg.base.GraphStore` in a Neo4j-compatible database over Bolt, with the official ``neo4j`` driver.

Tested against ArcadeDB's Bolt server (Neo4j-compatible), not against Neo4j itself. Every query is parameterised
Cypher; writes are batched with ``UNWIND``; uniqueness constraints are created on first use. Server-specific DDL
lives in :mod:`kg.cypher_dialect`.

Graph model: ``(:Document {id})-[:CONTAINS]->(:Chunk {id})-[:MENTIONS {key}]->(:Entity {id})`` and
``(:Entity)-[:FACT {key, predicate, chunk_id, evidence_start, evidence_end}]->(:Entity)``. Ids and keys are those of
:class:`kg.networkx_store.NetworkxGraphStore` (entity ids ``ent:<normalised name>``, fact key
``predicate|chunk_id``, mention key ``mentions|start|end``), so both stores answer every query the same way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from neo4j import Driver, GraphDatabase, ManagedTransaction
from neo4j.exceptions import AuthError, ClientError, Neo4jError, ServiceUnavailable

from core.errors import GraphBackendError
from core.types import Chunk, Document, Entity, Extraction, Fact
from kg.cypher_dialect import NEO4J, CypherDialect, dialect_for_agent
from kg.names import ENTITY_PREFIX, entity_id, normalize_name
from kg.node_link import MENTIONS, fact_key

Row = dict[str, Any]

#: URI schemes of the Bolt protocol (the driver's preview HTTP support is deliberately not accepted).
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")

_UPSERT_DOCUMENTS = """
UNWIND $rows AS r
MERGE (d:Document {id: r.id})
SET d.source = r.source, d.title = r.title, d.sha256 = r.sha256, d.media_type = r.media_type
"""

_UPSERT_CHUNKS = """
UNWIND $rows AS r
MERGE (c:Chunk {id: r.id})
SET c.document_id = r.document_id, c.source = r.source, c.title = r.title, c.char_start = r.start,
    c.char_end = r.end, c.ordinal = r.ordinal, c.sha256 = r.sha256
MERGE (d:Document {id: r.document_id})
ON CREATE SET d.source = r.source, d.title = r.title
MERGE (d)-[:CONTAINS]->(c)
"""

_ENSURE_CHUNKS = "UNWIND $ids AS id MERGE (c:Chunk {id: id}) ON CREATE SET c.document_id = ''"

# One row per entity sighting, in the order a sequential add would see them. ``create_only`` rows (an entity
# named only by a mention) never change an existing entity; the others add a surface form, upgrade the type
# "thing" and keep the longest description -- exactly NetworkxGraphStore._merge_entity.
_MERGE_ENTITIES = """
UNWIND $rows AS r
MERGE (e:Entity {id: r.id})
ON CREATE SET e.name = r.name, e.type = r.type, e.description = r.description,
    e.surface_forms = CASE WHEN r.name = '' THEN [] ELSE [r.name] END
ON MATCH SET
    e.surface_forms = CASE WHEN r.create_only OR r.name = '' OR r.name IN e.surface_forms
        THEN e.surface_forms ELSE e.surface_forms + r.name END,
    e.type = CASE WHEN NOT r.create_only AND e.type = 'thing' AND r.type <> 'thing'
        THEN r.type ELSE e.type END,
    e.description = CASE WHEN size(r.description) > size(e.description) THEN r.description ELSE e.description END
"""

_SET_ENTITIES = """
UNWIND $rows AS r
MERGE (e:Entity {id: r.id})
SET e.name = r.name, e.type = r.type, e.description = r.description, e.surface_forms = r.surface_forms
"""

_MERGE_MENTIONS = """
UNWIND $rows AS r
MERGE (c:Chunk {id: r.chunk_id})
ON CREATE SET c.document_id = ''
WITH c, r
MATCH (e:Entity {id: r.entity_id})
MERGE (c)-[m:MENTIONS {key: r.key}]->(e)
SET m.char_start = r.start, m.char_end = r.end
"""

_MERGE_FACTS = """
UNWIND $rows AS r
MERGE (c:Chunk {id: r.chunk_id})
ON CREATE SET c.document_id = ''
WITH r
MATCH (s:Entity {id: r.subject_id})
MATCH (o:Entity {id: r.object_id})
MERGE (s)-[f:FACT {key: r.key}]->(o)
SET f.predicate = r.predicate, f.chunk_id = r.chunk_id, f.evidence_start = r.evidence_start,
    f.evidence_end = r.evidence_end
"""

_FACT_FIELDS = (
    "s.id AS subject_id, coalesce(s.name, s.id) AS subject, o.id AS object_id, coalesce(o.name, o.id) AS object, "
    "f.key AS key, f.predicate AS predicate, f.chunk_id AS chunk_id, "
    "f.evidence_start AS evidence_start, f.evidence_end AS evidence_end"
)


def fact_row(fact: Fact) -> Row:
    """The row a fact is written as (ids derived from names when the extractor left them empty)."""
    return {
        "subject_id": fact.subject_id or entity_id(fact.subject),
        "object_id": fact.object_id or entity_id(fact.object),
        "key": fact_key(fact.predicate, fact.chunk_id),
        "predicate": fact.predicate,
        "chunk_id": fact.chunk_id,
        "evidence_start": fact.evidence_start,
        "evidence_end": fact.evidence_end,
    }


def _run_batch(tx: ManagedTransaction, *, query: str, params: Row) -> None:
    tx.run(query, params).consume()


def _entity_row(id_: str, name: str, type_: str = "thing", description: str = "", create_only: bool = False) -> Row:
    return {"id": id_, "name": name, "type": type_ or "thing", "description": description, "create_only": create_only}


class Neo4jGraphStore:
    """A :class:`kg.base.GraphStore` in a Neo4j-compatible database reached over Bolt.

    Each public write is one transaction (committed when it returns, so :meth:`save` has nothing to do). The driver
    connects lazily: the first call checks connectivity, reads the server's dialect and creates the constraints.
    Connection, authentication and missing-database failures raise :class:`core.errors.GraphBackendError` naming
    the URI and the fix. Call :meth:`close` (or use ``with``) to release the driver.
    """

    def __init__(self, uri: str, user: str, password: str, database: str = "neo4j", *, batch_size: int = 1000) -> None:
        self.uri = uri
        self.database = database
        self.batch_size = batch_size
        self._dialect: CypherDialect | None = None
        try:
            if uri.partition("://")[0] not in BOLT_SCHEMES:
                raise ValueError(f"the scheme must be one of {', '.join(BOLT_SCHEMES)}")
            self._driver: Driver = GraphDatabase.driver(uri, auth=(user, password))
        except (ValueError, Neo4jError) as exc:
            raise GraphBackendError(
                f"graph URI {uri!r} is not usable: {exc}", hint="set KGRAG_GRAPH__URI to bolt://host:7687"
            ) from exc

    # ----- connection -----

    def close(self) -> None:
        """Close the driver and its connections."""
        self._driver.close()

    def __enter__(self) -> Neo4jGraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def dialect(self) -> CypherDialect:
        """The server's dialect (connecting, and creating the schema, on first use)."""
        if self._dialect is None:
            self._dialect = self._connect()
        return self._dialect

    def _connect(self) -> CypherDialect:
        dialect = NEO4J
        try:
            dialect = dialect_for_agent(self._driver.get_server_info().agent)
            with self._driver.session(database=self.database) as session:
                for statement in dialect.schema:
                    session.run(statement).consume()
        except AuthError as exc:
            raise GraphBackendError(
                f"graph server {self.uri} refused the credentials",
                hint="check KGRAG_GRAPH__USER and KGRAG_GRAPH__PASSWORD",
            ) from exc
        except ServiceUnavailable as exc:
            raise GraphBackendError(
                f"graph server {self.uri} cannot be reached: {exc}",
                hint="start the server, or set KGRAG_GRAPH__URI to where it listens",
            ) from exc
        except ClientError as exc:
            if "DatabaseNotFound" in (exc.code or "") or "does not exist" in str(exc.message):
                raise GraphBackendError(
                    f"graph server {self.uri} has no database {self.database!r}",
                    hint=dialect.missing_database_hint,
                ) from exc
            raise GraphBackendError(f"graph server {self.uri} rejected the schema: {exc}") from exc
        return dialect

    def _write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        self.dialect  # noqa: B018 -- connect and create the schema first
        with self._driver.session(database=self.database) as session:
            return session.execute_write(work)

    def _read(self, query: str, **params: Any) -> list[Row]:
        self.dialect  # noqa: B018
        with self._driver.session(database=self.database) as session:
            return [record.data() for record in session.run(query, params)]

    def _batched(self, tx: ManagedTransaction, query: str, rows: Sequence[Any], key: str = "rows") -> None:
        for start in range(0, len(rows), self.batch_size):
            tx.run(query, {key: list(rows[start : start + self.batch_size])}).consume()

    # ----- writes -----

    def upsert_document(self, document: Document) -> None:
        """Add or update a document node (metadata only)."""
        row = document.model_dump(include={"id", "source", "title", "sha256", "media_type"})
        self._write(lambda tx: self._batched(tx, _UPSERT_DOCUMENTS, [row]))

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Add or update chunk nodes and their document -CONTAINS-> chunk relationships."""
        rows = [c.model_dump(exclude={"text"}) for c in chunks]
        if rows:
            self._write(lambda tx: self._batched(tx, _UPSERT_CHUNKS, rows))

    def add_extraction(self, extraction: Extraction) -> None:
        """Add one chunk's entities, mentions and facts; adding the same extraction again changes nothing."""
        self.add_extractions([extraction])

    def add_extractions(self, extractions: Sequence[Extraction]) -> None:
        """Add many extractions in one transaction, with the same result as adding them one by one."""
        chunk_ids: list[str] = []
        entities: list[Row] = []
        mentions: list[Row] = []
        facts: list[Row] = []
        for extraction in extractions:
            chunk_ids.append(extraction.chunk_id)
            for entity in extraction.entities:
                entities.append(_entity_row(entity.id, entity.name, entity.type, entity.description))
            for mention in extraction.mentions:
                name = mention.entity_id.removeprefix(ENTITY_PREFIX)
                entities.append(_entity_row(mention.entity_id, name, create_only=True))
                key = f"{MENTIONS}|{mention.start}|{mention.end}"
                mentions.append({**mention.model_dump(), "key": key})
            for fact in extraction.facts:
                row = fact_row(fact)
                entities.append(_entity_row(row["subject_id"], fact.subject))
                entities.append(_entity_row(row["object_id"], fact.object))
                facts.append(row)

        def work(tx: ManagedTransaction) -> None:
            self._batched(tx, _ENSURE_CHUNKS, list(dict.fromkeys(chunk_ids)), key="ids")
            self._batched(tx, _MERGE_ENTITIES, entities)
            self._batched(tx, _MERGE_MENTIONS, mentions)
            self._batched(tx, _MERGE_FACTS, facts)

        self._write(work)

    def load_rows(
        self,
        *,
        documents: Sequence[Row],
        chunks: Sequence[Row],
        entities: Sequence[Row],
        mentions: Sequence[Row],
        facts: Sequence[Row],
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        """Bulk-load a whole graph given as rows (see :mod:`kg.export`): one transaction per kind, batched.

        Entities are written as given (surface forms included), not merged. ``progress(kind, n)`` is called after
        each batch of ``n`` rows.
        """
        contained = [c for c in chunks if c.get("document_id")]
        loose = [c["id"] for c in chunks if not c.get("document_id")]
        plan: list[tuple[str, str, Sequence[Any], str]] = [
            ("documents", _UPSERT_DOCUMENTS, documents, "rows"),
            ("chunks", _UPSERT_CHUNKS, contained, "rows"),
            ("chunks", _ENSURE_CHUNKS, loose, "ids"),
            ("entities", _SET_ENTITIES, entities, "rows"),
            ("mentions", _MERGE_MENTIONS, mentions, "rows"),
            ("facts", _MERGE_FACTS, facts, "rows"),
        ]
        for kind, query, rows, key in plan:
            for start in range(0, len(rows), self.batch_size):
                batch = list(rows[start : start + self.batch_size])
                self._write(functools.partial(_run_batch, query=query, params={key: batch}))
                if progress is not None:
                    progress(kind, len(batch))

    def remove_chunks(self, chunk_ids: Iterable[str]) -> dict[str, int]:
        """Remove chunks and whatever only they supported; see :meth:`kg.base.GraphStore.remove_chunks`."""
        ids = sorted(set(chunk_ids))

        def work(tx: ManagedTransaction) -> dict[str, int]:
            removed = {"chunks": 0, "mentions": 0, "facts": 0, "entities": 0, "documents": 0}
            found = [r["id"] for r in tx.run("MATCH (c:Chunk) WHERE c.id IN $ids RETURN c.id AS id", ids=ids)]
            mentioned = tx.run(
                "MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity) WHERE c.id IN $ids RETURN e.id AS id, count(m) AS n",
                ids=found,
            ).data()
            removed["mentions"] = sum(r["n"] for r in mentioned)
            touched = {r["id"] for r in mentioned}
            docs = tx.run(
                "MATCH (d:Document)-[:CONTAINS]->(c:Chunk) WHERE c.id IN $ids RETURN DISTINCT d.id AS id", ids=found
            ).data()
            stale = tx.run(
                "MATCH (s:Entity)-[f:FACT]->(o:Entity) WHERE f.chunk_id IN $ids RETURN s.id AS s, o.id AS o", ids=ids
            ).data()
            removed["facts"] = len(stale)
            touched.update(r["s"] for r in stale)
            touched.update(r["o"] for r in stale)
            tx.run("MATCH ()-[f:FACT]->() WHERE f.chunk_id IN $ids DELETE f", ids=ids).consume()
            tx.run("MATCH (c:Chunk) WHERE c.id IN $ids DETACH DELETE c", ids=found).consume()
            removed["chunks"] = len(found)
            orphans = tx.run(
                "MATCH (e:Entity) WHERE e.id IN $ids AND NOT (e)--() RETURN e.id AS id", ids=sorted(touched)
            ).data()
            orphan_ids = [r["id"] for r in orphans]
            tx.run("MATCH (e:Entity) WHERE e.id IN $ids DELETE e", ids=orphan_ids).consume()
            removed["entities"] = len(orphan_ids)
            empty = tx.run(
                "MATCH (d:Document) WHERE d.id IN $ids AND NOT (d)-[:CONTAINS]->(:Chunk) RETURN d.id AS id",
                ids=[r["id"] for r in docs],
            ).data()
            empty_ids = [r["id"] for r in empty]
            tx.run("MATCH (d:Document) WHERE d.id IN $ids DETACH DELETE d", ids=empty_ids).consume()
            removed["documents"] = len(empty_ids)
            return removed

        result: dict[str, int] = self._write(work)
        return result

    def clear(self) -> None:
        """Delete every node and relationship kgrag wrote (Documents, Chunks, Entities)."""
        self._write(lambda tx: tx.run("MATCH (n) WHERE n:Document OR n:Chunk OR n:Entity DETACH DELETE n").consume())

    def save(self) -> None:
        """Nothing to do: every write was committed when it returned."""

    # ----- reads -----

    def get_entity(self, entity_id: str) -> Entity | None:
        """The entity with this id, or None."""
        rows = self._read(
            "MATCH (e:Entity {id: $id}) RETURN e.name AS name, e.type AS type, e.description AS description",
            id=entity_id,
        )
        if not rows:
            return None
        row = rows[0]
        return Entity(
            id=entity_id, name=row["name"] or "", type=row["type"] or "thing", description=row["description"] or ""
        )

    def surface_forms(self, entity_id: str) -> list[str]:
        """Every spelling of the entity seen in the extractions, first seen first."""
        rows = self._read("MATCH (e:Entity {id: $id}) RETURN e.surface_forms AS forms", id=entity_id)
        return list(rows[0]["forms"] or []) if rows else []

    def entity_names(self) -> dict[str, str]:
        """Normalised name -> entity id: every entity's own name, then surface forms (entities in id order)."""
        rows = self._read("MATCH (e:Entity) RETURN e.id AS id, e.surface_forms AS forms ORDER BY e.id")
        names = {str(r["id"]).removeprefix(ENTITY_PREFIX): r["id"] for r in rows}
        for row in rows:
            for form in row["forms"] or []:
                normalised = normalize_name(form)
                if normalised:
                    names.setdefault(normalised, row["id"])
        return names

    def facts_about(self, entity_ids: Iterable[str], *, limit: int) -> list[Fact]:
        """Facts touching the entities: those between two of them first, then the rest (see the networkx store)."""
        wanted = list(dict.fromkeys(entity_ids))
        if not wanted or limit <= 0:
            return []
        match = "MATCH (s:Entity)-[f:FACT]->(o:Entity) WHERE {}.id IN $ids RETURN " + _FACT_FIELDS
        out_rows = self._read(match.format("s"), ids=wanted)
        in_rows = self._read(match.format("o"), ids=wanted)
        outgoing: dict[str, list[Row]] = {}
        incoming: dict[str, list[Row]] = {}
        for row in out_rows:
            outgoing.setdefault(row["subject_id"], []).append(row)
        for row in in_rows:
            incoming.setdefault(row["object_id"], []).append(row)
        wanted_set = set(wanted)
        seen: set[tuple[str, str, str]] = set()
        between: list[Fact] = []
        touching: list[Fact] = []
        for ent in wanted:
            edges = sorted(outgoing.get(ent, []), key=lambda r: (r["object_id"], r["key"])) + sorted(
                incoming.get(ent, []), key=lambda r: (r["subject_id"], r["key"])
            )
            for row in edges:
                triple = (row["subject_id"], row["object_id"], row["key"])
                if triple in seen:
                    continue
                seen.add(triple)
                fact = Fact(**{k: v for k, v in row.items() if k != "key"})
                inside = row["subject_id"] in wanted_set and row["object_id"] in wanted_set
                (between if inside else touching).append(fact)
        return (between + touching)[:limit]

    def chunks_mentioning(self, entity_ids: Iterable[str], *, limit: int) -> list[str]:
        """Chunk ids ranked by how many of the entities they mention, then by mention count, then by id."""
        wanted = list(dict.fromkeys(entity_ids))
        if not wanted or limit <= 0:
            return []
        rows = self._read(
            "MATCH (c:Chunk)-[m:MENTIONS]->(e:Entity) WHERE e.id IN $ids "
            "RETURN c.id AS chunk, count(DISTINCT e) AS distinct, count(m) AS total",
            ids=wanted,
        )
        rows.sort(key=lambda r: (-r["distinct"], -r["total"], r["chunk"]))
        return [r["chunk"] for r in rows[:limit]]

    def has_chunk(self, chunk_id: str) -> bool:
        """Whether the chunk was upserted or had an extraction added."""
        return bool(self._read("MATCH (c:Chunk {id: $id}) RETURN c.id AS id", id=chunk_id))

    def walk_fact_provenance(self, fact: Fact) -> tuple[str, str] | None:
        """``(chunk_id, document_id)`` reached from the stored FACT -> its Chunk -> the Document containing it."""
        row = fact_row(fact)
        rows = self._read(
            "MATCH (s:Entity {id: $s})-[f:FACT]->(o:Entity {id: $o}) WHERE f.key = $key "
            "MATCH (c:Chunk) WHERE c.id = f.chunk_id MATCH (d:Document)-[:CONTAINS]->(c) "
            "RETURN c.id AS chunk, d.id AS document",
            s=row["subject_id"],
            o=row["object_id"],
            key=row["key"],
        )
        return (rows[0]["chunk"], rows[0]["document"]) if rows else None

    def counts(self) -> dict[str, int]:
        """Numbers of documents, chunks, entities, mentions and facts."""
        result: dict[str, int] = {}
        for label, plural in (("Document", "documents"), ("Chunk", "chunks"), ("Entity", "entities")):
            result[plural] = self._read(f"MATCH (n:{label}) RETURN count(n) AS n")[0]["n"]
        for rel, plural in (("MENTIONS", "mentions"), ("FACT", "facts")):
            result[plural] = self._read(f"MATCH ()-[r:{rel}]->() RETURN count(r) AS n")[0]["n"]
        return result
