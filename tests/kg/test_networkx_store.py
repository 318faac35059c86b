"""NetworkxGraphStore: the GraphStore contract plus its JSON file's behaviour."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from core.errors import StoreCorruptError
from kg.base import GraphStore
from kg.networkx_store import NetworkxGraphStore
from tests.kg.store_contract import CURIE, GraphStoreContract, ingest_hand_built


class TestNetworkxGraphStore(GraphStoreContract):
    @pytest.fixture
    def path(self, tmp_path: Path) -> Path:
        return tmp_path / "store" / "graph.json"

    @pytest.fixture
    def store(self, path: Path) -> NetworkxGraphStore:
        return NetworkxGraphStore(path)

    @pytest.fixture
    def reopen(self, path: Path) -> Callable[[], GraphStore]:
        return lambda: NetworkxGraphStore(path)


def test_is_a_graph_store(tmp_path: Path) -> None:
    store: GraphStore = NetworkxGraphStore(tmp_path / "g.json")  # mypy checks the protocol here
    assert store.counts()["entities"] == 0


def test_missing_file_is_an_empty_store_and_nothing_is_written(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    store = NetworkxGraphStore(path)
    assert store.counts()["documents"] == 0
    assert not path.exists()


def test_save_writes_node_link_json_atomically(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "graph.json"
    store = NetworkxGraphStore(path)
    ingest_hand_built(store)
    store.save()
    data = json.loads(path.read_text(encoding="utf-8"))
    assert {"nodes", "edges"} <= set(data)
    kinds = {node["id"]: node["kind"] for node in data["nodes"]}
    assert kinds["doc:bio"] == "document"
    assert kinds["chunk:bio#0"] == "chunk"
    assert kinds[CURIE] == "entity"
    fact_keys = {edge["key"] for edge in data["edges"] if edge["kind"] == "fact"}
    assert fact_keys == {"was born in|bio#0", "won|bio#1"}
    assert [p.name for p in path.parent.iterdir()] == ["graph.json"]  # no temp file left behind


def test_failed_save_keeps_the_previous_file(tmp_path: Path) -> None:
    path = tmp_path / "graph.json"
    store = NetworkxGraphStore(path)
    ingest_hand_built(store)
    store.save()
    before = path.read_bytes()
    store.graph.nodes[CURIE]["unserialisable"] = object()
    with pytest.raises(TypeError):
        store.save()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["graph.json"]


def test_entity_keeps_surface_forms(tmp_path: Path) -> None:
    from core.types import Entity, Extraction

    store = NetworkxGraphStore(tmp_path / "g.json")
    ingest_hand_built(store)
    store.add_extraction(
        Extraction(chunk_id="bio#1", entities=[Entity(id=CURIE, name="MARIE CURIE", description="physicist")])
    )
    assert store.surface_forms(CURIE) == ["Marie Curie", "MARIE CURIE"]
    entity = store.get_entity(CURIE)
    assert entity is not None
    assert (entity.name, entity.type, entity.description) == ("Marie Curie", "person", "physicist")


@pytest.mark.parametrize("content", ["{not json", "[]", '{"nodes": []}', "\x00\x01binary"])
def test_unreadable_file_raises_store_corrupt_naming_the_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "graph.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StoreCorruptError) as info:
        NetworkxGraphStore(path)
    assert str(path) in str(info.value)


def test_loading_builds_what_networkx_node_link_graph_builds(tmp_path: Path) -> None:
    """Same nodes, edges, keys, attributes and iteration order, also for files networkx writes less tidily."""
    import networkx as nx

    data = {
        "directed": True,
        "multigraph": True,
        "graph": {"name": "g"},
        "nodes": [
            {"id": "ent:b", "kind": "entity", "surface_forms": ["B"]},
            {"id": "ent:a", "kind": "entity"},
            {"id": "ent:a", "name": "A"},  # listed twice: the attributes merge
        ],
        "edges": [
            {"source": "ent:a", "target": "ent:b", "key": "knows|c1", "kind": "fact", "chunk_id": "c1"},
            {"source": "ent:a", "target": "ent:b", "key": "knows|c1", "evidence_start": 3},  # same key: merged
            {"source": "ent:b", "target": "ent:c", "key": "likes|c2", "kind": "fact"},  # ent:c is not listed
            {"source": "ent:b", "target": "ent:a", "kind": "fact"},  # no key: the lowest free integer
            {"source": "ent:b", "target": "ent:a", "kind": "fact"},
        ],
    }
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    loaded = NetworkxGraphStore(path).graph
    expected = nx.node_link_graph(
        json.loads(json.dumps(data)) | {"edges": [e for e in data["edges"] if "key" in e]},
        directed=True,
        multigraph=True,
        edges="edges",
    )
    expected.add_edge("ent:b", "ent:a", kind="fact")  # node_link_graph fails on a missing key; add_edge picks 0, 1
    expected.add_edge("ent:b", "ent:a", kind="fact")
    assert list(loaded.nodes(data=True)) == list(expected.nodes(data=True))
    assert list(loaded.edges(keys=True, data=True)) == list(expected.edges(keys=True, data=True))
    assert list(loaded.in_edges(keys=True, data=True)) == list(expected.in_edges(keys=True, data=True))
    assert loaded.graph == expected.graph == {"name": "g"}


def test_a_saved_graph_is_node_link_json_networkx_reads_back_the_same(tmp_path: Path) -> None:
    import networkx as nx

    store = NetworkxGraphStore(tmp_path / "graph.json")
    ingest_hand_built(store)
    store.save()
    again = nx.node_link_graph(
        json.loads((tmp_path / "graph.json").read_text("utf-8")), directed=True, multigraph=True, edges="edges"
    )
    assert list(again.nodes(data=True)) == list(store.graph.nodes(data=True))
    assert list(again.edges(keys=True, data=True)) == list(store.graph.edges(keys=True, data=True))
    assert list(NetworkxGraphStore(tmp_path / "graph.json").graph.edges(keys=True, data=True)) == list(
        store.graph.edges(keys=True, data=True)
    )


def test_counts_kept_between_writes_are_those_of_the_graph(tmp_path: Path) -> None:
    # counts() is kept between writes and updated by remove_chunks from what it removed: after every step it must
    # equal a fresh count of the graph and the counts of the file saved then.
    path = tmp_path / "graph.json"
    store = NetworkxGraphStore(path)

    def check() -> dict[str, int]:
        counted = store.counts()
        assert counted == store._count()
        store.save()
        assert NetworkxGraphStore(path).counts() == counted
        return counted

    assert check() == {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}
    ingest_hand_built(store)
    full = check()
    assert full["documents"] == 1 and full["chunks"] == 2 and full["facts"] == 2
    store.remove_chunks(["bio#1", "not-a-chunk"])
    one = check()
    assert one["chunks"] == 1 and one["facts"] == 1 and one["entities"] < full["entities"]
    ingest_hand_built(store)  # written again: the cached counts were dropped
    assert check() == full
    store.remove_chunks(["bio#0", "bio#1"])  # the last chunks: their entities and the document go too
    assert check() == {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}
