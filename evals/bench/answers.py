"""The answer benchmark behind ``kgrag bench --answers``: every question through the real answer workflow.

Each question is asked of :class:`~pipelines.answer.service.AnswerService` as the API builds it (retrieval, graph
context, the versioned prompt, the model, the gate, the strict retry, the audit record), once per *variant*: the
settings as loaded (``default``) and each ``--vary PATH=VALUE`` override (e.g. ``retrieval.mode=hybrid``), in the
same run, on the same store. Automatic prompt rollback is off during a benchmark (it would move the repository's
labels). Reported per variant, each with a 95% percentile-bootstrap interval over questions:

- EM, token F1 and contains-gold of the **draft** (the model's text) and of the **released** text (an answer that
  was not released scores 0: what the user got);
- the table released / held x right / wrong, as shares of all questions (``right``: the text contains a gold
  answer or alias after SQuAD normalisation; a held answer is judged by its draft);
- time per answer (whole answer, retrieval, generation, gate), prompt tokens and the gate judge's tokens;
- for every variant but ``default``, the paired difference ``default - variant`` of released F1 and of
  released-and-right.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from core.errors import InputError, ModelOutputError
from core.settings import Settings
from core.types import AnswerRecord
from evals.bench.metrics import bootstrap_ci, exact_match, normalize_answer, percentile, token_f1
from evals.gate.checks.claims import strip_citations
from pipelines.compose.answer import build_answer_service
from pipelines.ingest.progress import NoProgress, ProgressReporter
from retrieval.base import Embedder

if TYPE_CHECKING:
    from pipelines.store.knowledge import KnowledgeStore

DEFAULT = "default"
#: Workflow steps timed per answer (both attempts when the strict retry ran).
STAGES: dict[str, tuple[str, ...]] = {
    "retrieval": ("retrieve", "graph_context"),
    "generation": ("generate", "generate_strict"),
    "gate": ("gate", "gate_strict"),
}


class Question(Protocol):
    """A benchmark question with its gold answers (:class:`evals.bench.harness.BenchQuestion`)."""

    @property
    def id(self) -> str: ...

    @property
    def question(self) -> str: ...

    @property
    def answers(self) -> list[str]: ...


@dataclass(frozen=True)
class Variant:
    """A named settings variant of the answer pipeline."""

    name: str
    settings: Settings


def contains_gold(text: str, answers: Sequence[str]) -> float:
    """1.0 when a normalised gold answer or alias occurs in the normalised text as whole words."""
    guess = f" {normalize_answer(text)} "
    return 1.0 if any((gold := normalize_answer(a)) and f" {gold} " in guess for a in answers) else 0.0


def parse_variant(spec: str, base: Settings) -> Variant:
    """``PATH=VALUE`` (``retrieval.mode=hybrid``, ``gate.enabled=false``) as a variant of ``base``."""
    path, sep, value = spec.partition("=")
    keys = [k for k in path.strip().split(".") if k]
    if not sep or not keys:
        raise InputError(f"--vary {spec!r} is not PATH=VALUE", hint="e.g. --vary retrieval.mode=hybrid")
    data: dict[str, Any] = base.model_dump()
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            raise InputError(f"--vary {spec!r}: settings have no group {key!r}", hint="e.g. retrieval.mode=hybrid")
        node = child
    if keys[-1] not in node:
        raise InputError(f"--vary {spec!r}: settings have no field {path!r}", hint="e.g. retrieval.mode=hybrid")
    node[keys[-1]] = value.strip()
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"--vary {spec!r} is not a valid setting: {exc.errors()[0]['msg']}") from exc
    return Variant(spec.strip(), settings)


def benchmark_settings(settings: Settings) -> Settings:
    """``settings`` with automatic prompt rollback off (a benchmark must not move the prompt labels)."""
    prompts = settings.prompts.model_copy(
        update={"rollback": settings.prompts.rollback.model_copy(update={"enabled": False})}
    )
    return settings.model_copy(update={"prompts": prompts})


def _stage_ms(record: AnswerRecord, steps: Sequence[str], concurrent: bool) -> float:
    times = [t.duration_ms for t in record.provenance.trace if t.step in steps and t.status != "skipped"]
    if not times:
        return 0.0
    return max(times) if concurrent else sum(times)


@dataclass
class AnswerRow:
    """One question's row. The defaults are a question whose model reply the service could not use: decision
    ``error``, nothing released, a wrong draft (the user got a 502 for it)."""

    answer_id: str | None = None
    decision: str = "error"
    reason: str = ""
    draft: str = ""
    answer: str = ""
    draft_em: float = 0.0
    draft_f1: float = 0.0
    draft_contains: float = 0.0
    em: float = 0.0
    f1: float = 0.0
    contains: float = 0.0
    released_right: float = 0.0
    released_wrong: float = 0.0
    held_right: float = 0.0
    held_wrong: float = 1.0
    seconds: float = 0.0
    retrieval_ms: float = 0.0
    generation_ms: float = 0.0
    gate_ms: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    judge_prompt_tokens: int = 0
    judge_completion_tokens: int = 0
    retried: bool = False
    facts: int = 0


def score_record(record: AnswerRecord, answers: Sequence[str], seconds: float) -> dict[str, Any]:
    """One answer's row: texts, decision, right/wrong, EM/F1/contains of draft and released text, times, tokens."""
    draft = strip_citations(record.provenance.draft)
    released = record.provenance.gate.decision == "released"
    text = strip_citations(record.answer) if released else ""
    draft_right = contains_gold(draft, answers) if draft else 0.0
    released_right = contains_gold(text, answers) if released else 0.0
    judge_prompt, judge_completion = record.provenance.gate.judge_tokens()
    row = AnswerRow(
        answer_id=record.answer_id,
        decision=record.provenance.gate.decision,
        reason=record.provenance.gate.reason,
        draft=draft,
        answer=text,
        draft_em=exact_match(draft, answers),
        draft_f1=token_f1(draft, answers),
        draft_contains=draft_right,
        em=exact_match(text, answers) if released else 0.0,
        f1=token_f1(text, answers) if released else 0.0,
        contains=released_right,
        released_right=released_right,
        released_wrong=1.0 if released and not released_right else 0.0,
        held_right=1.0 if not released and draft_right else 0.0,
        held_wrong=1.0 if not released and not draft_right else 0.0,
        seconds=round(seconds, 3),
        retrieval_ms=_stage_ms(record, STAGES["retrieval"], concurrent=True),
        generation_ms=_stage_ms(record, STAGES["generation"], concurrent=False),
        gate_ms=_stage_ms(record, STAGES["gate"], concurrent=False),
        prompt_tokens=record.provenance.prompt_tokens,
        completion_tokens=record.provenance.completion_tokens,
        judge_prompt_tokens=judge_prompt,
        judge_completion_tokens=judge_completion,
        retried=record.provenance.gate.retried,
        facts=len(record.facts),
    )
    return asdict(row)


def failed_row(error: ModelOutputError, seconds: float) -> dict[str, Any]:
    """A question whose model reply the service could not use (after the workflow's retries)."""
    return asdict(AnswerRow(reason=str(error)[:300], seconds=round(seconds, 3)))


#: Per-question fields summarised with a bootstrap CI (fractions of all questions).
SCORED = (
    "draft_em",
    "draft_f1",
    "draft_contains",
    "em",
    "f1",
    "contains",
    "released_right",
    "released_wrong",
    "held_right",
    "held_wrong",
)


def summarise(rows: Sequence[dict[str, Any]], resamples: int) -> dict[str, Any]:
    """A variant's summary: every scored field with its CI, times (p50/p95/mean ms) and prompt tokens."""
    out: dict[str, Any] = {key: bootstrap_ci([r[key] for r in rows], resamples=resamples).as_dict() for key in SCORED}
    released = [r for r in rows if r["decision"] == "released"]
    out["released"] = len(released)
    out["released_precision"] = (
        round(sum(r["released_right"] for r in released) / len(released), 6) if released else None
    )
    out["decisions"] = {d: sum(1 for r in rows if r["decision"] == d) for d in sorted({r["decision"] for r in rows})}
    times: dict[str, dict[str, float]] = {}
    for key in ("seconds", "retrieval_ms", "generation_ms", "gate_ms"):
        values = [float(r[key]) for r in rows]
        times[key] = {
            "p50": round(percentile(values, 50), 3),
            "p95": round(percentile(values, 95), 3),
            "mean": round(sum(values) / len(values), 3),
        }
    out["time"] = times
    tokens = [r["prompt_tokens"] for r in rows if r["prompt_tokens"] is not None]
    out["prompt_tokens"] = (
        {"mean": round(sum(tokens) / len(tokens), 1), "p50": percentile(tokens, 50)} if tokens else None
    )
    # the gate judge's verdict calls, per question (0 where no judge ran): what the gate adds to an answer's cost
    judged = [r.get("judge_prompt_tokens", 0) + r.get("judge_completion_tokens", 0) for r in rows]
    out["judge_tokens"] = {"mean": round(sum(judged) / len(judged), 1), "p50": percentile(judged, 50)} if rows else None
    return out


def run_answer_benchmark(
    questions: Sequence[Question],
    store: KnowledgeStore,
    embedder: Embedder,
    variants: Sequence[Variant],
    *,
    progress: ProgressReporter | None = None,
    resamples: int = 2000,
) -> dict[str, Any]:
    """Ask every question of the real answer service once per variant (in the order given) and report."""
    if not variants:
        raise InputError("no answer variant to run", hint="the default settings are always one")
    report_progress = progress or NoProgress()
    rows: dict[str, list[dict[str, Any]]] = {}
    for variant in variants:
        service = build_answer_service(benchmark_settings(variant.settings), store, embedder)
        report_progress.start(f"answers {variant.name}", len(questions))
        rows[variant.name] = []
        for q in questions:
            started = time.perf_counter()
            try:
                row = score_record(service.answer(q.question), q.answers, time.perf_counter() - started)
            except ModelOutputError as exc:  # one unusable reply is counted, not the end of the run
                row = failed_row(exc, time.perf_counter() - started)
            rows[variant.name].append({"id": q.id, **row})
            report_progress.advance(f"answers {variant.name}")
    summary = {name: summarise(found, resamples) for name, found in rows.items()}
    first = variants[0].name
    for name in rows:
        if name == first:
            continue
        summary[name]["paired_vs_" + first] = {
            key: bootstrap_ci(
                [a[key] - b[key] for a, b in zip(rows[first], rows[name], strict=True)], resamples=resamples
            ).as_dict()
            for key in ("f1", "released_right", "released_wrong")
        }
    return {
        "variants": [v.name for v in variants],
        "settings": {
            v.name: {
                "retrieval_mode": v.settings.retrieval.mode,
                "gate": v.settings.gate.backend if v.settings.gate.enabled else "off",
                "strict_retry": v.settings.prompts.strict_retry,
                "prompt_label": v.settings.prompts.label,
                "model": v.settings.llm_model,
            }
            for v in variants
        },
        "summary": summary,
        "questions": [
            {"id": q.id, "question": q.question, "answers": q.answers, **{n: rows[n][i] for n in rows}}
            for i, q in enumerate(questions)
        ],
    }
