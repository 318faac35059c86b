"""Graph context for a question: the entities it names, their facts, and chunks that mention them."""

from __future__ import annotations

from core.types import GraphContext
from kg.base import GraphStore
from kg.linking import EntityLinker


class GraphContextBuilder:
    """Builds a :class:`core.types.GraphContext` from the entities a question links to.

    Facts are the one-hop facts of the linked entities (those between two linked entities first), at most
    ``max_facts``; chunk ids are the chunks mentioning most of the linked entities, at most ``max_chunks``.
    """

    def __init__(self, store: GraphStore, linker: EntityLinker, max_facts: int = 10, max_chunks: int = 2) -> None:
        self.store = store
        self.linker = linker
        self.max_facts = max_facts
        self.max_chunks = max_chunks

    def build(self, question: str) -> GraphContext:
        """Link the question's entities and gather their facts and chunk ids (empty when nothing links)."""
        entities = self.linker.link(question)
        if not entities:
            return GraphContext()
        ids = [entity.id for entity in entities]
        return GraphContext(
            entities=entities,
            facts=self.store.facts_about(ids, limit=self.max_facts),
            chunk_ids=self.store.chunks_mentioning(ids, limit=self.max_chunks),
        )
