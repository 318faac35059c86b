"""A model-free extractor: capitalised-word runs and years are entities, the words between two are a fact.

It is crude but fast (pure regex, thousands of chunks per second) and deterministic, so a graph can be built
without any model server. Every mention and fact carries offsets into the chunk text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.text import split_sentences, word_set
from core.types import Chunk, Entity, Extraction, Fact, Mention
from kg.names import entity_id, normalize_name

#: Lowercase words allowed inside a capitalised run ("University of Chicago", "Ludwig van Beethoven").
CONNECTORS = frozenset(
    {"of", "de", "von", "van", "der", "den", "del", "della", "da", "di", "du", "la", "le", "the", "for", "al"}
)

#: Capitalised only because they start a sentence: dropped from the start of a sentence-initial run.
SENTENCE_STARTERS = word_set(
    """
    The A An In On At He She It They We I You This That These Those His Her Its Their Our My There Here After
    Before During When While As By For From With Of To Since Although Though However Also But And Or If Some
    Many Most All Both Each One Other Such What Who Whom Whose Which Where Why How Following According Despite
    Under Between Among Today Later Then Unlike Like Upon Until Within Without Through Because Once Over Not
    Is Was Are Were Did Does Do Has Have Had Can Could Would Should Will Yes No So Thus Hence Meanwhile
    Instead Another Every Several Few Only Even Just Still Yet About Around Near Outside Inside Against Along
    Across Initially Finally Eventually Originally Currently Previously Subsequently Afterwards Born Located
    Based Founded Named Produced Released Written Directed Published Built Formed Known Established Created
    Situated Designed Considered
    """
)

#: Most words allowed between two entities for the words to become a fact's predicate.
MAX_PREDICATE_WORDS = 6


# Tokens: initials/abbreviations ("U.S.", "D."), or words with inner hyphens/apostrophes.
_TOKEN = re.compile(r"(?:[A-Z]\.)+(?![\w])|\w+(?:['\u2019\-]\w+)*")
_YEAR = re.compile(r"^(?:1\d{3}|20\d{2})$")
_WORD = re.compile(r"\w+")
_LETTER = re.compile(r"[^\W\d_]")
# Words that only join a list ("A and B", "A, the B"): never a predicate on their own.
_NOT_PREDICATES = frozenset({"and", "or", "nor", "but", "the", "a", "an", "as", "well", "also", "including"})
_POSSESSIVES = frozenset({"'s", "\u2019s"})
_EDGE_PUNCT = " \t\r\n\"'`.,;:!?()[]{}\u201c\u201d\u2018\u2019\u2013\u2014-"
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Span:
    """An entity occurrence found in a text: ``text[start:end] == name``."""

    start: int
    end: int
    name: str
    type: str


def _is_capitalised(token: str) -> bool:
    return token[0].isupper()


def find_entity_spans(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Entity spans in one sentence ``text[start:end]``: maximal capitalised runs and 4-digit years."""
    end = len(text) if end is None else end
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text, start, end)]
    spans: list[Span] = []
    i = 0
    while i < len(tokens):
        tok_start, tok_end, token = tokens[i]
        if _YEAR.match(token):
            spans.append(Span(tok_start, tok_end, token, "year"))
            i += 1
            continue
        if not _is_capitalised(token):
            i += 1
            continue
        run = [i]
        j = i + 1
        while j < len(tokens):
            gap = text[tokens[j - 1][1] : tokens[j][0]]
            if gap != " " and not (gap.isspace() and "\n\n" not in gap):
                break
            word = tokens[j][2]
            if _is_capitalised(word):
                run.append(j)
                j += 1
            elif word in CONNECTORS and j + 1 < len(tokens) and _is_capitalised(tokens[j + 1][2]):
                next_gap = text[tokens[j][1] : tokens[j + 1][0]]
                if not next_gap.isspace():
                    break
                run.extend((j, j + 1))
                j += 2
            else:
                break
        # A sentence-initial run loses a leading function word ("In Paris" -> "Paris", "The" -> nothing).
        if run[0] == 0:  # the sentence's first word (after any opening quote or bracket)
            while run and tokens[run[0]][2] in SENTENCE_STARTERS:
                run.pop(0)
            while run and not _is_capitalised(tokens[run[0]][2]):
                run.pop(0)
        # A lone function word is never an entity, wherever it stands ("Inc. The ...", a title's "A").
        if len(run) == 1 and tokens[run[0]][2] in SENTENCE_STARTERS:
            run = []
        if run:
            span_start, span_end = tokens[run[0]][0], tokens[run[-1]][1]
            if text[span_end - 2 : span_end] in _POSSESSIVES:  # "Bruce Lee's" mentions "Bruce Lee"
                span_end -= 2
            name = text[span_start:span_end]
            if normalize_name(name):
                spans.append(Span(span_start, span_end, name, "thing"))
        i = j
    return spans


def _predicate(gap: str) -> str | None:
    """The words between two entities as a predicate, or None when they cannot be one."""
    if any(ch in gap for ch in ";:") or gap.count(")") > gap.count("("):
        return None
    if len(_WORD.findall(gap)) > MAX_PREDICATE_WORDS:
        return None
    predicate = _WHITESPACE.sub(" ", gap.strip(_EDGE_PUNCT)).lower()
    if not _LETTER.search(predicate) or all(word in _NOT_PREDICATES for word in _WORD.findall(predicate)):
        return None
    return predicate


class OfflineExtractor:
    """Extracts entities, mentions and facts from a chunk with regular expressions only (no model).

    Entities are maximal runs of capitalised words (lowercase connectors such as "of" or "von" allowed inside)
    and 4-digit years. Two entities adjacent in a sentence with at most six words between them give the fact
    ``(first, words between, second)``; its evidence span is the sentence.
    """

    name = "offline-v1"

    def extract(self, chunk: Chunk) -> Extraction:
        """Entities, mentions (offsets into ``chunk.text``) and facts of one chunk."""
        text = chunk.text
        entities: dict[str, Entity] = {}
        mentions: list[Mention] = []
        facts: dict[tuple[str, str, str], Fact] = {}
        for sent_start, sent_end in split_sentences(text):
            previous: tuple[Span, str] | None = None
            for span in find_entity_spans(text, sent_start, sent_end):
                ent_id = entity_id(span.name)
                if ent_id not in entities:
                    entities[ent_id] = Entity(id=ent_id, name=span.name, type=span.type)
                mentions.append(Mention(entity_id=ent_id, chunk_id=chunk.id, start=span.start, end=span.end))
                if previous is not None:
                    prev_span, prev_id = previous
                    predicate = _predicate(text[prev_span.end : span.start])
                    key = (prev_id, predicate or "", ent_id)
                    if predicate and prev_id != ent_id and key not in facts:
                        facts[key] = Fact(
                            subject=entities[prev_id].name,
                            predicate=predicate,
                            object=entities[ent_id].name,
                            chunk_id=chunk.id,
                            subject_id=prev_id,
                            object_id=ent_id,
                            evidence_start=sent_start,
                            evidence_end=sent_end,
                        )
                previous = (span, ent_id)
        return Extraction(
            chunk_id=chunk.id,
            entities=list(entities.values()),
            mentions=mentions,
            facts=list(facts.values()),
            extractor=self.name,
        )
