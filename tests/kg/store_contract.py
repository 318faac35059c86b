"""The behaviour every :class:`kg.base.GraphStore` must have, as a mixin of pytest tests.

A test class for an implementation inherits :class:`GraphStoreContract` and provides two fixtures:
``store`` (an empty store) and ``reopen`` (a callable returning a fresh store instance over whatever
``store.save()`` persisted).
"""

from __future__ import annotations

from collections.abc import Callable

from core.types import Entity, Extraction, Fact, Mention
from kg.base import GraphStore
from kg.names import entity_id
from kg.offline_extractor import OfflineExtractor
from tests.kg.helpers import CURIE_TEXT, chunk_document, make_document, musique_document

CURIE = entity_id("Marie Curie")
WARSAW = entity_id("Warsaw")
PIERRE = entity_id("Pierre Curie")
NOBEL = entity_id("Nobel Prize")


def _fact_set(facts: list[Fact]) -> set[tuple[str, str, str, str]]:
    return {(f.subject_id, f.predicate, f.object_id, f.chunk_id) for f in facts}


def ingest_real(store: GraphStore) -> list[Extraction]:
    """Documents (a hand-written one and real MuSiQue passages), chunked and extracted offline."""
    extractor = OfflineExtractor()
    documents = [
        make_document("curie", CURIE_TEXT, "Curie"),
        musique_document("musdev-00758"),
        musique_document("musdev-00001"),
    ]
    extractions: list[Extraction] = []
    for document in documents:
        chunks = chunk_document(document, sentences_per_chunk=2)
        store.upsert_document(document)
        store.upsert_chunks(chunks)
        for chunk in chunks:
            extraction = extractor.extract(chunk)
            store.add_extraction(extraction)
            extractions.append(extraction)
    return extractions


def ingest_hand_built(store: GraphStore) -> None:
    """Two chunks of one document: A says Curie was born in Warsaw, B that she won the Nobel Prize."""
    document = make_document("bio", "Marie Curie was born in Warsaw. Marie Curie won the Nobel Prize.")
    chunks = chunk_document(document, sentences_per_chunk=1)
    assert [c.id for c in chunks] == ["bio#0", "bio#1"]
    store.upsert_document(document)
    store.upsert_chunks(chunks)
    curie = Entity(id=CURIE, name="Marie Curie", type="person")
    store.add_extraction(
        Extraction(
            chunk_id="bio#0",
            entities=[curie, Entity(id=WARSAW, name="Warsaw", type="place")],
            mentions=[
                Mention(entity_id=CURIE, chunk_id="bio#0", start=0, end=11),
                Mention(entity_id=WARSAW, chunk_id="bio#0", start=24, end=30),
            ],
            facts=[
                Fact(
                    subject="Marie Curie",
                    predicate="was born in",
                    object="Warsaw",
                    chunk_id="bio#0",
                    subject_id=CURIE,
                    object_id=WARSAW,
                    evidence_start=0,
                    evidence_end=31,
                )
            ],
            extractor="test",
        )
    )
    store.add_extraction(
        Extraction(
            chunk_id="bio#1",
            entities=[curie, Entity(id=NOBEL, name="Nobel Prize", type="award")],
            mentions=[
                Mention(entity_id=CURIE, chunk_id="bio#1", start=0, end=11),
                Mention(entity_id=NOBEL, chunk_id="bio#1", start=20, end=31),
            ],
            facts=[
                Fact(
                    subject="Marie Curie",
                    predicate="won",
                    object="Nobel Prize",
                    chunk_id="bio#1",
                    subject_id=CURIE,
                    object_id=NOBEL,
                )
            ],
            extractor="test",
        )
    )


class GraphStoreContract:
    """Tests every GraphStore implementation must pass (fixtures ``store`` and ``reopen`` required)."""

    def test_empty_store_counts_zero(self, store: GraphStore) -> None:
        assert store.counts() == {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}
        assert store.entity_names() == {}
        assert store.facts_about([CURIE], limit=10) == []
        assert store.chunks_mentioning([CURIE], limit=10) == []
        assert store.get_entity(CURIE) is None
        assert not store.has_chunk("bio#0")

    def test_documents_and_chunks(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        counts = store.counts()
        assert counts["documents"] == 1
        assert counts["chunks"] == 2
        assert store.has_chunk("bio#0") and store.has_chunk("bio#1")
        assert not store.has_chunk("bio#2")

    def test_upsert_is_idempotent(self, store: GraphStore) -> None:
        extractions = ingest_real(store)
        first = store.counts()
        assert first["entities"] > 10 and first["facts"] > 3 and first["mentions"] >= first["entities"]
        facts_before = _fact_set(store.facts_about(store.entity_names().values(), limit=10_000))
        ingest_real(store)
        for extraction in extractions:
            store.add_extraction(extraction)
        assert store.counts() == first
        assert _fact_set(store.facts_about(store.entity_names().values(), limit=10_000)) == facts_before

    def test_facts_keep_their_source_chunk(self, store: GraphStore) -> None:
        extractions = ingest_real(store)
        expected = {(f.subject_id, f.predicate, f.object_id, f.chunk_id) for e in extractions for f in e.facts}
        assert expected
        stored = _fact_set(store.facts_about({s for s, _, _, _ in expected}, limit=10_000))
        assert expected <= stored
        assert store.counts()["facts"] == len(expected)

    def test_facts_about(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        facts = store.facts_about([CURIE], limit=10)
        assert _fact_set(facts) == {
            (CURIE, "was born in", WARSAW, "bio#0"),
            (CURIE, "won", NOBEL, "bio#1"),
        }
        born = next(f for f in facts if f.predicate == "was born in")
        assert (born.subject, born.object) == ("Marie Curie", "Warsaw")
        assert (born.evidence_start, born.evidence_end) == (0, 31)
        # The object side finds it too, and facts between two given entities come first.
        assert _fact_set(store.facts_about([WARSAW], limit=10)) == {(CURIE, "was born in", WARSAW, "bio#0")}
        assert store.facts_about([NOBEL, CURIE], limit=1)[0].predicate == "won"
        assert len(store.facts_about([CURIE], limit=1)) == 1
        assert store.facts_about(["ent:nobody"], limit=10) == []

    def test_same_statement_from_two_chunks_is_two_facts(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        again = Fact(subject="Marie Curie", predicate="won", object="Nobel Prize", chunk_id="bio#0")
        store.add_extraction(Extraction(chunk_id="bio#0", facts=[again]))
        won = [f for f in store.facts_about([CURIE], limit=10) if f.predicate == "won"]
        assert sorted(f.chunk_id for f in won) == ["bio#0", "bio#1"]

    def test_chunks_mentioning_ranks_by_entities_covered(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        assert store.chunks_mentioning([WARSAW, CURIE], limit=10) == ["bio#0", "bio#1"]
        assert store.chunks_mentioning([NOBEL, CURIE], limit=10) == ["bio#1", "bio#0"]
        assert store.chunks_mentioning([CURIE, NOBEL], limit=1) == ["bio#1"]
        assert store.chunks_mentioning([WARSAW], limit=10) == ["bio#0"]
        assert store.chunks_mentioning(["ent:nobody"], limit=10) == []

    def test_entities_and_names(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        entity = store.get_entity(CURIE)
        assert entity is not None
        assert (entity.name, entity.type) == ("Marie Curie", "person")
        names = store.entity_names()
        assert names["marie curie"] == CURIE
        assert names["nobel prize"] == NOBEL
        assert store.counts()["entities"] == 3
        assert store.counts()["mentions"] == 4

    def test_removing_a_chunk_removes_only_what_it_alone_supports(self, store: GraphStore) -> None:
        ingest_hand_built(store)
        again = Fact(subject="Marie Curie", predicate="won", object="Nobel Prize", chunk_id="bio#0")
        store.add_extraction(Extraction(chunk_id="bio#0", facts=[again]))
        removed = store.remove_chunks(["bio#0"])
        assert removed == {"chunks": 1, "mentions": 2, "facts": 2, "entities": 1, "documents": 0}
        assert not store.has_chunk("bio#0") and store.has_chunk("bio#1")
        assert store.get_entity(WARSAW) is None  # only bio#0 mentioned it
        assert store.get_entity(CURIE) is not None and store.get_entity(NOBEL) is not None
        assert _fact_set(store.facts_about([CURIE], limit=10)) == {(CURIE, "won", NOBEL, "bio#1")}
        assert store.chunks_mentioning([CURIE], limit=10) == ["bio#1"]
        assert store.counts() == {"documents": 1, "chunks": 1, "entities": 2, "mentions": 2, "facts": 1}

    def test_removing_every_chunk_empties_the_store(self, store: GraphStore) -> None:
        extractions = ingest_real(store)
        ingest_hand_built(store)
        chunk_ids = {e.chunk_id for e in extractions} | {"bio#0", "bio#1"}
        before = store.counts()
        removed = store.remove_chunks(chunk_ids)
        assert removed["chunks"] == before["chunks"] and removed["facts"] == before["facts"]
        assert store.counts() == {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}
        assert store.remove_chunks(["no-such-chunk"]) == {
            "chunks": 0,
            "mentions": 0,
            "facts": 0,
            "entities": 0,
            "documents": 0,
        }

    def test_entity_from_a_fact_alone_is_created(self, store: GraphStore) -> None:
        fact = Fact(subject="Ada Lovelace", predicate="worked with", object="Charles Babbage", chunk_id="x#0")
        store.add_extraction(Extraction(chunk_id="x#0", facts=[fact]))
        ada = store.get_entity(entity_id("Ada Lovelace"))
        assert ada is not None and ada.name == "Ada Lovelace"
        [stored] = store.facts_about([entity_id("Charles Babbage")], limit=5)
        assert (stored.subject, stored.object, stored.chunk_id) == ("Ada Lovelace", "Charles Babbage", "x#0")

    def test_persistence_round_trip(self, store: GraphStore, reopen: Callable[[], GraphStore]) -> None:
        ingest_real(store)
        ingest_hand_built(store)
        store.save()
        again = reopen()
        assert again.counts() == store.counts()
        assert again.entity_names() == store.entity_names()
        ids = list(store.entity_names().values())
        assert _fact_set(again.facts_about(ids, limit=10_000)) == _fact_set(store.facts_about(ids, limit=10_000))
        assert again.facts_about([CURIE], limit=10) == store.facts_about([CURIE], limit=10)
        ranked = again.chunks_mentioning([WARSAW, CURIE], limit=10)
        assert ranked == store.chunks_mentioning([WARSAW, CURIE], limit=10)
        assert set(ranked[:2]) == {"bio#0", "curie#0"}  # the two chunks naming both entities lead
        assert again.get_entity(CURIE) == store.get_entity(CURIE)

    def test_provenance_walk_fact_to_chunk_to_document(self, store: GraphStore) -> None:
        extractions = ingest_real(store)
        facts = store.facts_about(store.entity_names().values(), limit=10_000)
        assert facts
        chunk_docs = {e.chunk_id: e.chunk_id.split("#")[0] for e in extractions}
        for fact in facts:
            assert store.walk_fact_provenance(fact) == (fact.chunk_id, chunk_docs[fact.chunk_id])
        born = Fact(subject="Marga Faulstich", predicate="was born in", object="Weimar", chunk_id="musdev-00758#0")
        assert store.walk_fact_provenance(born) == ("musdev-00758#0", "musdev-00758")
        missing = born.model_copy(update={"chunk_id": "musdev-00758#1"})
        assert store.walk_fact_provenance(missing) is None
        made_up = born.model_copy(update={"predicate": "was not born in"})
        assert store.walk_fact_provenance(made_up) is None
