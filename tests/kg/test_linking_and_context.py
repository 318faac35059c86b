"""EntityLinker and GraphContextBuilder over a real graph built with the offline extractor."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.types import Entity, Extraction
from kg.graph_context import GraphContextBuilder
from kg.linking import EntityLinker
from kg.names import entity_id
from kg.networkx_store import NetworkxGraphStore
from kg.offline_extractor import OfflineExtractor
from tests.kg.helpers import CURIE_TEXT, chunk_document, make_document, musique_document


@pytest.fixture
def store(tmp_path: Path) -> NetworkxGraphStore:
    store = NetworkxGraphStore(tmp_path / "graph.json")
    extractor = OfflineExtractor()
    for document in [
        make_document("curie", CURIE_TEXT, "Curie"),
        musique_document("musdev-00758"),
        musique_document("musdev-00026"),
        musique_document("musdev-00001"),
    ]:
        chunks = chunk_document(document, sentences_per_chunk=2)
        store.upsert_document(document)
        store.upsert_chunks(chunks)
        for chunk in chunks:
            store.add_extraction(extractor.extract(chunk))
    return store


def _linked(linker: EntityLinker, question: str) -> list[str]:
    return [entity.name for entity in linker.link(question)]


def test_links_lowercase_question_to_capitalised_entity(store: NetworkxGraphStore) -> None:
    linker = EntityLinker(store)
    assert _linked(linker, "Who founded the university of chicago?") == ["University of Chicago"]


def test_links_several_entities_in_question_order(store: NetworkxGraphStore) -> None:
    linker = EntityLinker(store)
    assert _linked(linker, "Was Marie Curie born in Warsaw?") == ["Marie Curie", "Warsaw"]
    assert _linked(linker, "Where was Marga Faulstich born, and what did Schott AG make?") == [
        "Marga Faulstich",
        "Schott AG",
    ]


def test_fuzzy_match_links_typos(store: NetworkxGraphStore) -> None:
    linker = EntityLinker(store)
    assert _linked(linker, "Who founded the Univrsity of Chicgo?") == ["University of Chicago"]
    assert _linked(linker, "where was marga faulstch born?") == ["Marga Faulstich"]
    assert _linked(EntityLinker(store, fuzzy_threshold=99), "where was marga faulstch born?") == []


def test_no_link_for_common_words(store: NetworkxGraphStore) -> None:
    linker = EntityLinker(store)
    # "university" alone is a substring of "university of chicago" but is no entity; neither are stopwords.
    assert _linked(linker, "Which university did he attend, and who was there?") == []
    assert _linked(linker, "What is the population?") == []


def test_lone_lowercase_words_link_only_in_uncased_questions(store: NetworkxGraphStore) -> None:
    extraction = Extraction(
        chunk_id="curie#0",
        entities=[Entity(id=entity_id(n), name=n) for n in ("Country", "State")],
    )
    store.add_extraction(extraction)
    linker = EntityLinker(store)
    assert _linked(linker, "In which country and state was Marga Faulstich born?") == ["Marga Faulstich"]
    assert _linked(linker, "which country was marga faulstich born in?") == ["Country", "Marga Faulstich"]


def test_index_is_cached_until_refresh(store: NetworkxGraphStore) -> None:
    linker = EntityLinker(store)
    assert _linked(linker, "Who was Ada Lovelace?") == []
    ada = Entity(id=entity_id("Ada Lovelace"), name="Ada Lovelace", type="person")
    store.add_extraction(Extraction(chunk_id="curie#0", entities=[ada]))
    assert _linked(linker, "Who was Ada Lovelace?") == []
    linker.refresh()
    assert _linked(linker, "Who was Ada Lovelace?") == ["Ada Lovelace"]


def test_empty_graph_links_nothing(tmp_path: Path) -> None:
    assert EntityLinker(NetworkxGraphStore(tmp_path / "g.json")).link("Who was Marie Curie?") == []


def test_graph_context_end_to_end(store: NetworkxGraphStore) -> None:
    builder = GraphContextBuilder(store, EntityLinker(store), max_facts=10, max_chunks=2)
    context = builder.build("Where was Marie Curie born?")
    assert [e.name for e in context.entities] == ["Marie Curie"]
    born = [f for f in context.facts if f.predicate == "was born in"]
    assert [(f.subject, f.object, f.chunk_id) for f in born] == [("Marie Curie", "Warsaw", "curie#0")]
    assert all("ent:marie curie" in (f.subject_id, f.object_id) for f in context.facts)
    assert context.chunk_ids == ["curie#0", "curie#1"]
    assert store.walk_fact_provenance(born[0]) == ("curie#0", "curie")


def test_graph_context_two_entities_and_limits(store: NetworkxGraphStore) -> None:
    builder = GraphContextBuilder(store, EntityLinker(store), max_facts=1, max_chunks=1)
    context = builder.build("Did blokker live in amsterdam?")
    assert [e.name for e in context.entities] == ["Blokker", "Amsterdam"]
    assert [(f.subject, f.predicate, f.object) for f in context.facts] == [("Blokker", "was born in", "Amsterdam")]
    assert context.chunk_ids == ["musdev-00026#0"]


def test_graph_context_without_entities_is_empty(store: NetworkxGraphStore) -> None:
    context = GraphContextBuilder(store, EntityLinker(store)).build("What is the meaning of life?")
    assert context.entities == [] and context.facts == [] and context.chunk_ids == []
