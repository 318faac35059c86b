"""``kgrag graph export|push`` on a real ingested store, pushed into a real ArcadeDB Bolt server."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from typer.testing import CliRunner

from kg.neo4j_store import Neo4jGraphStore
from kg.networkx_store import NetworkxGraphStore
from pipelines.cli.graph import embedded_graph
from pipelines.cli.main import app
from tests.kg.conftest import BoltServer

runner = CliRunner()


@pytest.fixture
def target(bolt_server: BoltServer) -> Neo4jGraphStore:
    store = Neo4jGraphStore(bolt_server.uri, bolt_server.user, bolt_server.password, "kgpush")
    store.clear()
    return store


def _same_graph(pushed: Neo4jGraphStore, embedded: NetworkxGraphStore) -> None:
    assert pushed.counts() == embedded.counts()
    assert pushed.entity_names() == embedded.entity_names()
    ids = sorted(embedded.entity_names().values())
    assert pushed.facts_about(ids, limit=100_000) == embedded.facts_about(ids, limit=100_000)
    for ent in ids[:40]:
        assert pushed.chunks_mentioning([ent], limit=50) == embedded.chunks_mentioning([ent], limit=50)
        assert pushed.surface_forms(ent) == embedded.surface_forms(ent)
        assert pushed.get_entity(ent) == embedded.get_entity(ent)
    facts = embedded.facts_about(ids, limit=100_000)[:30]
    assert [pushed.walk_fact_provenance(f) for f in facts] == [embedded.walk_fact_provenance(f) for f in facts]


@pytest.mark.integration
def test_push_copies_the_embedded_graph(
    sample_store: Path, bolt_server: BoltServer, target: Neo4jGraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KGRAG_GRAPH__PASSWORD", bolt_server.password)
    args = ["graph", "push", "--to", bolt_server.uri, "--store", str(sample_store), "--user", bolt_server.user]
    args += ["--database", "kgpush", "--batch-size", "50"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "pushed to" in result.output
    embedded = embedded_graph(sample_store)
    assert embedded.counts()["facts"] > 10
    _same_graph(target, embedded)
    again = runner.invoke(app, args)  # idempotent: pushing twice changes nothing
    assert again.exit_code == 0, again.output
    assert target.counts() == embedded.counts()
    target.close()


@pytest.mark.integration
def test_cypher_export_rebuilds_the_graph(sample_store: Path, target: Neo4jGraphStore, tmp_path: Path) -> None:
    out = tmp_path / "graph.cypher"
    result = runner.invoke(app, ["graph", "export", "--format", "cypher", "-o", str(out), "--store", str(sample_store)])
    assert result.exit_code == 0, result.output
    statements = out.read_text("utf-8").splitlines()
    target.dialect  # noqa: B018 -- connect
    with target._driver.session(database="kgpush") as session:
        for statement in statements:
            session.run(statement.rstrip(";")).consume()
    _same_graph(target, embedded_graph(sample_store))
    target.close()


def test_json_and_graphml_exports(sample_store: Path, tmp_path: Path) -> None:
    embedded = embedded_graph(sample_store)
    counts = embedded.counts()
    result = runner.invoke(app, ["graph", "export", "--format", "json", "--store", str(sample_store)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert {k: len(rows[k]) for k in ("documents", "chunks", "entities", "mentions", "facts")} == counts
    fact = rows["facts"][0]
    assert fact["key"] == f"{fact['predicate']}|{fact['chunk_id']}" and fact["subject_id"].startswith("ent:")
    out = tmp_path / "graph.graphml"
    result = runner.invoke(app, ["graph", "export", "-f", "graphml", "-o", str(out), "--store", str(sample_store)])
    assert result.exit_code == 0, result.output
    graph = nx.read_graphml(out, force_multigraph=True)
    assert graph.number_of_nodes() == embedded.graph.number_of_nodes()
    assert graph.number_of_edges() == embedded.graph.number_of_edges()
    some_entity = next(n for n, k in graph.nodes(data="kind") if k == "entity")
    assert isinstance(json.loads(graph.nodes[some_entity]["surface_forms"]), list)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["graph", "export", "--format", "xml"], "unknown export format 'xml'"),
        (["graph", "export", "--format", "graphml"], "GraphML export needs a file"),
        (["graph", "push", "--to", "bolt://127.0.0.1:1"], "cannot be reached"),
        (["graph", "push", "--to", "http://127.0.0.1:1"], "not usable"),
    ],
)
def test_bad_input_is_one_clear_error(sample_store: Path, args: list[str], says: str) -> None:
    result = runner.invoke(app, [*args, "--store", str(sample_store)])
    assert result.exit_code in (1, 2)
    assert says in result.output
    assert "Traceback" not in result.output


def test_missing_store_says_how_to_fix(tmp_path: Path) -> None:
    result = runner.invoke(app, ["graph", "export", "--store", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "no embedded graph" in result.output and "kgrag ingest" in result.output
