"""The embedded graph's file, node-link JSON, worked on as parsed data: read, counted, pruned and written without
building the networkx graph.

A ``kgrag delete`` changes a few chunks of a graph that every other part of the run leaves alone. Building the
networkx ``MultiDiGraph`` of a 10k-document store (30 MB) costs about three times its parse, and writing it back
through ``node_link_data`` copies every node and edge again; a delete needs neither. The functions here give the
same results as :class:`kg.networkx_store.NetworkxGraphStore`'s own methods over the built graph (the tests compare
both, down to the bytes written), on the parsed document: ``{"directed", "multigraph", "graph", "nodes": [{"id",
...}], "edges": [{"source", "target", "key", ...}]}``, as networkx's ``node_link_data(..., edges="edges")`` writes.
"""

from __future__ import annotations

import contextlib
import gc
import operator
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from core.errors import StoreCorruptError

DOCUMENT_PREFIX = "doc:"
CHUNK_PREFIX = "chunk:"

#: Edge kinds (the ``kind`` attribute of every edge).
CONTAINS = "contains"
MENTIONS = "mentions"
FACT = "fact"

#: The graph attribute kgrag's writer sets on a tidy document (see :func:`is_tidy`): ``[nodes, edges]``, its counts.
#: A file another tool wrote lacks it, and one edited since no longer matches it: both are checked.
TIDY_MARK = "kgrag_tidy"

#: Node kind -> its key in :func:`count`'s result.
_PLURALS = {"document": "documents", "chunk": "chunks", "entity": "entities"}
_SOURCE = operator.itemgetter("source")
_TARGET = operator.itemgetter("target")


def document_node(document_id: str) -> str:
    """Node id of a document."""
    return DOCUMENT_PREFIX + document_id


def chunk_node(chunk_id: str) -> str:
    """Node id of a chunk."""
    return CHUNK_PREFIX + chunk_id


def fact_key(predicate: str, chunk_id: str) -> str:
    """Edge key of a fact: the same predicate from the same chunk is one edge, however often it is added."""
    return f"{predicate}|{chunk_id}"


def empty_counts() -> dict[str, int]:
    """The counts of an empty graph (also the keys of what a removal reports)."""
    return {"documents": 0, "chunks": 0, "entities": 0, "mentions": 0, "facts": 0}


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside the block (reference counting still frees memory); the collector is
    switched back on after it unless it was already off. Parsing or building a large graph makes millions of
    dicts and strings that hold no cycles, yet each collection would walk all of them (it doubled a load's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read(path: Path) -> dict[str, Any]:
    """The parsed node-link document of ``path``; StoreCorruptError naming the file and the fix when it is not one
    (unreadable, not JSON, no nodes or edges, or an undirected or simple graph)."""
    try:
        with gc_paused():
            data = orjson.loads(path.read_bytes())
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("nodes"), list)
            or not isinstance(data.get("edges"), list)
        ):
            raise ValueError("not a node-link graph (no 'nodes'/'edges' lists)")
        if data.get("directed") is False or data.get("multigraph") is False:
            raise ValueError("not a directed multigraph")
        if not all(isinstance(node, dict) and "id" in node for node in data["nodes"]):
            raise ValueError("a node without an id")
        if not all(isinstance(edge, dict) and "source" in edge and "target" in edge for edge in data["edges"]):
            raise ValueError("an edge without its source or target")
    except (OSError, ValueError, TypeError) as exc:
        raise StoreCorruptError(
            f"graph file {path} cannot be read: {type(exc).__name__}: {exc}",
            hint="delete it and ingest the documents again",
        ) from exc
    return data


def is_tidy(data: dict[str, Any]) -> bool:
    """Whether the document is one this module can work on as it is, as kgrag writes them: string node ids, each
    listed once; every edge between listed nodes, with a string key, each (source, target, key) once. networkx
    reads other documents too (it merges repeats and numbers keyless edges), so they are built as graphs instead."""
    ids = [node["id"] for node in data["nodes"]]
    known = set(ids)
    if len(known) != len(ids) or not all(type(node_id) is str for node_id in known):
        return False
    edges = data["edges"]
    sources = [edge["source"] for edge in edges]
    targets = [edge["target"] for edge in edges]
    keys = [edge.get("key") for edge in edges]
    # endpoints among the (string) ids are strings; the set operations run in C, which a 10k-document graph's
    # 140k edges need (a loop checking each edge took as long as parsing the file)
    try:
        return (
            known.issuperset(sources)
            and known.issuperset(targets)
            and all(type(key) is str for key in keys)
            and len(set(zip(sources, targets, keys, strict=True))) == len(edges)
        )
    except TypeError:  # an unhashable endpoint: building the graph reports the file as corrupt
        return False


def take_tidy_mark(data: dict[str, Any]) -> bool:
    """Remove kgrag's tidy mark from the document's graph attributes (a built graph must not carry it); whether it
    was there and matches the document's node and edge counts, so that :func:`is_tidy` need not run (0.15 s for a
    10k-document graph)."""
    attributes = data.get("graph")
    mark = attributes.pop(TIDY_MARK, None) if isinstance(attributes, dict) else None
    return mark == [len(data["nodes"]), len(data["edges"])]


def write(path: Path, data: dict[str, Any], *, tidy: bool | None = None) -> None:
    """Write ``data`` as compact JSON to a temporary file beside ``path``, fsync it, then ``os.replace`` it. A tidy
    document (``tidy``, or by :func:`is_tidy` when None) is written with the tidy mark, any other without it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with gc_paused():
        if tidy is None:
            tidy = is_tidy(data)
        attributes = data.get("graph")
        if isinstance(attributes, dict):
            attributes = {k: v for k, v in attributes.items() if k != TIDY_MARK}
            if tidy:
                attributes[TIDY_MARK] = [len(data["nodes"]), len(data["edges"])]
            data = {**data, "graph": attributes}
        text = orjson.dumps(data)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def count(data: dict[str, Any]) -> dict[str, int]:
    """Numbers of documents, chunks, entities, mentions and facts in the document."""
    return count_kinds((node.get("kind") for node in data["nodes"]), (edge.get("kind") for edge in data["edges"]))


def count_kinds(node_kinds: Iterable[Any], edge_kinds: Iterable[Any]) -> dict[str, int]:
    """Numbers of documents, chunks, entities, mentions and facts, from the ``kind`` of every node and edge."""
    result = empty_counts()
    for kind in node_kinds:
        plural = _PLURALS.get(kind)
        if plural:
            result[plural] += 1
    for kind in edge_kinds:
        if kind == MENTIONS:
            result["mentions"] += 1
        elif kind == FACT:
            result["facts"] += 1
    return result


def remove_chunks(data: dict[str, Any], chunk_ids: Iterable[str]) -> dict[str, int]:
    """Remove chunks and what only they supported from the document, in place, as
    :meth:`kg.base.GraphStore.remove_chunks` states it; the counts of what went.

    One pass over the edges drops those of the removed chunk nodes (counting their mentions) and the facts drawn
    from the removed chunks; then the entities those touched that no kept edge reaches, and the documents left
    without a chunk, go with their edges. The kept nodes and edges keep their order, so the file written after is
    the one networkx would write for the same graph.
    """
    removed = empty_counts()
    ids = set(chunk_ids)
    kinds = {node["id"]: node.get("kind") for node in data["nodes"]}
    gone = {CHUNK_PREFIX + c for c in ids if kinds.get(CHUNK_PREFIX + c) == "chunk"}
    touched_entities: set[Any] = set()
    touched_documents: set[Any] = set()
    kept: list[dict[str, Any]] = []
    for edge in data["edges"]:
        u, v, kind = edge["source"], edge["target"], edge.get("kind")
        if kind == FACT and edge.get("chunk_id") in ids:
            removed["facts"] += 1
            touched_entities.update((u, v))
        elif u in gone or v in gone:
            if u in gone and kind == MENTIONS:
                removed["mentions"] += 1
                touched_entities.add(v)
            if v in gone and kinds.get(u) == "document":
                touched_documents.add(u)
        else:
            kept.append(edge)
    entities = {e for e in touched_entities if kinds.get(e) == "entity" and e not in gone}
    if entities:  # those no kept edge reaches go
        entities -= set(map(_SOURCE, kept)) | set(map(_TARGET, kept))
    documents = touched_documents - {
        edge["source"] for edge in kept if edge["source"] in touched_documents and kinds.get(edge["target"]) == "chunk"
    }
    removed.update(chunks=len(gone), entities=len(entities), documents=len(documents))
    dropped = gone | entities | documents
    if documents:
        kept = [edge for edge in kept if edge["source"] not in documents and edge["target"] not in documents]
    data["edges"] = kept
    if dropped:
        data["nodes"] = [node for node in data["nodes"] if node["id"] not in dropped]
    return removed
