"""k-hop fact expansion: facts within k hops of the question's entities, ranked, each with its source chunk."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.types import Chunk, Entity, Extraction, Fact, Mention, sha256_text
from kg.graph_context import GraphContextBuilder, expand_facts
from kg.linking import EntityLinker
from kg.names import entity_id
from kg.networkx_store import NetworkxGraphStore

#: chunk id -> (text, [(subject, predicate, object)]): a two-hop chain Quimby -> Varnholm -> krenna/euro, and an
#: unrelated country three hops away from nothing the question names.
CHUNKS = {
    "quimby#0": ("Zorbalt Quimby was born in Varnholm.", [("Zorbalt Quimby", "was born in", "Varnholm")]),
    "varnholm#0": (
        "Varnholm paid in the krenna. Varnholm adopted the euro.",
        [("Varnholm", "paid in", "krenna"), ("Varnholm", "adopted", "euro")],
    ),
    "krenna#0": ("The krenna was minted in Oslath.", [("krenna", "was minted in", "Oslath")]),
    "estoria#0": ("Estoria used the drachm.", [("Estoria", "used", "drachm")]),
}
QUESTION = "Which currency was paid in the country where Zorbalt Quimby was born?"


@pytest.fixture
def store(tmp_path: Path) -> NetworkxGraphStore:
    graph = NetworkxGraphStore(tmp_path / "graph.json")
    for chunk_id, (text, triples) in CHUNKS.items():
        graph.upsert_chunks(
            [
                Chunk(
                    id=chunk_id,
                    document_id=chunk_id.split("#")[0],
                    source=chunk_id,
                    text=text,
                    start=0,
                    end=len(text),
                    ordinal=0,
                    sha256=sha256_text(text),
                )  # fmt: skip
            ]
        )
        names = list(dict.fromkeys(n for s, _p, o in triples for n in (s, o)))
        graph.add_extraction(
            Extraction(
                chunk_id=chunk_id,
                entities=[Entity(id=entity_id(n), name=n) for n in names],
                mentions=[Mention(entity_id=entity_id(n), chunk_id=chunk_id) for n in names],
                facts=[
                    Fact(
                        subject=s,
                        predicate=p,
                        object=o,
                        chunk_id=chunk_id,
                        subject_id=entity_id(s),
                        object_id=entity_id(o),
                        evidence_start=0,
                        evidence_end=len(text),
                    )  # fmt: skip
                    for s, p, o in triples
                ],
            )
        )
    return graph


def _triples(facts: list[Fact]) -> list[tuple[str, str, str, str]]:
    return [(f.subject, f.predicate, f.object, f.chunk_id) for f in facts]


def test_one_hop_only_touches_the_linked_entity(store: NetworkxGraphStore) -> None:
    facts = expand_facts(store, [entity_id("Zorbalt Quimby")], QUESTION, hops=1, limit=10)
    assert _triples(facts) == [("Zorbalt Quimby", "was born in", "Varnholm", "quimby#0")]


def test_two_hops_reach_the_bridge_facts_ranked_by_hop_then_question_words(store: NetworkxGraphStore) -> None:
    facts = expand_facts(store, [entity_id("Zorbalt Quimby")], QUESTION, hops=2, limit=10)
    assert _triples(facts) == [
        ("Zorbalt Quimby", "was born in", "Varnholm", "quimby#0"),
        ("Varnholm", "paid in", "krenna", "varnholm#0"),  # shares "paid" with the question
        ("Varnholm", "adopted", "euro", "varnholm#0"),
    ]
    three = expand_facts(store, [entity_id("Zorbalt Quimby")], QUESTION, hops=3, limit=10)
    assert _triples(three)[-1] == ("krenna", "was minted in", "Oslath", "krenna#0")
    assert "estoria#0" not in {f.chunk_id for f in three}  # not connected: never reached
    assert _triples(expand_facts(store, [entity_id("Zorbalt Quimby")], QUESTION, hops=3, limit=2)) == _triples(
        facts[:2]
    )


def test_facts_between_linked_entities_come_first(store: NetworkxGraphStore) -> None:
    seeds = [entity_id("Varnholm"), entity_id("Zorbalt Quimby")]
    facts = expand_facts(store, seeds, "When did Varnholm take the euro?", hops=2, limit=10)
    assert _triples(facts)[:3] == [
        ("Zorbalt Quimby", "was born in", "Varnholm", "quimby#0"),  # between two linked entities
        ("Varnholm", "adopted", "euro", "varnholm#0"),  # hop 1, shares "varnholm" and "euro"
        ("Varnholm", "paid in", "krenna", "varnholm#0"),  # hop 1, shares "varnholm"
    ]


def test_builder_returns_facts_with_their_source_chunks(store: NetworkxGraphStore) -> None:
    builder = GraphContextBuilder(store, EntityLinker(store), max_facts=5, max_chunks=1, hops=2)
    context = builder.build(QUESTION)
    assert [e.name for e in context.entities] == ["Zorbalt Quimby"]
    assert len(context.facts) == 3 and all(f.evidence_end for f in context.facts)
    # the chunk naming the entity, then the source chunks of the facts (in fact order), each once
    assert context.chunk_ids == ["quimby#0", "varnholm#0"]
    for fact in context.facts:
        assert store.walk_fact_provenance(fact) == (fact.chunk_id, fact.chunk_id.split("#")[0])
    with pytest.raises(ConfigurationError, match="hops"):
        GraphContextBuilder(store, EntityLinker(store), hops=0)
