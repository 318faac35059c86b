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
