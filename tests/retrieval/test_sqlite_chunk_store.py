"""SqliteChunkStore: round trips, offsets, replacement, deletes, vector id allocation and corruption."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.errors import InputError, StoreCorruptError
from core.types import Chunk
from retrieval.sqlite_chunk_store import SqliteChunkStore
from tests.retrieval.corpus import PASSAGES, make_document

LONG_TEXT = " ".join(PASSAGES.values())


@pytest.fixture
def store(tmp_path: Path) -> SqliteChunkStore:
    return SqliteChunkStore(tmp_path / "chunks.sqlite")


def test_round_trip_and_offsets(store: SqliteChunkStore) -> None:
    document, chunks = make_document("handbook", LONG_TEXT, pieces=4, title="Handbook")
    vector_ids, replaced = store.put_document(document, chunks)
    assert replaced == []
    assert len(vector_ids) == 4 and len(set(vector_ids)) == 4

    assert store.get_document("handbook") == document
    stored = store.chunks_by_vector_ids(vector_ids)
    assert [stored[v] for v in vector_ids] == chunks
    for chunk in stored.values():
        assert document.text[chunk.start : chunk.end] == chunk.text
    assert store.get_chunk("handbook#2") == chunks[2]
    assert store.get_chunk("nope") is None
    assert store.get_document("nope") is None
    assert store.get_chunks(["handbook#0", "nope", "handbook#3"]) == {
        "handbook#0": chunks[0],
        "handbook#3": chunks[3],
    }
    assert store.chunks_by_vector_ids([vector_ids[1], 987654]) == {vector_ids[1]: chunks[1]}
    assert store.document_count() == 1
    assert store.chunk_count() == 4


def test_iter_chunks_and_list_documents(store: SqliteChunkStore) -> None:
    expected: list[Chunk] = []
    for doc_id, text in PASSAGES.items():
        document, chunks = make_document(doc_id, text, pieces=2)
        store.put_document(document, chunks)
        expected.extend(chunks)
    assert list(store.iter_chunks()) == expected
    assert [d.id for d in store.list_documents()] == sorted(PASSAGES)
    assert store.document_count() == len(PASSAGES)
    assert store.chunk_count() == 2 * len(PASSAGES)


def test_replacing_a_document_returns_the_replaced_vector_ids(store: SqliteChunkStore) -> None:
    v1_doc, v1_chunks = make_document("doc", PASSAGES["refunds"], pieces=3)
    v1_ids, _ = store.put_document(v1_doc, v1_chunks)
    other_ids, _ = store.put_document(*make_document("other", PASSAGES["pets"]))

    v2_doc, v2_chunks = make_document("doc", PASSAGES["shipping"], pieces=2)
    v2_ids, replaced = store.put_document(v2_doc, v2_chunks)
    assert replaced == v1_ids
    assert min(v2_ids) > max(v1_ids + other_ids), "new vector ids are fresh"
    assert store.get_document("doc") == v2_doc
    assert store.chunks_by_vector_ids(v1_ids) == {}
    assert [c.text for c in store.chunks_by_vector_ids(v2_ids).values()] == [c.text for c in v2_chunks]
    assert store.document_count() == 2
    assert store.chunk_count() == 3


def test_vector_ids_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "chunks.sqlite"
    store = SqliteChunkStore(path)
    first, _ = store.put_document(*make_document("a", PASSAGES["office"], pieces=2))
    # Deleting the highest ids must not let them be handed out again, not even after reopening.
    assert store.delete_document("a") == first
    store.close()
    store = SqliteChunkStore(path)
    second, _ = store.put_document(*make_document("b", PASSAGES["office"], pieces=2))
    assert min(second) > max(first)
    store.close()


def test_delete_document(store: SqliteChunkStore) -> None:
    ids_a, _ = store.put_document(*make_document("a", PASSAGES["office"], pieces=2))
    ids_b, _ = store.put_document(*make_document("b", PASSAGES["pets"]))
    assert store.delete_document("a") == ids_a
    assert store.get_document("a") is None
    assert store.get_chunk("a#0") is None
    assert store.delete_document("a") == []
    assert store.get_document("b") is not None
    assert list(store.chunks_by_vector_ids(ids_b)) == ids_b
    assert store.chunk_count() == 1


def test_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "store" / "chunks.sqlite"
    with SqliteChunkStore(path) as store:
        document, chunks = make_document("doc", LONG_TEXT, pieces=3)
        vector_ids, _ = store.put_document(document, chunks)
    with SqliteChunkStore(path) as reopened:
        assert reopened.get_document("doc") == document
        assert list(reopened.chunks_by_vector_ids(vector_ids).values()) == chunks


def test_chunk_text_must_match_document_offsets(store: SqliteChunkStore) -> None:
    document, chunks = make_document("doc", PASSAGES["refunds"], pieces=2)
    bad = chunks[1].model_copy(update={"start": chunks[1].start + 1})
    with pytest.raises(InputError, match="text\\[start:end\\]"):
        store.put_document(document, [chunks[0], bad])
    foreign = chunks[0].model_copy(update={"document_id": "someone-else"})
    with pytest.raises(InputError, match="belongs to document"):
        store.put_document(document, [foreign])
    assert store.document_count() == 0
    assert store.chunk_count() == 0


def test_failed_replacement_keeps_the_old_version(store: SqliteChunkStore) -> None:
    old_doc, old_chunks = make_document("doc", PASSAGES["refunds"], pieces=2)
    old_ids, _ = store.put_document(old_doc, old_chunks)
    store.put_document(*make_document("other", PASSAGES["pets"]))

    new_doc, new_chunks = make_document("doc", PASSAGES["shipping"], pieces=2)
    clash = new_chunks[1].model_copy(update={"id": "other#0"})  # already used by another document
    with pytest.raises(InputError, match="other#0"):
        store.put_document(new_doc, [new_chunks[0], clash])
    # The transaction rolled back: the old version and its vector ids are intact.
    assert store.get_document("doc") == old_doc
    assert list(store.chunks_by_vector_ids(old_ids).values()) == old_chunks
    assert store.chunk_count() == 3


def test_concurrent_writers_get_distinct_ids(store: SqliteChunkStore) -> None:
    results: dict[str, list[int]] = {}
    errors: list[BaseException] = []

    def ingest(doc_id: str, text: str) -> None:
        try:
            for _ in range(3):  # re-putting replaces the previous version each time
                results[doc_id], _ = store.put_document(*make_document(doc_id, text, pieces=2))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=item) for item in PASSAGES.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    all_ids = [v for ids in results.values() for v in ids]
    assert len(all_ids) == len(set(all_ids)) == 2 * len(PASSAGES)
    assert store.chunk_count() == 2 * len(PASSAGES)
    assert sorted(c.document_id for c in store.chunks_by_vector_ids(all_ids).values()) == sorted(
        [d for d in PASSAGES for _ in range(2)]
    )


def test_corrupt_file_raises_store_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "chunks.sqlite"
    path.write_bytes(b"this is not an sqlite database, it is just some bytes " * 100)
    with pytest.raises(StoreCorruptError, match="chunks.sqlite"):
        SqliteChunkStore(path)
