"""Neo4jGraphStore against a real Bolt server: ArcadeDB's Neo4j-compatible one, not Neo4j itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import GraphBackendError
from core.settings import GraphSettings
from kg.base import GraphStore
from kg.factory import open_graph_store
from kg.neo4j_store import Neo4jGraphStore
from kg.networkx_store import NetworkxGraphStore
from tests.kg.conftest import BoltServer
from tests.kg.store_contract import CURIE, NOBEL, WARSAW, GraphStoreContract, ingest_hand_built, ingest_real

pytestmark = pytest.mark.integration


def _open(server: BoltServer, database: str = "kgtest") -> Neo4jGraphStore:
    return Neo4jGraphStore(server.uri, server.user, server.password, database, batch_size=7)


@pytest.fixture
def neo4j_store(bolt_server: BoltServer) -> Iterator[Neo4jGraphStore]:
    store = _open(bolt_server)
    store.clear()
    yield store
    store.close()


class TestNeo4jGraphStore(GraphStoreContract):
    @pytest.fixture
    def store(self, neo4j_store: Neo4jGraphStore) -> Neo4jGraphStore:
        return neo4j_store

    @pytest.fixture
    def reopen(self, bolt_server: BoltServer) -> Iterator[Callable[[], GraphStore]]:
        opened: list[Neo4jGraphStore] = []

        def again() -> GraphStore:
            opened.append(_open(bolt_server))
            return opened[-1]

        yield again
        for store in opened:
            store.close()


def test_same_answers_as_the_networkx_store(neo4j_store: Neo4jGraphStore, tmp_path: Path) -> None:
    """Both stores, fed the same documents, answer every query identically (order included)."""
    embedded = NetworkxGraphStore(tmp_path / "graph.json")
    for store in (embedded, neo4j_store):
        ingest_real(store)
        ingest_hand_built(store)
    assert neo4j_store.counts() == embedded.counts()
    assert neo4j_store.entity_names() == embedded.entity_names()
    ids = sorted(embedded.entity_names().values())
    for group in ([CURIE], [WARSAW, CURIE], [NOBEL, CURIE], ids[:7], ids):
        assert neo4j_store.facts_about(group, limit=50) == embedded.facts_about(group, limit=50)
        assert neo4j_store.chunks_mentioning(group, limit=50) == embedded.chunks_mentioning(group, limit=50)
    for ent in ids:
        assert neo4j_store.get_entity(ent) == embedded.get_entity(ent)
        assert neo4j_store.surface_forms(ent) == embedded.surface_forms(ent)
    facts = embedded.facts_about(ids, limit=10_000)
    assert [neo4j_store.walk_fact_provenance(f) for f in facts] == [embedded.walk_fact_provenance(f) for f in facts]
    chunk_ids = sorted({f.chunk_id for f in facts})[:3]
    assert neo4j_store.remove_chunks(chunk_ids) == embedded.remove_chunks(chunk_ids)
    assert neo4j_store.counts() == embedded.counts()
    assert neo4j_store.facts_about(ids, limit=10_000) == embedded.facts_about(ids, limit=10_000)


def test_schema_constraints_exist_after_first_use(neo4j_store: Neo4jGraphStore) -> None:
    assert neo4j_store.dialect.name == "arcadedb"
    with neo4j_store._driver.session(database="kgtest") as session:
        names = {r["name"] for r in session.run("SHOW CONSTRAINTS")}
    assert {"kgrag_document_id", "kgrag_chunk_id", "kgrag_entity_id"} <= names


def test_settings_choose_the_neo4j_backend(bolt_server: BoltServer, tmp_path: Path) -> None:
    settings = GraphSettings(
        backend="neo4j", uri=bolt_server.uri, user=bolt_server.user, password=bolt_server.password, database="kgtest"
    )
    store = open_graph_store(settings, tmp_path / "graph.json")
    assert isinstance(store, Neo4jGraphStore)
    assert isinstance(open_graph_store(GraphSettings(), tmp_path / "graph.json"), NetworkxGraphStore)
    store.counts()
    store.close()


@pytest.mark.parametrize(
    ("uri", "password", "database", "says"),
    [
        ("bolt://127.0.0.1:1", None, "kgtest", "cannot be reached"),
        (None, "wrong-password", "kgtest", "refused the credentials"),
        (None, None, "no_such_db", "has no database 'no_such_db'"),
        ("http://127.0.0.1:7687", None, "kgtest", "not usable"),
    ],
)
def test_connection_problems_are_one_clear_error(
    bolt_server: BoltServer, uri: str | None, password: str | None, database: str, says: str
) -> None:
    with pytest.raises(GraphBackendError) as info:
        store = Neo4jGraphStore(uri or bolt_server.uri, bolt_server.user, password or bolt_server.password, database)
        store.counts()
    assert says in str(info.value)
    assert info.value.hint


def test_ingestion_writes_the_graph_to_the_configured_bolt_database(
    bolt_server: BoltServer, neo4j_store: Neo4jGraphStore, sample_store: Path, embedder: Any, tmp_path: Path
) -> None:
    """KGRAG_GRAPH__BACKEND=neo4j: ingesting data/ fills the Bolt database with the graph the embedded store gets."""
    from core.settings import load_settings
    from pipelines.cli.graph import embedded_graph
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.stores import open_store
    from tests.conftest import DATA_DIR

    graph = GraphSettings(
        backend="neo4j", uri=bolt_server.uri, user=bolt_server.user, password=bolt_server.password, database="kgtest"
    )
    settings = load_settings(store_dir=tmp_path / "store", graph=graph)
    store = open_store(settings, embedder, create=True)
    report = build_ingestor(settings, store, embedder).ingest([DATA_DIR])
    assert report.documents_added >= 4
    assert isinstance(store.graph, Neo4jGraphStore)
    embedded = embedded_graph(sample_store)  # the same data/ ingested with the default (networkx) backend
    assert neo4j_store.counts() == embedded.counts()
    ids = sorted(embedded.entity_names().values())
    assert neo4j_store.facts_about(ids, limit=100_000) == embedded.facts_about(ids, limit=100_000)
    store.audit.close()
