"""Title bridge: a passage the first-hop passage names only by its title is lifted into the top of graph retrieval."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.settings import Settings, load_settings
from core.types import Chunk, sha256_text
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.retrieval import build_retriever
from pipelines.compose.stores import open_store
from pipelines.store.knowledge import KnowledgeStore
from retrieval.bridge import TitleBridge, TitleIndex
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.graph import GraphRetriever

QUESTION = "Where is the independent publishing house that published Zelda Marwick's first novel based?"

#: The first hop names the publisher only by its title; the publisher's passage shares no wording with the question,
#: while three other publishers' passages read like the question.
FIRST_HOP = (
    "marwick",
    "Zelda Marwick",
    "Zelda Marwick is an American novelist born in 1979 in Portland, Oregon. Her first novel, The Orange Eats Moths, "
    "appeared in 2010 with Quillfeather Press and was a finalist for the Believer Book Award. She teaches at Mills "
    "College and has written for the Los Angeles Times.",
)
BRIDGE = (
    "quill",
    "Quillfeather Press",
    "Quillfeather Press is a small family-run firm in Columbus, Ohio, started by Eric Obenauf and Eliza Wood.",
)
OTHERS = [
    *[
        (
            f"publisher{i}",
            f"{name} Books",
            f"{name} Books is an independent publishing house based in {city} that publishes first novels.",
        )
        for i, (name, city) in enumerate([("Harbor Lane", "Seattle"), ("Red Fern", "Austin"), ("Blue Door", "Boston")])
    ],
    *[
        (f"other{i}", topic, f"{topic} is a hobby that has nothing to do with books or novels.")
        for i, topic in enumerate(["Gardening", "Astronomy", "Chess", "Sailing"])
    ],
]


def _ingest(root: Path, embedder: SentenceTransformerEmbedder, records: list[tuple[str, str, str]]) -> KnowledgeStore:
    corpus = root / f"corpus-{len(records)}.jsonl"
    corpus.write_text("\n".join(json.dumps({"id": i, "title": t, "text": x}) for i, t, x in records), "utf-8")
    settings = load_settings(store_dir=root / "store")
    store = open_store(settings, embedder, create=True)
    build_ingestor(settings, store, embedder).ingest([corpus])
    return store


@pytest.fixture(scope="module")
def title_store(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceTransformerEmbedder) -> KnowledgeStore:
    return _ingest(tmp_path_factory.mktemp("title-bridge"), embedder, [FIRST_HOP, BRIDGE, *OTHERS])


def _settings(bridge: bool) -> Settings:
    settings = load_settings()
    settings.retrieval.graph_bridge = bridge
    return settings


def test_the_bridge_passage_named_only_by_title_is_ranked_second(
    title_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    plain = build_retriever(_settings(False), title_store, embedder, "graph").retrieve(QUESTION, top_k=3)
    bridged = build_retriever(_settings(True), title_store, embedder, "graph").retrieve(QUESTION, top_k=3)
    plain_docs = [h.chunk.document_id for h in plain]
    bridged_docs = [h.chunk.document_id for h in bridged]
    assert plain_docs[0] == "marwick" and "quill" not in plain_docs, plain_docs  # graph alone misses the bridge
    assert bridged_docs[:2] == ["marwick", "quill"], bridged_docs
    assert all(h.method == "graph" for h in bridged)
    assert bridged[0].score >= bridged[1].score >= bridged[2].score > 0


def test_the_bridge_is_on_by_default_and_can_be_turned_off(
    title_store: KnowledgeStore, embedder: SentenceTransformerEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = build_retriever(load_settings(), title_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever) and retriever.bridge == TitleBridge()
    monkeypatch.setenv("KGRAG_RETRIEVAL__GRAPH_BRIDGE", "false")
    retriever = build_retriever(load_settings(), title_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever) and retriever.bridge is None and retriever.titles is None


def test_the_bridge_also_lifts_on_the_dense_fallback(
    title_store: KnowledgeStore, embedder: SentenceTransformerEmbedder
) -> None:
    question = "what did the novel about oranges eating moths come out with"  # links no entity: dense fallback
    retriever = build_retriever(_settings(True), title_store, embedder, "graph")
    assert isinstance(retriever, GraphRetriever)
    assert not [e for e in retriever.linker.link(question) if e.id in retriever.matrix.entity_index]
    dense = build_retriever(_settings(True), title_store, embedder, "dense").retrieve(question, top_k=3)
    assert dense[0].chunk.document_id == "marwick" and "quill" not in [h.chunk.document_id for h in dense]
    bridged = retriever.retrieve(question, top_k=3)
    assert [h.chunk.document_id for h in bridged][:2] == ["marwick", "quill"]


def test_a_store_with_the_bridge_added_later_lifts_it(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    store = _ingest(tmp_path, embedder, [FIRST_HOP, *OTHERS])
    before = build_retriever(_settings(True), store, embedder, "graph")
    assert "quill" not in [h.chunk.document_id for h in before.retrieve(QUESTION, top_k=3)]
    store = _ingest(tmp_path, embedder, [FIRST_HOP, BRIDGE, *OTHERS])  # a new snapshot: a retriever per store state
    after = build_retriever(_settings(True), store, embedder, "graph")
    assert [h.chunk.document_id for h in after.retrieve(QUESTION, top_k=3)][:2] == ["marwick", "quill"]


def _chunk(document_id: str, title: str, text: str = "", ordinal: int = 0) -> Chunk:
    return Chunk(
        id=f"{document_id}#{ordinal}",
        document_id=document_id,
        source=document_id,
        title=title,
        text=text or title,
        start=0,
        end=len(text or title),
        ordinal=ordinal,
        sha256=sha256_text(text or title),
    )


def test_title_index_matches_whole_words_qualifiers_and_names_only() -> None:
    index = TitleIndex.build(
        [
            _chunk("film", "Big Hero 6 (film)"),
            _chunk("ny", "New York"),
            _chunk("nyc", "New York City"),
            _chunk("radio", "Radio"),
            _chunk("year", "1998"),
            _chunk("york", "York", ordinal=1),
            _chunk("york", "York", ordinal=0),
        ]
    )
    text = "Big Hero 6 opened in New York City in 1998; the radio ads ran in Yorkshire. Radio loved it."
    # leftmost-longest: "New York City" names neither "New York" nor "York"; no "York" inside "Yorkshire"; no "1998"
    assert index.named_in(text) == ["film", "nyc", "radio"]
    assert index.named_in("New York and York") == ["ny", "york"]
    assert index.named_in("the radio and big hero 6") == ["film"]  # a lower-case mention of a capitalised title
    assert index.chunks_of["york"] == ("york#0", "york#1")
    assert index.document_of["york#1"] == "york"
    exact = TitleIndex.build([_chunk("film", "Big Hero 6 (film)")], strip_qualifier=False)
    assert exact.named_in("Big Hero 6 opened") == [] and exact.named_in("Big Hero 6 (film) opened") == ["film"]


def test_lift_scores_each_read_passages_best_named_documents_below_it() -> None:
    chunks = [
        _chunk("a", "Alpha", "Alpha names Gamma, Delta and Epsilon, and also Beta."),
        _chunk("b", "Beta", "Beta names Zeta."),
        _chunk("c", "Gamma"),
        _chunk("d", "Delta"),
        _chunk("e", "Epsilon"),
        _chunk("z", "Zeta"),
    ]
    titles = TitleIndex.build(chunks)
    scores = {"a#0": 2.0, "b#0": 1.5, "d#0": 0.5, "e#0": 0.1}
    text = {c.id: c.text for c in chunks}
    bridge = TitleBridge(scan=2, per_passage=2, inherit=0.5)
    lifted = bridge.lift(
        sorted(scores.items(), key=lambda kv: -kv[1]),
        lambda cid: scores.get(cid, 0.0),
        lambda ids: {cid: text[cid] for cid in ids},
        titles,
    )
    # Alpha's two best named documents other than the read Beta: Delta (0.5), Epsilon (0.1); Gamma (0) is third.
    assert lifted == pytest.approx({"d#0": 0.5 * 2.0 + 0.5 * 0.5, "e#0": 0.5 * 2.0 + 0.5 * 0.1, "z#0": 0.5 * 1.5})
    with pytest.raises(ConfigurationError):
        TitleBridge(inherit=0.0)
    with pytest.raises(ConfigurationError):
        TitleBridge(scan=0)


def test_a_title_shared_by_too_many_documents_is_not_followed() -> None:
    notes = [_chunk(f"notes-{i}", "Meeting Notes") for i in range(4)]
    chunks = [*notes, _chunk("budget", "Budget")]
    text = "See the Meeting Notes and the Budget."
    assert TitleIndex.build(chunks, max_documents=4).named_in(text) == [*(f"notes-{i}" for i in range(4)), "budget"]
    assert TitleIndex.build(chunks, max_documents=3).named_in(text) == ["budget"]
    assert TitleBridge(max_title_documents=3).index(chunks).named_in(text) == ["budget"]
    with pytest.raises(ConfigurationError, match="max_title_documents"):
        TitleBridge(max_title_documents=0)
