"""The labelled proof set: items (question, contexts, answer, label, variant) and how they are stored.

Stored as JSONL, one line per question (``evals/proof/data/proof_set.jsonl``): the question, the contexts the gate
sees (in order: a citation ``[n]`` refers to ``contexts[n-1]``), their passage ids, and the question's answers::

    {"question_id", "source_dataset", "question", "gold_answers", "contexts", "source_ids", "gold_index",
     "answers": [{"id", "variant", "label", "answer", "detail"}, ...]}

Grouping by question keeps the file small (the contexts are written once, not four times);
:func:`load_items` expands it into one :class:`ProofItem` per answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import InputError

Label = Literal["faithful", "hallucinated"]
VARIANTS: tuple[str, ...] = ("faithful", "wrong_entity", "unsupported_claim", "distractor_answer")
#: Proof set v2 (``build_v2.py``): faithful forms, then wrong answers made of the contexts' own words.
V2_VARIANTS: tuple[str, ...] = (
    "verbatim",
    "paraphrased",
    "short",
    "multi_sentence",
    "negated",
    "swapped_entity",
    "swapped_roles",
    "swapped_number",
    "distractor_answer",
    "off_topic",
)
DEFAULT_SET = Path(__file__).resolve().parent / "data" / "proof_set.jsonl"


@dataclass(frozen=True)
class ProofItem:
    """One labelled answer to score: the gate sees ``question``, ``answer`` and ``contexts``."""

    id: str
    question_id: str
    question: str
    contexts: tuple[str, ...]
    answer: str
    label: Label
    variant: str
    source_ids: tuple[str, ...]
    gold_answers: tuple[str, ...]
    gold_index: int
    source_dataset: str
    detail: dict[str, str] = field(default_factory=dict)
    #: v2: ``calibration`` (thresholds tuned here) or ``report`` (figures reported here); v1: empty.
    part: str = ""


def _expand(group: dict[str, Any]) -> list[ProofItem]:
    return [
        ProofItem(
            id=str(answer["id"]),
            question_id=str(group["question_id"]),
            question=str(group["question"]),
            contexts=tuple(str(c) for c in group["contexts"]),
            answer=str(answer["answer"]),
            label=answer["label"],
            variant=str(answer["variant"]),
            source_ids=tuple(str(s) for s in group["source_ids"]),
            gold_answers=tuple(str(a) for a in group["gold_answers"]),
            gold_index=int(group["gold_index"]),
            source_dataset=str(group["source_dataset"]),
            detail={str(k): str(v) for k, v in answer.get("detail", {}).items()},
            part=str(group.get("part", "")),
        )
        for answer in group["answers"]
    ]


def load_items(path: Path = DEFAULT_SET) -> list[ProofItem]:
    """Every item of the proof set at ``path``, question by question (a question's four answers together)."""
    if not path.is_file():
        raise InputError(
            f"proof set {path} does not exist",
            hint="build it with `.venv/bin/python -m evals.bench.proof.build` or pass --set PATH",
        )
    items: list[ProofItem] = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            group = json.loads(line)
            items.extend(_expand(group))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{path}:{number} is not a proof-set record ({type(exc).__name__}: {exc})",
                hint="rebuild the set with `.venv/bin/python -m evals.bench.proof.build`",
            ) from exc
    return items
