"""NetworkxGraphStore: the GraphStore contract plus its JSON file's behaviour."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.errors import StoreCorruptError
from core.types import Extraction, Fact
from kg.base import GraphStore
from kg.networkx_store import NetworkxGraphStore
from tests.kg.store_contract import CURIE, GraphStoreContract, ingest_hand_built, ingest_real


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


def _saved_store(path: Path) -> list[str]:
    """A saved store of real and hand-built documents; its chunk ids."""
    store = NetworkxGraphStore(path)
    chunk_ids = {e.chunk_id for e in ingest_real(store)} | {"bio#0", "bio#1"}
    ingest_hand_built(store)
    again = Fact(subject="Marie Curie", predicate="won", object="Nobel Prize", chunk_id="bio#0")
    store.add_extraction(Extraction(chunk_id="bio#0", facts=[again]))  # a fact two chunks support
    store.save()
    return sorted(chunk_ids)


@pytest.mark.parametrize("pick", ["bio#0", "bio#1", "curie", "musdev-00758", "every", "none"])
def test_removing_chunks_from_the_file_unbuilt_gives_what_the_graph_gives(tmp_path: Path, pick: str) -> None:
    # kgrag delete removes chunks from the parsed file, never building the graph: the removal's counts, the
    # counts after, what the store answers and the bytes saved must be those of the same removal on the graph.
    chunk_ids = _saved_store(tmp_path / "graph.json")
    if pick == "every":
        chosen = chunk_ids
    elif pick == "none":
        chosen = ["no-such-chunk"]
    else:
        chosen = [c for c in chunk_ids if c == pick or c.startswith(f"{pick}#")]
    assert chosen
    results = []
    for build in (False, True):
        directory = tmp_path / f"built-{build}"
        directory.mkdir()
        path = directory / "graph.json"
        shutil.copy(tmp_path / "graph.json", path)
        store = NetworkxGraphStore(path)
        before = store.counts()
        if build:
            assert store.graph.number_of_nodes() > 0
        assert (store._data is None) is build  # the parsed file is kept until the graph is needed
        removed = store.remove_chunks(chosen)
        after = store.counts()
        assert after == {kind: n - removed[kind] for kind, n in before.items()}
        store.save()
        assert (store._data is None) is build  # neither counting, removing nor saving built it
        reopened = NetworkxGraphStore(path)
        assert reopened.counts() == after == reopened._count()
        names = reopened.entity_names()
        answers = (
            names,
            reopened.facts_about(names.values(), limit=10_000),
            reopened.chunks_mentioning(names.values(), limit=10_000),
            [reopened.has_chunk(c) for c in chunk_ids],
        )
        results.append((removed, after, path.read_bytes(), answers))
    (removed, after, saved, answers), built = results
    assert removed == built[0] and after == built[1] and answers == built[3]
    assert saved == built[2]
    if pick == "every":
        assert after == {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}
    if pick == "none":
        assert removed == {"chunks": 0, "mentions": 0, "facts": 0, "entities": 0, "documents": 0}
    else:
        assert removed["chunks"] == len(chosen) and removed["mentions"] > 0


def test_a_file_from_another_tool_is_built_as_networkx_reads_it(tmp_path: Path) -> None:
    # a keyless edge: networkx numbers it; the store builds the graph at once rather than work on such a file
    path = tmp_path / "graph.json"
    data = {
        "directed": True,
        "multigraph": True,
        "graph": {},
        "nodes": [{"id": "ent:a", "kind": "entity"}, {"id": "ent:b", "kind": "entity"}],
        "edges": [{"source": "ent:a", "target": "ent:b", "kind": "fact", "predicate": "knows", "chunk_id": "c"}],
    }
    path.write_text(json.dumps(data), encoding="utf-8")
    store = NetworkxGraphStore(path)
    assert store.counts()["facts"] == 1 and store._data is None  # built when first counted
    assert store.remove_chunks(["c"])["facts"] == 1
    store.save()
    again = NetworkxGraphStore(path)
    assert again.counts()["facts"] == 0 and again._data is not None  # saved keyed: worked on as a file from now


def test_a_file_kgrag_wrote_is_marked_tidy_and_an_edited_one_is_checked_again(tmp_path: Path) -> None:
    from kg import node_link

    path = tmp_path / "graph.json"
    store = NetworkxGraphStore(path)
    ingest_hand_built(store)
    store.save()
    written = json.loads(path.read_text("utf-8"))
    assert written["graph"][node_link.TIDY_MARK] == [len(written["nodes"]), len(written["edges"])]
    marked = NetworkxGraphStore(path)
    assert marked._checked, "the mark stands for the check"
    assert node_link.TIDY_MARK not in marked.graph.graph, "a built graph does not carry the mark"
    # Another tool edits the file and keeps the mark: a node listed twice no longer matches its counts.
    written["nodes"].append(dict(written["nodes"][0]))
    path.write_text(json.dumps(written), encoding="utf-8")
    edited = NetworkxGraphStore(path)
    assert not edited._checked
    before = edited.counts()  # the check finds the repeat: the graph is built, merging it as networkx does
    assert edited._data is None and before == marked.counts()
    # A file saved untidy (a keyless edge numbered by networkx) is written without the mark.
    written["edges"].append({"source": written["nodes"][0]["id"], "target": written["nodes"][1]["id"], "kind": "x"})
    path.write_text(json.dumps(written), encoding="utf-8")
    untidy = NetworkxGraphStore(path)
    untidy.save()
    assert node_link.TIDY_MARK not in json.loads(path.read_text("utf-8"))["graph"]


@pytest.mark.parametrize(
    "edges",
    [
        [{"source": "ent:a", "key": "k"}],
        [{"source": ["ent:a"], "target": "ent:a", "key": "k"}],
    ],
)
def test_a_malformed_edge_is_a_corrupt_store_naming_the_file(tmp_path: Path, edges: list[dict[str, object]]) -> None:
    path = tmp_path / "graph.json"
    path.write_text(json.dumps({"nodes": [{"id": "ent:a", "kind": "entity"}], "edges": edges}), encoding="utf-8")
    with pytest.raises(StoreCorruptError) as info:
        NetworkxGraphStore(path).counts()
    assert str(path) in str(info.value)


def test_threads_asking_for_the_unbuilt_graph_at_once_share_one_build(tmp_path: Path) -> None:
    # kgrag ask and the API read a store from several threads of one request (retrieval and graph context):
    # the first read builds the graph from the parsed file, which building consumes, while the others wait.
    path = tmp_path / "graph.json"
    n = 20_000
    nodes = [{"id": f"ent:e{i}", "kind": "entity", "name": f"E{i}"} for i in range(n)]
    edges = [
        {"source": f"ent:e{i}", "target": f"ent:e{i + 1}", "key": f"next|c{i}", "kind": "fact", "chunk_id": f"c{i}"}
        for i in range(n - 1)
    ]
    path.write_text(json.dumps({"directed": True, "multigraph": True, "graph": {}, "nodes": nodes, "edges": edges}))
    store = NetworkxGraphStore(path)
    assert store._data is not None
    barrier = threading.Barrier(8)

    def read(_: int) -> int:
        barrier.wait()
        return len(store.entity_names())

    with ThreadPoolExecutor(max_workers=8) as pool:
        sizes = list(pool.map(read, range(8)))
    assert sizes == [n] * 8
    assert store.graph.number_of_edges() == n - 1 and store.counts()["facts"] == n - 1
