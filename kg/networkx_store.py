"""The default graph store: a networkx MultiDiGraph kept in memory and persisted as node-link JSON.

The file is read and written with orjson, and the graph is built straight into networkx's adjacency dicts (the
dict-of-dict-of-dict structure networkx documents for subclasses) rather than edge by edge through ``add_edge``:
a 10k-document store's 30 MB graph loads in about a third of the time. The graph is built on first use: until a
read or a write needs it, the store keeps the parsed file (:mod:`kg.node_link`), whose counts, chunk removals and
save need no graph, so ``kgrag delete`` neither builds nor serialises one. The file is the same node-link JSON as
networkx's ``node_link_data`` (compact separators).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import StoreCorruptError
from core.types import Chunk, Document, Entity, Extraction, Fact
from kg import node_link
from kg.names import ENTITY_PREFIX, entity_id, normalize_name
from kg.node_link import CHUNK_PREFIX, CONTAINS, DOCUMENT_PREFIX, FACT, MENTIONS, chunk_node, document_node, fact_key

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["NetworkxGraphStore"]


class NetworkxGraphStore:
    """A :class:`kg.base.GraphStore` over a networkx ``MultiDiGraph``, saved to one JSON file.

    Node ids are ``doc:<id>``, ``chunk:<id>`` and ``ent:<normalised name>``; each node has a ``kind``
    attribute (``document``, ``chunk`` or ``entity``). Edges: document -contains-> chunk, chunk -mentions->
    entity (key ``mentions|start|end``), entity -fact-> entity (key ``predicate|chunk_id``). Every write is
    idempotent. The file, if it exists, is loaded by the constructor; :meth:`save` replaces it atomically.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._graph: nx.MultiDiGraph | None = None
        #: The file as parsed, until :attr:`graph` is first needed (then None).
        self._data: dict[str, Any] | None = None
        #: Whether :attr:`_data` is known to be a document :mod:`kg.node_link` can work on: by kgrag's tidy mark,
        #: or checked (only writes and counts work on it; readers build the graph, and need no check).
        self._checked = False
        #: Guards :attr:`_data`: threads of one request (retrieval, graph context) may ask for the graph at once,
        #: and building it consumes the parsed file.
        self._data_lock = threading.Lock()
        #: :meth:`counts` of the graph as it is (a pass over every edge): dropped by every write but
        #: :meth:`remove_chunks`, which knows what it removed.
        self._counts: dict[str, int] | None = None
        if not self.path.exists():
            self._graph = _empty_graph()
            return
        self._data = node_link.read(self.path)
        self._checked = node_link.take_tidy_mark(self._data)  # written tidy by kgrag: no check needed

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph (built from the parsed file the first time it is asked for)."""
        graph = self._graph
        if graph is None:
            with self._data_lock:
                if self._graph is None:
                    assert self._data is not None
                    self._graph, self._data = self._build(self._data), None
                graph = self._graph
        return graph

    def _build(self, data: dict[str, Any]) -> nx.MultiDiGraph:
        try:
            with node_link.gc_paused():
                return _node_link_multidigraph(data)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise StoreCorruptError(
                f"graph file {self.path} cannot be read: {type(exc).__name__}: {exc}",
                hint="delete it and ingest the documents again",
            ) from exc

    def _unbuilt_data(self) -> dict[str, Any] | None:
        """The parsed file, while the graph is unbuilt and the file is one :mod:`kg.node_link` works on as it is;
        else None. A file another tool wrote (repeated nodes, keyless edges) is built as networkx reads it. Call
        with :attr:`_data_lock` held."""
        if self._data is not None and not self._checked:
            with node_link.gc_paused():
                tidy = node_link.is_tidy(self._data)
            self._checked = True
            if not tidy:
                self._graph, self._data = self._build(self._data), None
        return self._data

    # ----- persistence -----

    def save(self) -> None:
        """Write the graph as node-link JSON to a temporary file beside the target, then ``os.replace`` it."""
        with self._data_lock:
            data = self._unbuilt_data()
            if data is not None:  # never built: the parsed file, as changed by remove_chunks
                node_link.write(self.path, data, tidy=True)  # checked, and pruning keeps it tidy
                return
        with node_link.gc_paused():
            data = _node_link_data(self.graph)
        node_link.write(self.path, data)

    # ----- writes -----

    def upsert_document(self, document: Document) -> None:
        """Add or update a document node (metadata only: the text lives in the document store)."""
        self._counts = None
        self.graph.add_node(
            document_node(document.id),
            kind="document",
            source=document.source,
            title=document.title,
            sha256=document.sha256,
            media_type=document.media_type,
        )

    def upsert_chunks(self, chunks: Sequence[Chunk]) -> None:
        """Add or update chunk nodes and their document -contains-> chunk edges."""
        self._counts = None
        for chunk in chunks:
            node = chunk_node(chunk.id)
            self.graph.add_node(
                node,
                kind="chunk",
                document_id=chunk.document_id,
                source=chunk.source,
                title=chunk.title,
                start=chunk.start,
                end=chunk.end,
                ordinal=chunk.ordinal,
                sha256=chunk.sha256,
            )
            doc = document_node(chunk.document_id)
            if doc not in self.graph:
                self.graph.add_node(doc, kind="document", source=chunk.source, title=chunk.title)
            self.graph.add_edge(doc, node, key=CONTAINS, kind=CONTAINS)

    def _ensure_chunk(self, chunk_id: str) -> str:
        node = chunk_node(chunk_id)
        if node not in self.graph:
            self.graph.add_node(node, kind="chunk", document_id="")
        return node

    def _merge_entity(self, ent_id: str, name: str, type_: str = "thing", description: str = "") -> None:
        if ent_id in self.graph:
            attrs = self.graph.nodes[ent_id]
            forms: list[str] = attrs.setdefault("surface_forms", [])
            if name and name not in forms:
                forms.append(name)
            if attrs.get("type", "thing") == "thing" and type_ and type_ != "thing":
                attrs["type"] = type_
            if len(description) > len(attrs.get("description", "")):
                attrs["description"] = description
            return
        self.graph.add_node(
            ent_id,
            kind="entity",
            name=name,
            type=type_ or "thing",
            description=description,
            surface_forms=[name] if name else [],
        )

    def add_extraction(self, extraction: Extraction) -> None:
        """Add one chunk's entities, mentions and facts; adding the same extraction again changes nothing."""
        self._counts = None
        chunk = self._ensure_chunk(extraction.chunk_id)
        for entity in extraction.entities:
            self._merge_entity(entity.id, entity.name, entity.type, entity.description)
        for mention in extraction.mentions:
            if mention.entity_id not in self.graph:
                self._merge_entity(mention.entity_id, mention.entity_id.removeprefix(ENTITY_PREFIX))
            source = chunk
            if mention.chunk_id != extraction.chunk_id:
                source = self._ensure_chunk(mention.chunk_id)
            self.graph.add_edge(
                source,
                mention.entity_id,
                key=f"{MENTIONS}|{mention.start}|{mention.end}",
                kind=MENTIONS,
                start=mention.start,
                end=mention.end,
            )
        for fact in extraction.facts:
            subject_id = fact.subject_id or entity_id(fact.subject)
            object_id = fact.object_id or entity_id(fact.object)
            self._merge_entity(subject_id, fact.subject)
            self._merge_entity(object_id, fact.object)
            self._ensure_chunk(fact.chunk_id)
            self.graph.add_edge(
                subject_id,
                object_id,
                key=fact_key(fact.predicate, fact.chunk_id),
                kind=FACT,
                predicate=fact.predicate,
                chunk_id=fact.chunk_id,
                evidence_start=fact.evidence_start,
                evidence_end=fact.evidence_end,
            )

    def remove_chunks(self, chunk_ids: Iterable[str]) -> dict[str, int]:
        """Remove chunks and whatever only they supported; see :meth:`kg.base.GraphStore.remove_chunks`."""
        with self._data_lock:
            data = self._unbuilt_data()
            if data is not None:
                with node_link.gc_paused():
                    removed = node_link.remove_chunks(data, chunk_ids)
        if data is None:
            removed = self._remove_from_graph(set(chunk_ids))
        if self._counts is not None:  # what went is exactly what was counted
            self._counts = {kind: n - removed[kind] for kind, n in self._counts.items()}
        return removed

    def _remove_from_graph(self, ids: set[str]) -> dict[str, int]:
        removed = node_link.empty_counts()
        nodes = [chunk_node(c) for c in ids if self._is(chunk_node(c), "chunk")]
        touched_entities: set[str] = set()
        touched_documents: set[str] = set()
        for node in nodes:
            for _, ent, data in self.graph.out_edges(node, data=True):
                if data.get("kind") == MENTIONS:
                    removed["mentions"] += 1
                    touched_entities.add(ent)
            touched_documents.update(u for u, _ in self.graph.in_edges(node) if self._is(u, "document"))
        stale_facts = [
            (u, v, k)
            for u, nbrs in self.graph.adjacency()
            for v, keyed in nbrs.items()
            for k, data in keyed.items()
            if data.get("kind") == FACT and data.get("chunk_id") in ids
        ]
        for u, v, k in stale_facts:
            self.graph.remove_edge(u, v, key=k)
            touched_entities.update((u, v))
        removed["facts"] = len(stale_facts)
        self.graph.remove_nodes_from(nodes)
        removed["chunks"] = len(nodes)
        for ent in touched_entities:
            if self._is(ent, "entity") and self.graph.degree(ent) == 0:
                self.graph.remove_node(ent)
                removed["entities"] += 1
        for doc in touched_documents:
            if not any(self._is(v, "chunk") for v in self.graph.successors(doc)):
                self.graph.remove_node(doc)
                removed["documents"] += 1
        return removed

    # ----- reads -----

    def _is(self, node: str, kind: str) -> bool:
        return node in self.graph and self.graph.nodes[node].get("kind") == kind

    def get_entity(self, entity_id: str) -> Entity | None:
        """The entity with this id, or None."""
        if not self._is(entity_id, "entity"):
            return None
        attrs = self.graph.nodes[entity_id]
        return Entity(
            id=entity_id,
            name=attrs.get("name", ""),
            type=attrs.get("type", "thing"),
            description=attrs.get("description", ""),
        )

    def surface_forms(self, entity_id: str) -> list[str]:
        """Every spelling of the entity seen in the extractions, first seen first."""
        if not self._is(entity_id, "entity"):
            return []
        return list(self.graph.nodes[entity_id].get("surface_forms", []))

    def entity_names(self) -> dict[str, str]:
        """Normalised name -> entity id: every entity's own name, then its surface forms (entities in id order).

        An entity's own name always maps to itself; a surface form shared by several entities maps to the first
        of them by id, so every store gives the same answer.
        """
        entities = sorted(node for node, kind in self.graph.nodes(data="kind") if kind == "entity")
        names = {node.removeprefix(ENTITY_PREFIX): node for node in entities}
        for node in entities:
            for form in self.graph.nodes[node].get("surface_forms", []):
                normalised = normalize_name(form)
                if normalised:
                    names.setdefault(normalised, node)
        return names

    def _fact(self, subject_id: str, object_id: str, attrs: dict[str, Any]) -> Fact:
        return Fact(
            subject=self.graph.nodes[subject_id].get("name", subject_id),
            predicate=attrs["predicate"],
            object=self.graph.nodes[object_id].get("name", object_id),
            chunk_id=attrs["chunk_id"],
            subject_id=subject_id,
            object_id=object_id,
            evidence_start=attrs.get("evidence_start"),
            evidence_end=attrs.get("evidence_end"),
        )

    def facts_about(self, entity_ids: Iterable[str], *, limit: int) -> list[Fact]:
        """Facts touching the entities: those between two of them first, then the rest.

        Within each group, in the order of ``entity_ids``: each entity's outgoing facts (by object id, then key),
        then its incoming facts (by subject id, then key).
        """
        wanted = [e for e in dict.fromkeys(entity_ids) if self._is(e, "entity")]
        wanted_set = set(wanted)
        seen: set[tuple[str, str, str]] = set()
        between: list[Fact] = []
        touching: list[Fact] = []
        for ent in wanted:
            edges = [
                *sorted(self.graph.out_edges(ent, keys=True, data=True), key=lambda e: (e[1], e[2])),
                *sorted(self.graph.in_edges(ent, keys=True, data=True), key=lambda e: (e[0], e[2])),
            ]
            for u, v, key, attrs in edges:
                if attrs.get("kind") != FACT or (u, v, key) in seen:
                    continue
                seen.add((u, v, key))
                fact = self._fact(u, v, attrs)
                (between if u in wanted_set and v in wanted_set else touching).append(fact)
        return (between + touching)[: max(limit, 0)]

    def chunks_mentioning(self, entity_ids: Iterable[str], *, limit: int) -> list[str]:
        """Chunk ids ranked by how many of the entities they mention, then by mention count, then by id."""
        distinct: dict[str, set[str]] = {}
        total: dict[str, int] = {}
        for ent in dict.fromkeys(entity_ids):
            if not self._is(ent, "entity"):
                continue
            for u, _v, attrs in self.graph.in_edges(ent, data=True):
                if attrs.get("kind") != MENTIONS:
                    continue
                distinct.setdefault(u, set()).add(ent)
                total[u] = total.get(u, 0) + 1
        ranked = sorted(distinct, key=lambda node: (-len(distinct[node]), -total[node], node))
        return [node.removeprefix(CHUNK_PREFIX) for node in ranked[: max(limit, 0)]]

    def has_chunk(self, chunk_id: str) -> bool:
        """Whether the chunk was upserted or had an extraction added."""
        return self._is(chunk_node(chunk_id), "chunk")

    def document_of(self, chunk_id: str) -> str | None:
        """Id of the document that contains the chunk, following the contains edge; None if unknown."""
        node = chunk_node(chunk_id)
        if not self._is(node, "chunk"):
            return None
        for u, _v, attrs in self.graph.in_edges(node, data=True):
            if attrs.get("kind") == CONTAINS:
                return str(u).removeprefix(DOCUMENT_PREFIX)
        return None

    def walk_fact_provenance(self, fact: Fact) -> tuple[str, str] | None:
        """``(chunk_id, document_id)`` reached from the stored fact edge -> its chunk -> its document.

        None when the fact is not in the graph or its chunk is not contained in a known document.
        """
        subject_id = fact.subject_id or entity_id(fact.subject)
        object_id = fact.object_id or entity_id(fact.object)
        key = fact_key(fact.predicate, fact.chunk_id)
        if not self.graph.has_edge(subject_id, object_id, key=key):
            return None
        chunk_id = str(self.graph.edges[subject_id, object_id, key]["chunk_id"])
        document_id = self.document_of(chunk_id)
        return None if document_id is None else (chunk_id, document_id)

    def counts(self) -> dict[str, int]:
        """Numbers of documents, chunks, entities, mentions and facts (kept between writes: a run asks before and
        after its changes, and for its report)."""
        if self._counts is None:
            self._counts = self._count()
        return dict(self._counts)

    def _count(self) -> dict[str, int]:
        with self._data_lock:
            data = self._unbuilt_data()
            if data is not None:
                return node_link.count(data)
        edges = self.graph.adjacency()  # the adjacency dicts: twice as fast as the edge view
        return node_link.count_kinds(
            (kind for _node, kind in self.graph.nodes(data="kind")),
            (attrs.get("kind") for _u, nbrs in edges for keyed in nbrs.values() for attrs in keyed.values()),
        )


def _empty_graph() -> nx.MultiDiGraph:
    """A new graph. networkx (0.1 s to import) is imported here and in :func:`_node_link_data`, when a graph is
    first built or written, like the embedders' libraries: a ``kgrag delete`` works on the parsed file and needs
    none of it."""
    import networkx

    return networkx.MultiDiGraph()


def _node_link_data(graph: nx.MultiDiGraph) -> dict[str, Any]:
    """networkx's node-link document of ``graph`` (what :func:`kg.node_link.write` writes)."""
    import networkx

    data: dict[str, Any] = networkx.node_link_data(graph, edges="edges")
    return data


def _node_link_multidigraph(data: dict[str, Any]) -> nx.MultiDiGraph:
    """The ``MultiDiGraph`` that ``nx.node_link_graph(data, directed=True, multigraph=True, edges="edges")`` builds
    (same nodes, edges, attributes and order), filled straight into its node and adjacency dicts; ``data`` is
    consumed."""
    graph = _empty_graph()
    graph.graph.update(data.get("graph") or {})
    nodes, succ, pred = graph._node, graph._succ, graph._pred

    def ensure(node: Any) -> None:
        if node not in nodes:
            nodes[node], succ[node], pred[node] = {}, {}, {}

    for attrs in data["nodes"]:  # the parsed dicts become the attribute dicts, less their id fields
        node = attrs.pop("id")
        ensure(node)
        nodes[node].update(attrs)
    for attrs in data["edges"]:
        u, v = attrs.pop("source"), attrs.pop("target")
        key = attrs.pop("key") if "key" in attrs else None
        ensure(u)
        ensure(v)
        keyed = succ[u].get(v)
        if keyed is None:
            keyed = succ[u][v] = pred[v][u] = {}
        if key is None:  # what add_edge picks for a missing key: the lowest unused integer
            key = len(keyed)
            while key in keyed:
                key += 1
        keyed.setdefault(key, {}).update(attrs)
    return graph
