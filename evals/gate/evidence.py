"""Evidence for claim verdicts: each claim's best sentences in its passages, and citation repair.

A claim is judged against a few sentences, not whole passages: the sentences of the passages it cites that share
the most content words with it (a short claim, such as an entity alone, is read together with the question it
answers). A sentence opening with a pronoun brings the sentence before it, which names what the pronoun stands for.

Repair: a claim whose cited passages hold fewer of its content words than another shown passage does has its marker
re-pointed (or, when the cited passage holds part and another the rest, as a two-hop claim does, extended to both).
Every repair is kept, with what it changed, in the claim's verdict.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import simplemma

from core.stemming import EnglishStemmer
from core.text import SUPPORT_STOPWORDS, sentence_spans
from evals.gate.base import CheckInput, Claim

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['\u2019][^\W\d_]+)?")
_PRONOUN_OPENING = re.compile(r"^(?:He|She|It|They|His|Her|Its|Their|This|These|The (?:company|band|film|city|town))\b")
_STEMMER = EnglishStemmer()  # thread-safe: the API stems in several threads at once


def forms(text: str) -> set[str]:
    """Content words of ``text`` as comparable forms: the stem of each word's lemma (taught -> teach, developed ->
    develop), numbers without separators."""
    out: set[str] = set()
    for match in _TOKEN.finditer(text):
        word = match.group(0).casefold().replace(",", "").replace("\u2019", "'").removesuffix("'s")
        if word in SUPPORT_STOPWORDS or (len(word) < 3 and not word[0].isdigit()):
            continue
        if word[0].isdigit():
            out.add(word)
        else:
            out.add(_STEMMER.stem(simplemma.lemmatize(word, lang="en").casefold()))
    return out


@dataclass(frozen=True)
class Sentence:
    """One sentence of a shown passage: its passage number (1-based), its offsets in the passage, and its text."""

    passage: int
    start: int
    end: int
    text: str


def sentences_of(contexts: Sequence[str]) -> list[Sentence]:
    """Every sentence of every passage, in order."""
    out: list[Sentence] = []
    for number, passage in enumerate(contexts, start=1):
        spans = list(sentence_spans(passage)) or [(0, len(passage))]
        out += [Sentence(number, a, b, passage[a:b]) for a, b in spans if passage[a:b].strip()]
    return out


def claim_forms(claim: Claim, question: str) -> set[str]:
    """What a claim asserts, as word forms; a short claim is read with its question."""
    own = forms(claim.text)
    if claim.short:
        own |= forms(question)
    return own


def coverage(wanted: set[str], passages: Sequence[str]) -> float:
    """Share of ``wanted`` forms that the passages hold."""
    if not wanted:
        return 1.0
    held: set[str] = set()
    for passage in passages:
        held |= forms(passage)
    return len(wanted & held) / len(wanted)


@dataclass(frozen=True)
class Repair:
    """One re-pointed claim: its index, the passages it cited, those it is judged against now, and why."""

    claim: int
    cited: tuple[int, ...]
    now: tuple[int, ...]
    detail: str


def repair_citations(item: CheckInput, *, margin: float = 0.2) -> tuple[CheckInput, list[Repair]]:
    """Re-point each citing claim whose cited passages hold clearly less of it than another shown passage (by at
    least ``margin`` of its content words), or add the passage that holds the rest when the two together hold
    more. Claims citing no shown passage are left alone (citation coverage fails them)."""
    n = len(item.contexts)
    claims = list(item.claims)
    repairs: list[Repair] = []
    for index, claim in enumerate(claims):
        own = forms(claim.text)
        if not own:
            continue
        cited = tuple(k for k in dict.fromkeys(claim.cited) if 1 <= k <= n)
        if not cited:  # an uncited claim is citation coverage's to fail, not repair's to cite
            continue
        # Question words count as support only for short claims; the content of the claim itself must be found.
        wanted = claim_forms(claim, item.question)
        here = coverage(wanted, [item.contexts[k - 1] for k in cited])
        if here >= 1.0:
            continue
        others = [k for k in range(1, n + 1) if k not in cited]
        if not others:
            continue
        alone = {k: coverage(wanted, [item.contexts[k - 1]]) for k in others}
        together = {k: coverage(wanted, [item.contexts[j - 1] for j in (*cited, k)]) for k in others}
        best_alone = max(others, key=lambda k: (alone[k], -k))
        best_pair = max(others, key=lambda k: (together[k], -k))
        if alone[best_alone] >= here + margin and alone[best_alone] >= together[best_pair] - 1e-9:
            now: tuple[int, ...] = (best_alone,)
            detail = f"cited {_marks(cited)} holds {here:.0%} of it, [{best_alone}] {alone[best_alone]:.0%}"
        elif together[best_pair] >= here + margin:
            now = (*cited, best_pair)
            detail = f"cited {_marks(cited)} holds {here:.0%} of it, with [{best_pair}] {together[best_pair]:.0%}"
        else:
            continue
        claims[index] = replace(claim, cited=now)
        repairs.append(Repair(index, cited, now, detail))
    if not repairs:
        return item, []
    return replace(item, claims=tuple(claims)), repairs


def _marks(numbers: Sequence[int]) -> str:
    return "".join(f"[{k}]" for k in numbers) or "no passage"


def select_evidence(claim: Claim, question: str, sentences: Sequence[Sentence], limit: int = 3) -> list[Sentence]:
    """The ``limit`` sentences of the claim's passages sharing most of its word forms (ties: earlier first), each
    opening with a pronoun preceded by the sentence before it; in passage order."""
    passages = set(claim.cited) or {s.passage for s in sentences}
    pool = [s for s in sentences if s.passage in passages]
    own, wanted = forms(claim.text), claim_forms(claim, question)
    # The claim's own words weigh double: the question only says where to look.
    scored = sorted(
        ((len(own & forms(s.text)) + len(wanted & forms(s.text)), -i, s) for i, s in enumerate(pool)),
        key=lambda t: (t[0], t[1]),
        reverse=True,
    )
    chosen = [s for score, _, s in scored[:limit] if score > 0] or [s for _, _, s in scored[:1]]
    # Every cited passage contributes its best sentence (a two-hop claim needs the bridge and the answer).
    for number in sorted(passages):
        if not any(s.passage == number for s in chosen):
            best = next((s for _, _, s in scored if s.passage == number), None)
            if best is not None:
                chosen.append(best)
    with_context: list[Sentence] = []
    for sentence in chosen:
        if _PRONOUN_OPENING.match(sentence.text):
            position = pool.index(sentence)
            if position > 0 and pool[position - 1].passage == sentence.passage:
                with_context.append(pool[position - 1])
        with_context.append(sentence)
    unique = list(dict.fromkeys(with_context))
    return sorted(unique, key=lambda s: (s.passage, s.start))


def question_sentences(question: str, sentences: Sequence[Sentence], limit: int = 2) -> list[Sentence]:
    """The ``limit`` sentences of any passage sharing most word forms with the question (ties: earlier first), each
    opening with a pronoun preceded by the sentence before it: where the passages answer the question, whatever
    the answer cites."""
    wanted = forms(question)
    scored = sorted(
        ((len(wanted & forms(s.text)), -i, s) for i, s in enumerate(sentences)), key=lambda t: t[:2], reverse=True
    )
    out: list[Sentence] = []
    for score, _, sentence in scored[:limit]:
        if score == 0:
            break
        position = sentences.index(sentence)
        if _PRONOUN_OPENING.match(sentence.text) and position > 0:
            before = sentences[position - 1]
            if before.passage == sentence.passage:
                out.append(before)
        out.append(sentence)
    return list(dict.fromkeys(out))
