"""Graph context for a question: the entities it names, the facts within k hops of them, the chunks naming them."""

from __future__ import annotations

import re
from collections.abc import Sequence

from core.errors import ConfigurationError
from core.text import STOPWORDS
from core.types import Fact, GraphContext
from kg.base import GraphStore
from kg.linking import EntityLinker

_WORD = re.compile(r"\w+")


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if w not in STOPWORDS}


def expand_facts(
    store: GraphStore, seed_ids: Sequence[str], question: str, *, hops: int, limit: int, fan_out: int = 50
) -> list[Fact]:
    """Facts within ``hops`` hops of the seed entities, ranked, at most ``limit``; each keeps its source chunk id.

    Hop 1 are the facts touching a seed entity; hop ``h + 1`` the facts touching an entity first reached at hop
    ``h`` (at most ``fan_out`` new entities are followed per hop, and ``fan_out`` facts read per entity). Ranking:
    facts between two seed entities first, then by hop, then by how many of the question's content words the fact
    shares; ties keep the store's order. The same statement from the same chunk is listed once.
    """
    if hops < 1 or limit < 1:
        return []
    seeds = list(dict.fromkeys(seed_ids))
    seed_set = set(seeds)
    reached = set(seeds)
    frontier = seeds
    question_words = _content_words(question)
    ranked: list[tuple[int, int, int, Fact]] = []
    seen: set[tuple[str, str, str, str]] = set()
    for hop in range(1, hops + 1):
        following: list[str] = []
        for fact in store.facts_about(frontier, limit=fan_out * len(frontier)):
            key = (fact.subject_id or fact.subject, fact.predicate, fact.object_id or fact.object, fact.chunk_id)
            if key in seen:
                continue
            seen.add(key)
            between = fact.subject_id in seed_set and fact.object_id in seed_set
            shared = len(question_words & _content_words(f"{fact.subject} {fact.predicate} {fact.object}"))
            ranked.append((0 if between else 1, hop, -shared, fact))
            for end in (fact.subject_id, fact.object_id):
                if end and end not in reached:
                    reached.add(end)
                    following.append(end)
        frontier = following[:fan_out]
        if not frontier:
            break
    ranked.sort(key=lambda item: item[:3])  # stable: ties keep the store's order
    return [fact for *_, fact in ranked[:limit]]


class GraphContextBuilder:
    """Builds a :class:`core.types.GraphContext` from the entities a question links to.

    Facts are those within ``hops`` hops of the linked entities (:func:`expand_facts`: facts between two linked
    entities first, then nearer ones, then those sharing more words with the question), at most ``max_facts``;
    each carries the id of the chunk it was extracted from. Chunk ids are the chunks mentioning most of the linked
    entities (at most ``max_chunks``), then the source chunks of the facts in rank order, so the prompt can show a
    fact beside the passage it came from.
    """

    def __init__(
        self, store: GraphStore, linker: EntityLinker, max_facts: int = 10, max_chunks: int = 2, hops: int = 1
    ) -> None:
        if hops < 1:
            raise ConfigurationError(f"graph fact hops must be at least 1, got {hops}")
        self.store = store
        self.linker = linker
        self.max_facts = max_facts
        self.max_chunks = max_chunks
        self.hops = hops

    def build(self, question: str) -> GraphContext:
        """Link the question's entities and gather their facts and chunk ids (empty when nothing links)."""
        entities = self.linker.link(question)
        if not entities:
            return GraphContext()
        ids = [entity.id for entity in entities]
        facts = expand_facts(self.store, ids, question, hops=self.hops, limit=self.max_facts)
        mentioning = self.store.chunks_mentioning(ids, limit=self.max_chunks)
        return GraphContext(
            entities=entities,
            facts=facts,
            chunk_ids=list(dict.fromkeys([*mentioning, *(f.chunk_id for f in facts)])),
        )
