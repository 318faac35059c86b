"""Entity resolution: decide which entities name the same thing, merge them, record why, and undo on request.

Rules, tried for every pair of type-compatible entities (``thing`` is compatible with every type):

* ``title`` -- equal once leading titles and honorifics are dropped ("President Obama" = "Obama"; not "President of
  X", and "St"/"Saint" are kept: "St Louis" is not "Louis"), and the MiniLM cosine of the two full names >=
  ``alias_min_cosine``; a one-word name also needs the document evidence of the ``surname`` rule ("Smith" names
  many people); score = the cosine.
* ``surname`` -- a one-word name equals the last word of exactly one 2-3 word name without function words
  ("Obama" -> "Barack Obama"; "Paris" is not "Paris Hilton", "Dame" not "University of Notre Dame", and an ambiguous
  "Curie" merges nowhere; no acronyms, and no long names whose other words mark a place or organisation: "Hotel
  Galvez", "East Kingston"), every document naming the short form also names the long one (the evidence), and the
  cosine >= ``alias_min_cosine``; score = the cosine.
* ``fuzzy`` -- rapidfuzz ``ratio`` (order-sensitive) of the normalised names >= ``fuzzy_min_ratio`` (spelling
  variants, "Barak Obama" / "Barack Obama"), names sharing a word of 4+ characters, both at least
  ``fuzzy_min_chars`` long, the same numbers (digits and Roman numerals: "XXIII" is not "XXXIII"), and cosine >=
  ``fuzzy_min_cosine``, and not :func:`distinct_variants` ("Western"/"Eastern Europe", "North Korea"/"North
  Korean", "World Chess Championship"/"World Team Chess Championship"); score = the ratio / 100.

Groups are closed transitively (union-find; a member joined only through another is recorded with its own rule
plus ``+transitive``); each group's canonical entity is the one with the longest name, then
the most mentions, then the smallest id. :class:`MergeRecord` keeps the surface forms, the rule, the score and
everything needed to undo the merge in a :class:`kg.networkx_store.NetworkxGraphStore`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, Field
from rapidfuzz import fuzz, process

from core.text import STOPWORDS
from kg.names import ENTITY_PREFIX, normalize_name
from kg.networkx_store import NetworkxGraphStore

_TITLE_WORDS = """
president minister senator sen governor gov mayor king queen prince princess emperor empress pope
sir dame lord lady dr doctor prof professor mr mrs ms miss mister colonel col captain capt
lieutenant lt sergeant sgt admiral judge justice chancellor secretary ambassador rev reverend father bishop
archbishop cardinal sheikh chairman ceo
"""

#: Titles and honorifics dropped by the ``title`` rule (normalised, i.e. lower case without dots).
TITLES = frozenset(_TITLE_WORDS.split())

_NUMBER = re.compile(r"\d+")
_ROMAN = re.compile(r"m{0,3}(cm|cd|d?c{0,3})(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})")

#: Words that make a name a different thing when they differ or are added: "Western Europe" is not "Eastern
#: Europe", "East Kingston" is not "Kingston".
_DIRECTION_WORDS = "north south east west northern southern eastern western upper lower central greater little new old"
DIRECTIONS = frozenset(_DIRECTION_WORDS.split())

#: Words before a last name that mark a place, building or organisation rather than a person's given names
#: ("Hotel Galvez", "Gmina Ozorkow", "City Place Gatwick"): the ``surname`` rule does not fold the last word into them.
_PLACE_AND_BODY_WORDS = """
    hotel gmina city place county district province state river lake mount mountain port fort bay cape island islands
    street road avenue square park station airport church cathedral castle palace college university
    school hospital museum bridge tower valley action police army navy club team company bank group hall house
    san santa saint st la le los las el"""
NON_PERSON_WORDS = DIRECTIONS | frozenset(_PLACE_AND_BODY_WORDS.split())

#: Endings that turn a word into another word of the same stem ("Islands"/"Islanders", "Korea"/"Korean",
#: "Catholic"/"Catholicism"): two names differing only by these are not spelling variants.
_ENDINGS = "s es n an ns ers er ism ic ian ians ese ish ern y ies al"
INFLECTIONS = frozenset(_ENDINGS.split()) | {""}

#: Fuzzy matching skips words shared by more names than this (``"university"``); other shared words still pair them.
_MAX_BLOCK = 300


class Embedder(Protocol):
    """Anything that embeds texts as L2-normalised rows (the real MiniLM embedder in kgrag)."""

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


class MergeRecord(BaseModel):
    """One merge: ``merged`` became part of ``canonical``, by ``rule`` with ``score``; enough to undo it."""

    canonical: str
    merged: str
    canonical_forms: list[str]
    merged_forms: list[str]
    rule: str
    score: float
    undo: dict[str, Any] = Field(default_factory=dict, description="Graph state the merge changed (for undo).")


@dataclass(frozen=True)
class Candidate:
    """An entity as resolution sees it."""

    id: str
    name: str
    type: str
    mentions: int = 0
    forms: tuple[str, ...] = ()
    documents: frozenset[str] = frozenset()


@dataclass
class _UnionFind:
    parent: dict[str, str] = field(default_factory=dict)

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


@dataclass(frozen=True)
class _Vectors:
    index: dict[str, int]
    rows: np.ndarray

    def cosine(self, a: str, b: str) -> float:
        return float(np.dot(self.rows[self.index[a]], self.rows[self.index[b]]))


def _numbers(name: str) -> list[str]:
    """Digit runs and Roman numerals in a normalised name ("xxiii olympiad" -> ["xxiii"])."""
    return [w for w in name.split() if _NUMBER.search(w) or _ROMAN.fullmatch(w)]


def _evidence(short: Candidate, long: Candidate) -> bool:
    """Whether every document naming the short form also names the long one (True when documents are unknown)."""
    return not short.documents or not long.documents or short.documents <= long.documents


def strip_titles(normalised: str) -> str:
    """The normalised name without leading titles ("president barack obama" -> "barack obama")."""
    words = normalised.split()
    while len(words) > 1 and words[0] in TITLES and words[1] != "of":  # "president of x" is an office, not a name
        words.pop(0)
    return " ".join(words)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def distinct_variants(a: str, b: str) -> bool:
    """Whether two similar normalised names are different things rather than spellings of one name.

    True when one name's words are a proper subset of the other's ("world chess championship" / "world team chess
    championship"), or an aligned pair of differing words are direction words ("western" / "eastern"), one word
    extends the other ("korea" / "korean"), are short codes ("cwa" / "cwb"), or both end in inflections of one stem
    ("islands" / "islanders").
    """
    wa, wb = a.split(), b.split()
    if set(wa) < set(wb) or set(wb) < set(wa):
        return True
    if len(wa) != len(wb):
        return False
    for x, y in zip(wa, wb, strict=True):
        if x == y:
            continue
        if x in DIRECTIONS or y in DIRECTIONS or x.startswith(y) or y.startswith(x):
            return True
        if len(x) <= 3 and len(y) <= 3:  # codes and letters: "cwa" / "cwb", "league a" / "league b"
            return True
        n = _common_prefix(x, y)
        if n >= 3 and x[n:] in INFLECTIONS and y[n:] in INFLECTIONS:
            return True
    return False


def types_compatible(a: str, b: str) -> bool:
    """Equal types, or one of them unknown (``thing`` or empty)."""
    return a == b or a in ("", "thing") or b in ("", "thing")


class EntityResolver:
    """Finds merges among entities with normalisation, rapidfuzz and MiniLM embeddings, gated by type."""

    def __init__(
        self,
        embedder: Embedder,
        *,
        alias_min_cosine: float = 0.72,
        fuzzy_min_ratio: float = 90.0,
        fuzzy_min_cosine: float = 0.85,
        fuzzy_min_chars: int = 6,
    ) -> None:
        self.embedder = embedder
        self.alias_min_cosine = alias_min_cosine
        self.fuzzy_min_ratio = fuzzy_min_ratio
        self.fuzzy_min_cosine = fuzzy_min_cosine
        self.fuzzy_min_chars = fuzzy_min_chars

    def find_merges(self, entities: Sequence[Candidate]) -> list[tuple[str, str, str, float]]:
        """``(canonical_id, merged_id, rule, score)`` for every entity that should join another.

        The rules first propose pairs from names alone; only the names in proposed pairs are embedded (a few
        hundred among tens of thousands of entities), then each proposal is kept if its cosine is high enough.
        """
        by_id = {e.id: e for e in entities}
        full = {e.id: normalize_name(e.name) or e.id.removeprefix(ENTITY_PREFIX) for e in entities}
        core = {ent_id: strip_titles(name) for ent_id, name in full.items()}
        # (canonical-side id, merged-side id, rule, name a, name b, minimum cosine, score if not the cosine)
        proposals: list[tuple[str, str, str, str, str, float, float | None]] = []
        # title: the same name once leading titles are dropped
        groups: dict[str, list[str]] = {}
        for ent_id, name in sorted(core.items()):
            groups.setdefault(name, []).append(ent_id)
        for core_name, members in groups.items():
            for other in members[1:]:
                first = members[0]
                if " " not in core_name and not self._title_evidence(core_name, by_id, full, first, other):
                    continue
                if types_compatible(by_id[first].type, by_id[other].type):
                    proposals.append((first, other, "title", full[first], full[other], self.alias_min_cosine, None))
        distinct = sorted(groups)  # one representative entity per core name
        rep = {name: groups[name][0] for name in distinct}
        # surname: a one-word name that is the last word of exactly one 2-3 word name (no "of", "the"...) of a
        # compatible type, found only in documents that also name the longer one
        last_word: dict[str, list[str]] = {}
        for name in distinct:
            words = name.split()
            if 1 < len(words) <= 3 and not any(w in STOPWORDS for w in words):
                last_word.setdefault(words[-1], []).append(name)
        for name in distinct:
            if " " in name or len(name) < 3 or _numbers(name) or name in TITLES or name in STOPWORDS:
                continue
            short = by_id[rep[name]]
            if short.name.isupper():  # an acronym ("CFTC") is not a surname
                continue
            longer = [
                n
                for n in last_word.get(name, [])
                if types_compatible(by_id[rep[n]].type, short.type) and not NON_PERSON_WORDS & set(n.split()[:-1])
            ]
            if len(longer) == 1 and _evidence(short, by_id[rep[longer[0]]]):
                proposals.append((rep[longer[0]], rep[name], "surname", name, longer[0], self.alias_min_cosine, None))
        # fuzzy: spelling variants (rapidfuzz ratio, order-sensitive) among names sharing a word of 4+ characters
        blocks: dict[str, list[str]] = {}
        for name in distinct:
            if len(name) >= self.fuzzy_min_chars:
                for word in set(name.split()):
                    if len(word) >= 4:
                        blocks.setdefault(word, []).append(name)
        seen: set[tuple[str, str]] = set()
        for block in blocks.values():
            if len(block) < 2 or len(block) > _MAX_BLOCK:
                continue
            matrix = process.cdist(block, block, scorer=fuzz.ratio, score_cutoff=self.fuzzy_min_ratio)
            for i, j in zip(*np.nonzero(np.triu(matrix, k=1)), strict=True):
                a, b = block[int(i)], block[int(j)]
                if (a, b) in seen:
                    continue
                seen.add((a, b))
                if _numbers(a) != _numbers(b) or not types_compatible(by_id[rep[a]].type, by_id[rep[b]].type):
                    continue
                if not distinct_variants(a, b):
                    ratio = round(float(matrix[i, j]) / 100, 4)
                    proposals.append((rep[a], rep[b], "fuzzy", a, b, self.fuzzy_min_cosine, ratio))
        vectors = self._embed(sorted({n for *_ids, a, b, _min, _s in proposals for n in (a, b)}))
        edges: list[tuple[str, str, str, float]] = []
        for first, other, rule, a, b, minimum, fixed in proposals:
            cosine = vectors.cosine(a, b)
            if cosine >= minimum:
                edges.append((first, other, rule, fixed if fixed is not None else round(cosine, 4)))
        return self._canonicalise(by_id, edges)

    @staticmethod
    def _title_evidence(
        core_name: str, by_id: dict[str, Candidate], full: dict[str, str], first: str, other: str
    ) -> bool:
        """A one-word name joins its titled form ("Smith" / "Judge Smith") only when exactly one of the two carries
        the title and every document naming the bare name also names the titled one: one-word names are ambiguous."""
        bare = [e for e in (first, other) if full[e] == core_name]
        titled = [e for e in (first, other) if full[e] != core_name]
        if len(bare) != 1 or len(titled) != 1:
            return False
        return _evidence(by_id[bare[0]], by_id[titled[0]])

    def _embed(self, names: Sequence[str]) -> _Vectors:
        rows = np.asarray(self.embedder.embed(list(names)), dtype=np.float32) if names else np.zeros((0, 1))
        return _Vectors({name: k for k, name in enumerate(names)}, rows)

    @staticmethod
    def _canonicalise(
        by_id: dict[str, Candidate], edges: list[tuple[str, str, str, float]]
    ) -> list[tuple[str, str, str, float]]:
        uf = _UnionFind()
        direct: dict[tuple[str, str], tuple[str, float]] = {}
        touching: dict[str, tuple[str, float]] = {}
        for a, b, rule, score in edges:
            uf.union(a, b)
            direct.setdefault((a, b), (rule, score))
            direct.setdefault((b, a), (rule, score))
            touching.setdefault(a, (rule, score))
            touching.setdefault(b, (rule, score))
        groups: dict[str, list[str]] = {}
        for ent in uf.parent:
            groups.setdefault(uf.find(ent), []).append(ent)
        merges: list[tuple[str, str, str, float]] = []
        for members in groups.values():
            canonical = min(members, key=lambda e: (-len(by_id[e].name.split()), -by_id[e].mentions, e))
            for ent in sorted(members):
                if ent == canonical:
                    continue
                if (canonical, ent) in direct:
                    rule, score = direct[(canonical, ent)]
                else:  # joined through another member of the group
                    rule, score = touching[ent]
                    rule += "+transitive"
                merges.append((canonical, ent, rule, score))
        return sorted(merges)


def candidates(store: NetworkxGraphStore) -> list[Candidate]:
    """Every entity of an embedded graph, with its mention count and surface forms."""
    graph = store.graph
    found: list[Candidate] = []
    for node, attrs in graph.nodes(data=True):
        if attrs.get("kind") != "entity":
            continue
        chunks = [u for u, _v, kind in graph.in_edges(node, data="kind") if kind == "mentions"]
        documents = frozenset(str(graph.nodes[u].get("document_id") or u) for u in chunks)
        forms = tuple(attrs.get("surface_forms", []))
        found.append(Candidate(node, attrs.get("name", ""), attrs.get("type", "thing"), len(chunks), forms, documents))
    return sorted(found, key=lambda c: c.id)


def merge(store: NetworkxGraphStore, canonical: str, merged: str, rule: str, score: float) -> MergeRecord:
    """Fold ``merged`` into ``canonical``: its edges move over, its surface forms join; returns the undo record."""
    graph = store.graph
    kept, dropped = graph.nodes[canonical], graph.nodes[merged]
    touching = [*graph.in_edges(merged, keys=True, data=True), *graph.out_edges(merged, keys=True, data=True)]
    edges = [[u, v, k, dict(d)] for u, v, k, d in touching]
    added: list[list[Any]] = []
    for u, v, k, d in edges:
        nu, nv = (canonical if u == merged else u), (canonical if v == merged else v)
        if not graph.has_edge(nu, nv, key=k):
            graph.add_edge(nu, nv, key=k, **d)
            added.append([nu, nv, k])
    record = MergeRecord(
        canonical=canonical,
        merged=merged,
        canonical_forms=list(kept.get("surface_forms", [])),
        merged_forms=list(dropped.get("surface_forms", [])),
        rule=rule,
        score=score,
        undo={"node": dict(dropped), "edges": edges, "added": added, "canonical": dict(kept)},
    )
    forms = kept.setdefault("surface_forms", [])
    for form in [dropped.get("name", ""), *dropped.get("surface_forms", [])]:
        if form and form not in forms:
            forms.append(form)
    if kept.get("type", "thing") == "thing" and dropped.get("type", "thing") != "thing":
        kept["type"] = dropped["type"]
    graph.remove_node(merged)
    return record


def undo(store: NetworkxGraphStore, record: MergeRecord) -> None:
    """Reverse one merge (undo merges in reverse order of application)."""
    graph = store.graph
    for u, v, k in record.undo["added"]:
        if graph.has_edge(u, v, key=k):
            graph.remove_edge(u, v, key=k)
    graph.add_node(record.merged, **record.undo["node"])
    for u, v, k, d in record.undo["edges"]:
        graph.add_edge(u, v, key=k, **d)
    attrs = graph.nodes[record.canonical]
    attrs.clear()
    attrs.update(record.undo["canonical"])


def resolve(store: NetworkxGraphStore, resolver: EntityResolver) -> list[MergeRecord]:
    """Find and apply every merge in the store; returns the records in the order applied."""
    return [merge(store, c, m, rule, score) for c, m, rule, score in resolver.find_merges(candidates(store))]


def save_merges(records: Sequence[MergeRecord], path: Path) -> None:
    """Write merge records as JSON lines (the compliance log)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")


def load_merges(path: Path) -> list[MergeRecord]:
    """Read merge records written by :func:`save_merges`."""
    return [MergeRecord.model_validate(json.loads(line)) for line in path.read_text("utf-8").splitlines() if line]
