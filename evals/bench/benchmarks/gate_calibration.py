"""Calibrate the gate cascade's thresholds on a small labelled set built from the END of shared/eval/musique.

For each of the last ``--count`` questions: contexts = its gold passages plus three distractors (neighbouring
passages of the same question block that do not hold the answer), shuffled; then five answers:

- ``faithful``: the gold sentence stating the answer, citing its passage as ``[n]``;
- ``faithful_two``: a sentence of the other gold passage citing it, then the faithful sentence;
- ``wrong_entity``: the faithful sentence with the answer swapped for another question's answer of the same shape;
- ``added_claim``: the faithful sentence plus a fabricated sentence about the passage's subject (a year or a number
  no context holds), citing the same passage;
- ``distractor``: a distractor passage's sentence presented as the answer, citing the gold passage.

The cheap stages run on every answer (scores and verdicts per stage); with ``--judge`` the cascade's judge (the
local Qwen model started on a free loopback port) decides the inconclusive ones. Prints the hallucination recall and
faithful release rate per stage and overall, and the mean gate time with and without the judge::

    .venv/bin/python -m evals.bench.benchmarks.gate_calibration --count 30 [--judge-url http://127.0.0.1:8080/v1]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.llm import ModelClient
from core.settings import GateSettings
from core.text import sentence_spans
from evals.gate.cascade import CascadeGate
from evals.gate.checks.claims import check_input
from pipelines.compose.answer import ragas_judge
from retrieval.embedder import SentenceTransformerEmbedder

SEED = 7
_CLAIMS = (
    "{subject} also received the Pulitzer Prize in {year} [{n}].",
    "In {year}, {subject} was bought by a group of {number} investors [{n}].",
    "{subject} was later renamed Northfield Hall in {year} [{n}].",
    "More than {number} people attended the opening of {subject} in {year} [{n}].",
)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


def _find(sentence: str, answers: list[str]) -> str | None:
    for answer in answers:
        match = re.search(re.escape(answer), sentence, re.IGNORECASE)
        if match:
            return match.group(0)
    return None


def _shape(answer: str) -> str:
    return "number" if re.search(r"\d", answer) else "name"


def _cite(sentence: str, n: int) -> str:
    body = sentence.rstrip().rstrip(".!?")
    return f"{body} [{n}]."


def build(eval_dir: Path, count: int) -> list[dict[str, Any]]:
    """The labelled calibration items (one dict per answer)."""
    questions = _read(eval_dir / "musique" / "questions.jsonl")
    corpus = _read(eval_dir / "musique" / "corpus.jsonl")
    by_id = {p["id"]: p for p in corpus}
    order = [p["id"] for p in corpus]
    all_answers = [q["answers"][0] for q in questions]
    rng = random.Random(SEED)
    items: list[dict[str, Any]] = []
    for q in reversed(questions):
        if len({i["question_id"] for i in items}) >= count:
            break
        gold = [by_id[g] for g in q["gold_passage_ids"] if g in by_id]
        answer_passage, sentence, span = None, "", ""
        for passage in gold:
            for s in _sentences(passage["text"]):
                found = _find(s, q["answers"])
                if found and len(s) <= 400:
                    answer_passage, sentence, span = passage, s, found
                    break
            if answer_passage:
                break
        if answer_passage is None or span.casefold() in ("yes", "no"):
            continue
        positions = [order.index(g["id"]) for g in gold]
        block = order[max(0, min(positions) - 10) : max(positions) + 11]
        words = set(re.findall(r"\w+", q["question"].casefold()))
        pool = [
            by_id[i] for i in block if i not in q["gold_passage_ids"] and _find(by_id[i]["text"], q["answers"]) is None
        ]
        pool.sort(key=lambda p: -len(words & set(re.findall(r"\w+", p["text"].casefold()))))
        distractors = pool[:3]
        if len(distractors) < 3:
            continue
        shown = [*gold, *distractors]
        rng.shuffle(shown)
        contexts = [p["text"] for p in shown]
        joined = " ".join(contexts)
        n = shown.index(answer_passage) + 1
        faithful = _cite(sentence, n)
        variants: list[tuple[str, str]] = [("faithful", faithful)]
        other_gold = [p for p in gold if p is not answer_passage]
        if other_gold:
            first = next((s for s in _sentences(other_gold[0]["text"]) if 30 <= len(s) <= 300), None)
            if first:
                variants.append(("faithful_two", f"{_cite(first, shown.index(other_gold[0]) + 1)} {faithful}"))
        swaps = [
            a
            for a in all_answers
            if _shape(a) == _shape(span) and a.casefold() not in joined.casefold() and a.casefold() != span.casefold()
        ]
        if swaps:
            variants.append(("wrong_entity", _cite(sentence.replace(span, rng.choice(swaps), 1), n)))
        subject = re.sub(r"\s*\(.*?\)\s*$", "", answer_passage["title"])
        year = next(y for y in (str(rng.randint(1890, 2015)) for _ in range(200)) if y not in joined)
        number = f"{rng.randint(2, 97)},{rng.randint(100, 999)}"
        claim = rng.choice(_CLAIMS).format(subject=subject, year=year, number=number, n=n)
        variants.append(("added_claim", f"{faithful} {claim}"))
        distractor = next(
            (s for p in distractors for s in _sentences(p["text"]) if 40 <= len(s) <= 300),
            None,
        )
        if distractor:
            variants.append(("distractor", _cite(distractor, n)))
        for variant, answer in variants:
            items.append(
                {
                    "question_id": q["id"],
                    "question": q["question"],
                    "contexts": contexts,
                    "variant": variant,
                    "faithful": variant.startswith("faithful"),
                    "answer": answer,
                }
            )
    return items


def _stage_table(results: list[dict[str, Any]], names: Sequence[str]) -> None:
    print(f"\n{'stage':<20} {'variant':<14} {'pass':>5} {'incon':>6} {'fail':>5}   scores (min / median / max)")
    for name in names:
        by_variant: dict[str, Counter[str]] = defaultdict(Counter)
        values: dict[str, list[float]] = defaultdict(list)
        for r in results:
            stage = next((s for s in r["stages"] if s["name"] == name), None)
            if stage is None:
                continue
            by_variant[r["variant"]][stage["outcome"]] += 1
            if name in stage["scores"]:
                values[r["variant"]].append(stage["scores"][name])
        for variant in sorted(by_variant):
            c, v = by_variant[variant], values[variant]
            spread = f"{min(v):.2f} / {statistics.median(v):.2f} / {max(v):.2f}" if v else "-"
            print(f"{name:<20} {variant:<14} {c['pass']:>5} {c['inconclusive']:>6} {c['fail']:>5}   {spread}")


def _summary(results: list[dict[str, Any]], label: str) -> None:
    faithful = [r for r in results if r["faithful"]]
    hallucinated = [r for r in results if not r["faithful"]]
    released = sum(r["decision"] == "released" for r in faithful)
    caught = sum(r["decision"] != "released" for r in hallucinated)
    decided = Counter(r["decided_by"] for r in results)
    times = [r["duration_ms"] for r in results]
    print(f"\n== {label}")
    print(f"faithful release rate:   {released}/{len(faithful)} = {released / max(1, len(faithful)):.1%}")
    print(f"hallucination recall:    {caught}/{len(hallucinated)} = {caught / max(1, len(hallucinated)):.1%}")
    for variant in sorted({r["variant"] for r in results}):
        rows = [r for r in results if r["variant"] == variant]
        print(
            f"  {variant:<14} " + ", ".join(f"{k}={v}" for k, v in sorted(Counter(r["decision"] for r in rows).items()))
        )
    print("decided by stage:        " + ", ".join(f"{k}={v}" for k, v in decided.most_common()))
    print(f"mean gate time per answer: {statistics.mean(times):.1f} ms (max {max(times):.1f} ms)")


def _decided_by(stages: list[dict[str, Any]]) -> str:
    ran = [s for s in stages if s["outcome"] != "skipped"]
    decisive = [s for s in ran if s["outcome"] in ("fail", "error")]
    if decisive:
        return decisive[0]["name"]
    if any(s["name"] == "judge" for s in ran):
        return "judge"
    return "cheap stages (all pass)" if ran else "none"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=Path(__file__).resolve().parents[4] / "shared" / "eval")
    parser.add_argument("--count", type=int, default=30)
    parser.add_argument("--judge-url", default=None, help="OpenAI base URL of a running judge (e.g. kgrag model serve)")
    parser.add_argument("--judge-model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--dump", type=Path, default=None, help="write every item's record as JSONL here")
    args = parser.parse_args(argv)

    items = build(args.eval_dir, args.count)
    print(
        f"{len({i['question_id'] for i in items})} questions, {len(items)} answers "
        f"({dict(Counter(i['variant'] for i in items))})"
    )
    embedder = SentenceTransformerEmbedder()
    settings = GateSettings()
    cheap_stages = [s for s in settings.stages if s != "judge"]
    if args.judge_url:
        client = ModelClient(base_url=args.judge_url, model=args.judge_model, timeout_s=600)
    else:
        client = ModelClient(base_url="http://127.0.0.1:9/v1", model="none", timeout_s=1)
    stages = settings.stages if args.judge_url else cheap_stages
    gate = CascadeGate.from_settings(
        settings.model_copy(update={"stages": stages, "inconclusive_decision": "review"}),
        client,
        embedder,
        ragas_judge,
    )
    gate.evaluate("warm up?", "Warm up [1].", ["Warm up."])
    results = []
    for item in items:
        started = time.perf_counter()
        record = gate.evaluate(item["question"], item["answer"], item["contexts"])
        elapsed = (time.perf_counter() - started) * 1000
        stages_dump = [s.model_dump() for s in record.stages]
        results.append(
            item
            | {
                "decision": record.decision,
                "stages": stages_dump,
                "duration_ms": elapsed,
                "decided_by": _decided_by(stages_dump),
                "claims": len(check_input(item["question"], item["answer"], item["contexts"]).claims),
            }
        )
    _stage_table(results, cheap_stages)
    _summary(
        results, "cascade" + (" with the judge" if args.judge_url else " without the judge (inconclusive -> review)")
    )
    if args.dump:
        args.dump.write_text("".join(json.dumps(r) + "\n" for r in results), encoding="utf-8")


if __name__ == "__main__":
    main()
