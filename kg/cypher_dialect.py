"""The few differences between Neo4j and ArcadeDB's Neo4j-compatible Bolt server, kept in one place.

Everything else :mod:`kg.neo4j_store` sends is plain parameterised openCypher that both accept. What differs:

* **Schema DDL.** Both accept Neo4j 5's ``CREATE CONSTRAINT ... REQUIRE n.id IS UNIQUE`` and
  ``CREATE INDEX ... IF NOT EXISTS``. Neo4j builds a range index on a relationship property; ArcadeDB accepts the
  statement, so the same list is used, but it is listed per dialect so a divergence has one home.
* **Creating a database.** Neo4j (Enterprise) runs ``CREATE DATABASE`` against the ``system`` database; Community
  has only ``neo4j``. ArcadeDB creates databases through its server API / HTTP, not Cypher. Neither is done by
  kgrag: the hint on a missing database says how.
* **Vector functions and APOC.** Neo4j has ``db.index.vector.*`` and usually APOC; ArcadeDB has neither over Bolt.
  kgrag uses neither (vectors live in FAISS, list updates are plain Cypher), which is why no query here needs them.

Which dialect a server speaks is read from the Bolt ``agent`` string (ArcadeDB announces
``"Neo4j/5.26.0 compatible (ArcadeDB ...)"``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CypherDialect:
    """What one Bolt server flavour needs that the shared Cypher does not cover."""

    name: str
    schema: tuple[str, ...]
    missing_database_hint: str


_SCHEMA = (
    "CREATE CONSTRAINT kgrag_document_id IF NOT EXISTS FOR (d:Document) REQUIRE d.id IS UNIQUE",
    "CREATE CONSTRAINT kgrag_chunk_id IF NOT EXISTS FOR (c:Chunk) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT kgrag_entity_id IF NOT EXISTS FOR (e:Entity) REQUIRE e.id IS UNIQUE",
    "CREATE INDEX kgrag_fact_chunk IF NOT EXISTS FOR ()-[f:FACT]-() ON (f.chunk_id)",
)

NEO4J = CypherDialect(
    name="neo4j",
    schema=_SCHEMA,
    missing_database_hint="create it first (`CREATE DATABASE name` on the system database), or use `neo4j`",
)

ARCADEDB = CypherDialect(
    name="arcadedb",
    schema=_SCHEMA,
    missing_database_hint="create it first (ArcadeDB server API or `create database` over HTTP)",
)


def dialect_for_agent(agent: str) -> CypherDialect:
    """The dialect of a server from its Bolt agent string: ArcadeDB if it says so, Neo4j otherwise."""
    return ARCADEDB if "arcadedb" in agent.casefold() else NEO4J
