"""Build proof set v2: wrong answers made of the contexts' own words, and faithful ones in several forms.

Derived from proof set v1 (``data/proof_set.jsonl``: the same 100 questions, contexts and gold sentences; see the
README), deterministically (seed 7, no LLM, rules only). Per question, when the rule applies:

hallucinated (every one uses only words, names and numbers the contexts hold):

- ``negated``: the gold sentence with ``not`` after its first auxiliary (``is``, ``was``, ``has``...), or
  ``did not`` + the lemma of its first past-tense verb;
- ``swapped_entity``: the gold answer replaced by another entity of the same kind (year, date, number, name) that
  the contexts hold;
- ``swapped_roles``: the gold answer and another name of the same sentence trade places;
- ``swapped_number``: a number or year of the sentence replaced by another the contexts hold;
- ``distractor_answer``: v1's (a distractor sentence near the question, cited as the gold passage);
- ``off_topic``: a true sentence of a distractor passage, cited correctly, that does not answer the question.

faithful:

- ``verbatim``: v1's gold sentence, citing its passage;
- ``paraphrased``: the gold sentence with parentheticals dropped and words rewritten from a fixed table of
  meaning-preserving substitutions (only when a rule changed it);
- ``short``: the gold answer alone, cited (``Hank Williams, Jr. [2].``);
- ``multi_sentence``: the gold sentence and another sentence of its passage, each cited.

Split: a question is in the ``calibration`` part when the first hex digit of sha256(question id) is below 8, else in
``report``. Thresholds are tuned on calibration only.

Run ``.venv/bin/python -m evals.bench.proof.build_v2 [--v1 PATH] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import simplemma

from evals.bench.proof import text as tx
from evals.bench.proof.items import DEFAULT_SET

SEED = 7
DEFAULT_V2 = DEFAULT_SET.with_name("proof_set_v2.jsonl")
HALLUCINATED = ("negated", "swapped_entity", "swapped_roles", "swapped_number", "distractor_answer", "off_topic")
FAITHFUL = ("verbatim", "paraphrased", "short", "multi_sentence")
_MARKER = re.compile(r"\s*\[(\d+)\]\.?\s*$")
_AUX = re.compile(r"\b(is|was|are|were|has|had|have|will|would|can|could|does|did)\b(?!\s+not\b)")
_PAST = re.compile(r"\b([a-z]{3,}ed)\b")
_PARENS = re.compile(r"\s*\([^()]*\)")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
#: Meaning-preserving rewrites (whole words, case kept at the first letter).
SYNONYMS = {
    "film": "movie",
    "movie": "film",
    "located": "situated",
    "largest": "biggest",
    "began": "started",
    "founded": "established",
    "established": "founded",
    "famous": "well known",
    "also": "",
    "known as": "called",
    "roughly": "about",
    "approximately": "about",
    "award": "prize",
    "received": "got",
    "died": "passed away",
    "currently": "now",
}
_SYNONYM = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(SYNONYMS, key=len, reverse=True)) + r")\b")


def part_of(question_id: str) -> str:
    """``calibration`` or ``report``, fixed by the question id."""
    return "calibration" if int(hashlib.sha256(question_id.encode()).hexdigest()[0], 16) < 8 else "report"


def _cite(sentence: str, n: int) -> str:
    return f"{sentence.rstrip().rstrip('.')} [{n}]."


def negate(sentence: str) -> str | None:
    """``not`` after the first auxiliary, else ``did not`` + lemma of the first past-tense verb; None if neither."""
    aux = _AUX.search(sentence)
    if aux:
        return sentence[: aux.end()] + " not" + sentence[aux.end() :]
    past = _PAST.search(sentence)
    if past:
        lemma = simplemma.lemmatize(past.group(1), lang="en")
        if lemma != past.group(1):
            return sentence[: past.start()] + f"did not {lemma}" + sentence[past.end() :]
    return None


def _same_kind(gold: str, contexts: Sequence[str], sentence: str, rng: random.Random) -> str | None:
    kind = tx.answer_kind(gold)
    pool: list[str] = []
    for context in contexts:
        if kind == "year":
            pool += tx.years(context)
        elif kind in ("number", "date"):
            pool += [m.group(0) for m in _NUMBER.finditer(context)]
        elif kind == "name":
            # Same number of words, and a nationality only for a nationality.
            demonym = gold in tx.DEMONYMS or gold in tx.COUNTRIES
            pool += [
                p
                for p in tx.capitalised_phrases(context)
                if len(p.split()) == len(gold.split()) and (demonym or _name_like(p))
            ]
    gold_words = set(gold.casefold().split())
    pool = [
        p
        for p in dict.fromkeys(pool)
        if p.casefold() not in sentence.casefold() and not gold_words & set(p.casefold().split())
    ]
    return rng.choice(pool) if pool else None


def _name_like(phrase: str) -> bool:
    """A name, not a nationality or a lone capitalised adjective."""
    return phrase not in tx.DEMONYMS and phrase not in tx.COUNTRIES and (len(phrase.split()) > 1 or len(phrase) > 3)


def _roles(sentence: str, gold: str) -> str | None:
    """Swap ``gold`` with the first other name in the sentence (not overlapping it)."""
    at = sentence.find(gold)
    if at < 0:
        return None
    for name in tx.capitalised_phrases(sentence):
        where = sentence.find(name)
        if name == gold or where < 0 or set(name.split()) & set(gold.split()) or not _name_like(name):
            continue
        if where < at and where + len(name) <= at:
            return sentence[:where] + gold + sentence[where + len(name) : at] + name + sentence[at + len(gold) :]
        if where >= at + len(gold):
            return sentence[:at] + name + sentence[at + len(gold) : where] + gold + sentence[where + len(name) :]
    return None


def _swap_number(sentence: str, contexts: Sequence[str], rng: random.Random) -> str | None:
    found = list(_NUMBER.finditer(sentence))
    if not found:
        return None
    target = found[0]
    shape = "year" if re.fullmatch(r"1\d{3}|20\d{2}", target.group(0)) else "number"
    pool = [
        m.group(0)
        for c in contexts
        for m in _NUMBER.finditer(c)
        if m.group(0) != target.group(0)
        and (shape != "year" or re.fullmatch(r"1\d{3}|20\d{2}", m.group(0)))
        and m.group(0) not in sentence
    ]
    if not pool:
        return None
    return sentence[: target.start()] + rng.choice(sorted(set(pool))) + sentence[target.end() :]


def paraphrase(sentence: str) -> str | None:
    """Parentheticals dropped and :data:`SYNONYMS` applied; None when nothing changed."""
    out = _PARENS.sub("", sentence)

    def swap(match: re.Match[str]) -> str:
        return SYNONYMS[match.group(1)]

    out = re.sub(r"\s{2,}", " ", _SYNONYM.sub(swap, out)).replace(" ,", ",").strip()
    return out if out != sentence and len(out.split()) >= 4 else None


def build_group(group: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """v2 answers for one v1 group (its question, contexts and gold sentence kept)."""
    v1 = {a["variant"]: a for a in group["answers"]}
    faithful = v1["faithful"]["answer"]
    marker = _MARKER.search(faithful)
    if marker is None:
        return {**group, "answers": []}
    n = int(marker.group(1))
    sentence = faithful[: marker.start()].strip()
    contexts: list[str] = group["contexts"]
    match = tx.find_answer(sentence, group["gold_answers"])
    gold = v1.get("wrong_entity", {}).get("detail", {}).get("gold_span") or (match.group(0) if match else None)
    answers: list[dict[str, Any]] = []

    def add(variant: str, label: str, text: str | None, **detail: str) -> None:
        if text:
            answers.append(
                {
                    "id": f"{group['question_id']}:{variant}",
                    "variant": variant,
                    "label": label,
                    "answer": text,
                    "detail": detail,
                }
            )

    add("verbatim", "faithful", faithful)
    add("paraphrased", "faithful", (p := paraphrase(sentence)) and _cite(p, n), rule="parentheticals, synonym table")
    if gold:
        add("short", "faithful", _cite(gold, n))
    own = tx.content_words(sentence)
    others = [
        s
        for s in tx.sentences(contexts[n - 1])
        if len(tx.content_words(s)) >= 3 and len(tx.content_words(s) & own) < 0.6 * len(tx.content_words(s))
    ]
    if others:
        add("multi_sentence", "faithful", f"{_cite(sentence, n)} {_cite(others[0], n)}")
    add("negated", "hallucinated", (x := negate(sentence)) and _cite(x, n))
    if gold and gold in sentence:
        swap = _same_kind(gold, contexts, sentence, rng)
        add("swapped_entity", "hallucinated", swap and _cite(sentence.replace(gold, swap, 1), n), swapped_in=swap or "")
        add("swapped_roles", "hallucinated", (r := _roles(sentence, gold)) and _cite(r, n))
    add("swapped_number", "hallucinated", (x := _swap_number(sentence, contexts, rng)) and _cite(x, n))
    if "distractor_answer" in v1:
        add("distractor_answer", "hallucinated", v1["distractor_answer"]["answer"])
    # The passage sharing the fewest words with the question (not the gold one): its first full sentence, cited.
    asked = tx.content_words(group["question"])
    candidates = [
        (len(tx.content_words(c) & asked), k)
        for k, c in enumerate(contexts, start=1)
        if k != n and not tx.contains_any(c, group["gold_answers"])
    ]
    if candidates:
        k = min(candidates)[1]
        first = next((s for s in tx.sentences(contexts[k - 1]) if len(s.split()) >= 5), None)
        add("off_topic", "hallucinated", first and _cite(first, k), passage=str(k))
    return {**group, "part": part_of(group["question_id"]), "answers": answers}


def build(v1: Path = DEFAULT_SET) -> list[dict[str, Any]]:
    """Every v2 group, in v1's order."""
    rng = random.Random(SEED)
    groups = [json.loads(line) for line in v1.read_text("utf-8").splitlines() if line.strip()]
    return [g for g in (build_group(group, rng) for group in groups) if g["answers"]]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--v1", type=Path, default=DEFAULT_SET)
    parser.add_argument("--out", type=Path, default=DEFAULT_V2)
    args = parser.parse_args(argv)
    groups = build(args.v1)
    with args.out.open("w", encoding="utf-8") as handle:
        for group in groups:
            handle.write(json.dumps(group, ensure_ascii=False, sort_keys=True) + "\n")
    counts: dict[str, int] = {}
    for group in groups:
        for answer in group["answers"]:
            key = f"{group['part']}/{answer['variant']}"
            counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print(f"{key:40} {counts[key]}")


if __name__ == "__main__":
    main()
