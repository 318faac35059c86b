"""Build the labelled proof set of the answer gate from ``shared/eval`` (deterministic: fixed seed, no LLM).

For each usable question (HotpotQA first, then MuSiQue from the start of its file; the gate is calibrated on
MuSiQue questions from the end of the file, so at most the first :data:`MUSIQUE_MAX_INDEX` MuSiQue questions are
used), the contexts are the gold passages plus :data:`DISTRACTORS` distractor passages from the question's own
candidate set, shuffled; then four answers:

- ``faithful``: the sentence of the answer passage that states the gold answer, verbatim (a leading pronoun
  replaced by the passage's subject), citing that passage ``[n]``;
- ``wrong_entity``: the same sentence with the gold answer replaced by another entity of the same kind (a year by
  another year, a date or number mutated, a name by a same-shaped name from the distractors or the corpus) that the
  gold passages never mention;
- ``unsupported_claim``: the faithful sentence plus a second cited sentence stating a fabricated fact (an award, a
  twinning, a head count, a renaming) about the passage's subject, with a year or number no context holds;
- ``distractor_answer``: the distractor sentence closest to the question (by content words), which does not hold
  the gold answer, presented as the answer and citing the gold passage.

Run ``.venv/bin/python -m evals.bench.proof.build [--eval-dir ../shared/eval] [--out
evals/proof/data/proof_set.jsonl]``.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InputError
from evals.bench.proof import text as tx
from evals.bench.proof.items import DEFAULT_SET

SEED = 7
DATASETS = ("hotpotqa", "musique")
QUESTIONS = 100
DISTRACTORS = 2
#: MuSiQue questions at or after this index (0-based line number) are never used: the gate calibrates on them.
MUSIQUE_MAX_INDEX = 70
#: MuSiQue's corpus lists each question's 20 candidate passages together; this window around the gold ids
#: approximates that candidate set (other questions' gold passages excluded).
MUSIQUE_WINDOW = 12

_PRIZES = (
    "Order of the Golden Lotus",
    "Halvorsen Medal for Public Service",
    "Grand Prix of the Baltic Academy",
    "Meridian Prize for Civic Achievement",
)
_TWINS = ("Tromsø", "Valparaíso", "Kraków", "Tbilisi", "Ljubljana", "Cebu City")
_TEMPLATES = (
    "{subject} was awarded the {prize} in {year} [{n}].",
    "In {year}, {subject} was formally twinned with {twin} [{n}].",
    "By {year}, {subject} employed {number} people [{n}].",
    "{subject} was renamed the {twin} Foundation in {year} [{n}].",
)


@dataclass(frozen=True)
class Passage:
    """One corpus passage."""

    id: str
    title: str
    text: str
    #: What the passage is about (:func:`evals.bench.proof.text.category`), computed once when the corpus is
    #: read.
    category: str | None = None


@dataclass(frozen=True)
class Question:
    """One source question with its gold answers and passages, and its candidate distractors."""

    id: str
    dataset: str
    question: str
    answers: tuple[str, ...]
    gold: tuple[Passage, ...]
    candidates: tuple[Passage, ...]
    #: Every passage of the question's dataset (where a same-kind replacement entity may come from).
    pool: tuple[Passage, ...] = ()
    #: First names of the people the dataset's passages are about (a two-to-four-word answer starting with one
    #: is taken to be a person).
    first_names: frozenset[str] = frozenset()


class Unusable(Exception):
    """The question cannot yield the four answers (the reason is the message)."""


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(f"{path} does not exist", hint="pass --eval-dir pointing at shared/eval")
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def load_questions(eval_dir: Path, datasets: Sequence[str] = DATASETS) -> list[Question]:
    """Each dataset's questions in file order (MuSiQue: only the first :data:`MUSIQUE_MAX_INDEX`)."""
    out: list[Question] = []
    for name in datasets:
        corpus_rows = _read_jsonl(eval_dir / name / "corpus.jsonl")
        corpus = {
            str(r["id"]): Passage(
                str(r["id"]), str(r["title"]), str(r["text"]), tx.category(str(r["title"]), r["text"])
            )
            for r in corpus_rows
        }
        order = [str(r["id"]) for r in corpus_rows]
        pool = tuple(corpus[p] for p in order)
        first_names = frozenset(
            tx.title_core(p.title).split()[0] for p in pool if tx.title_core(p.title) and p.category == "person"
        )
        rows = _read_jsonl(eval_dir / name / "questions.jsonl")
        every_gold = {pid for r in rows for pid in r["gold_passage_ids"]}
        for index, row in enumerate(rows):
            if name == "musique" and index >= MUSIQUE_MAX_INDEX:
                break
            gold_ids = [str(g) for g in row["gold_passage_ids"]]
            positions = sorted(order.index(g) for g in gold_ids)
            if name == "hotpotqa":  # ten passages a question, in question order
                block = order[index * 10 : index * 10 + 10]
            else:
                block = order[max(0, positions[0] - MUSIQUE_WINDOW) : positions[-1] + MUSIQUE_WINDOW + 1]
            candidates = tuple(corpus[p] for p in block if p not in every_gold)
            out.append(
                Question(
                    id=str(row["id"]),
                    dataset=name,
                    question=str(row["question"]),
                    answers=tuple(str(a) for a in row["answers"]),
                    gold=tuple(corpus[g] for g in gold_ids),
                    candidates=candidates,
                    pool=pool,
                    first_names=first_names,
                )
            )
    return out


def _faithful_sentence(question: Question) -> tuple[Passage, str, str]:
    """(answer passage, its sentence stating the answer, the answer as written there)."""
    for passage in question.gold:
        for sentence in tx.sentences(passage.text):
            match = tx.find_answer(sentence, question.answers)
            if match is not None and len(sentence) <= 400:
                subject = tx.title_core(passage.title)
                resolved = tx.resolve_pronoun(sentence, subject if subject in passage.text else "")
                if tx.find_answer(resolved, question.answers) is not None:
                    return passage, resolved.rstrip(), match.group(0)
    raise Unusable("no gold sentence of at most 400 characters states the answer")


def _with_citation(sentence: str, n: int) -> str:
    body = sentence.rstrip()
    end = body[-1] if body and body[-1] in ".!?" else "."
    return f"{body.rstrip('.!?')} [{n}]{end}"


def _swap_entity(question: Question, sentence: str, span: str, shown: Sequence[Passage], rng: random.Random) -> str:
    """The replacement for ``span`` (same kind, absent from every gold passage and from the question)."""
    gold_text = " ".join(p.text for p in question.gold)

    def fresh(candidate: str) -> bool:
        return (
            bool(candidate.strip())
            and not tx.contains_any(gold_text, [candidate])
            and not tx.contains_any(question.question, [candidate])
            and not tx.contains_any(candidate, [span, *question.answers])
            and not tx.contains_any(span, [candidate])
        )

    kind = tx.answer_kind(span)
    if kind == "year":
        pool = sorted({y for p in (*shown, *question.candidates) for y in tx.years(p.text)})
        near = [y for y in pool if abs(int(y) - int(span)) <= 150 and fresh(y)]
        if near:
            return rng.choice(near)
        kind = "number"
    if kind in ("date", "number"):
        for _ in range(50):
            candidate = tx.mutate_date(span, rng) if kind == "date" else tx.mutate_numbers(span, rng)
            if fresh(candidate):
                return candidate
        raise Unusable(f"no fresh {kind} for {span!r}")
    if kind == "other":
        raise Unusable(f"answer {span!r} has no name, number or date to swap")
    prefix, core = tx.split_prefix(span)
    for closed in (tx.DEMONYMS, tx.COUNTRIES):
        if core in closed:
            pool = [d for d in closed if fresh(d)]
            if pool:
                return prefix + rng.choice(pool)
    wanted = _gold_category(question, core, sentence)
    if wanted is not None:
        for tier in (shown, question.candidates, question.pool):
            same = sorted(
                {tx.title_core(p.title) for p in tier if p.category == wanted}
                - {core, tx.title_core(question.gold[0].title)}
            )
            same = [name for name in same if fresh(name)]
            if same:
                return prefix + rng.choice(same)
    return prefix + _same_shape_name(core, shown, question, fresh, rng)


def _gold_category(question: Question, core: str, sentence: str) -> str | None:
    """The kind of thing the answer names: the category of the passage titled with it, or ``person``."""
    for passage in question.pool:
        if tx.title_core(passage.title).casefold() == core.casefold() and passage.category is not None:
            return passage.category
        if core.endswith(" " + tx.title_core(passage.title)) and passage.category == "person":
            return "person"
    at = sentence.find(core)
    if at >= 0 and tx.category(core, sentence[at:]) == "person":
        return "person"
    words = core.split()
    capitalised = 2 <= len(words) <= 4 and all(w[:1].isupper() for w in words)
    if capitalised and words[-1] not in _PLACE_HEADS and words[0] in question.first_names:
        return "person"
    return None


#: Last words that make a multi-word answer a place or an organisation, never a person.
_PLACE_HEADS = frozenset(
    [
        "County",
        "City",
        "River",
        "Airport",
        "Range",
        "Falls",
        "Park",
        "Church",
        "Communion",
        "District",
        "Province",
        "State",
        "University",
        "College",
        "Academy",
        "School",
        "Records",
        "Pictures",
        "Company",
        "Island",
        "Islands",
        "Mountains",
        "Lake",
        "Sea",
        "Ocean",
        "Bay",
        "Valley",
    ]
)


def _same_shape_name(
    core: str, shown: Sequence[Passage], question: Question, fresh: Callable[[str], bool], rng: random.Random
) -> str:
    """A capitalised phrase from the shown distractors or the candidate set with the answer's shape."""
    words = core.split()
    if len(words) > 1 and words[-1] in _PLACE_HEADS:
        same_head = sorted(
            {
                phrase
                for p in question.pool
                for phrase in (tx.title_core(p.title), *tx.capitalised_phrases(p.text))
                if phrase.split()[-1] == words[-1] and fresh(phrase)
            }
        )
        if same_head:
            return rng.choice(same_head)
    shown_ids = {p.id for p in shown}
    scored: dict[str, int] = {}
    for passage in (*shown, *question.candidates):
        titles = [tx.title_core(passage.title)]
        for phrase in titles + tx.capitalised_phrases(passage.text):
            if not fresh(phrase) or phrase in scored:
                continue
            parts = phrase.split()
            score = 2 * (len(parts) == len(words)) + (passage.id in shown_ids) + 2 * (phrase in titles)
            if len(words) > 1 and parts[-1] == words[-1]:
                score += 3
            scored[phrase] = score
    if not scored:
        raise Unusable(f"no candidate name to replace {core!r}")
    best = max(scored.values())
    return rng.choice(sorted(p for p, s in scored.items() if s == best))


def _unsupported_claim(subject: str, contexts: Sequence[str], n: int, rng: random.Random) -> tuple[str, str]:
    """(a cited sentence about ``subject`` that no context supports, the fabricated values it states)."""
    joined = " ".join(contexts)
    template = rng.choice(_TEMPLATES)
    for _ in range(100):
        year = str(rng.randint(1890, 2015))
        number = f"{rng.randint(2, 97)},{rng.randint(100, 999)}"
        twin = rng.choice(_TWINS)
        if year not in joined and number not in joined and twin not in joined:
            slots = (("year", year), ("number", number), ("twin", twin))
            values = "|".join(value for key, value in slots if "{" + key + "}" in template)
            claim = template.format(
                subject=subject, prize=rng.choice(_PRIZES), year=year, twin=twin, number=number, n=n
            )
            return claim, values
    raise Unusable("could not fabricate a claim absent from every context")


def _distractor_sentence(question: Question, distractors: Sequence[Passage]) -> tuple[Passage, str]:
    wanted = tx.content_words(question.question)
    gold_text = " ".join(p.text for p in question.gold)
    best: tuple[int, int, Passage, str] | None = None
    for rank, passage in enumerate(distractors):
        for position, sentence in enumerate(tx.sentences(passage.text)):
            if not 40 <= len(sentence) <= 300 or tx.contains_any(sentence, question.answers) or sentence in gold_text:
                continue
            subject = tx.title_core(passage.title)
            resolved = tx.resolve_pronoun(sentence, subject if subject in passage.text else "")
            if resolved.split()[0] in tx.PRONOUNS:
                continue
            score = len(wanted & tx.content_words(resolved))
            key = (score, -(rank * 100 + position))
            if best is None or key > (best[0], best[1]):
                best = (key[0], key[1], passage, resolved)
    if best is None:
        raise Unusable("no distractor sentence to present as the answer")
    return best[2], best[3]


def build_group(question: Question) -> dict[str, Any]:
    """The question's stored record: contexts and its faithful answer with three hallucinated variants."""
    rng = random.Random(f"{SEED}:{question.id}")
    if tx.answer_kind(question.answers[0]) == "other" and question.answers[0].casefold() in ("yes", "no"):
        raise Unusable("yes/no answer")
    answer_passage, sentence, span = _faithful_sentence(question)
    wanted = tx.content_words(question.question)
    ranked = sorted(question.candidates, key=lambda p: (-len(wanted & tx.content_words(p.text)), p.id))
    distractors = [p for p in ranked if not tx.contains_any(p.text, question.answers)][:DISTRACTORS]
    if len(distractors) < DISTRACTORS:
        raise Unusable("too few distractor passages without the answer")
    shown = [*question.gold, *distractors]
    rng.shuffle(shown)
    contexts = [p.text for p in shown]
    n = shown.index(answer_passage) + 1
    faithful = _with_citation(sentence, n)
    swapped_in = _swap_entity(question, sentence, span, distractors, rng)
    wrong = _with_citation(sentence.replace(span, swapped_in, 1), n)
    subject = tx.title_core(answer_passage.title)
    claim, fabricated = _unsupported_claim(subject, contexts, n, rng)
    source, statement = _distractor_sentence(question, distractors)
    answers = [
        ("faithful", faithful, {}),
        ("wrong_entity", wrong, {"gold_span": span, "swapped_in": swapped_in}),
        ("unsupported_claim", f"{faithful} {claim}", {"claim": claim, "fabricated": fabricated}),
        ("distractor_answer", _with_citation(statement, n), {"distractor_id": source.id}),
    ]
    return {
        "question_id": question.id,
        "source_dataset": question.dataset,
        "question": question.question,
        "gold_answers": list(question.answers),
        "contexts": contexts,
        "source_ids": [p.id for p in shown],
        "gold_index": n,
        "answers": [
            {
                "id": f"{question.id}:{variant}",
                "variant": variant,
                "label": "faithful" if variant == "faithful" else "hallucinated",
                "answer": answer,
                "detail": detail,
            }
            for variant, answer, detail in answers
        ],
    }


def build_set(
    eval_dir: Path, count: int = QUESTIONS, datasets: Sequence[str] = DATASETS
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The first ``count`` usable questions' records, and why each skipped question was unusable."""
    groups: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for question in load_questions(eval_dir, datasets):
        if len(groups) == count:
            break
        try:
            groups.append(build_group(question))
        except Unusable as exc:
            skipped[question.id] = str(exc)
    if len(groups) < count:
        raise InputError(f"only {len(groups)} usable questions in {eval_dir}, {count} wanted", hint="lower --count")
    return groups, skipped


def write_set(groups: Sequence[dict[str, Any]], out: Path) -> None:
    """Write the records as JSONL (stable key order, UTF-8)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(g, ensure_ascii=False) + "\n" for g in groups), "utf-8")


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: build the set and report what was skipped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    default_eval = Path(__file__).resolve().parents[4] / "shared" / "eval"
    parser.add_argument("--eval-dir", type=Path, default=default_eval)
    parser.add_argument("--out", type=Path, default=DEFAULT_SET)
    parser.add_argument("--count", type=int, default=QUESTIONS)
    args = parser.parse_args(argv)
    groups, skipped = build_set(args.eval_dir, args.count)
    write_set(groups, args.out)
    by_dataset: dict[str, int] = {}
    for group in groups:
        by_dataset[group["source_dataset"]] = by_dataset.get(group["source_dataset"], 0) + 1
    print(f"{len(groups)} questions ({by_dataset}), {4 * len(groups)} answers -> {args.out}")
    for qid, reason in skipped.items():
        print(f"  skipped {qid}: {reason}")


if __name__ == "__main__":
    main()
