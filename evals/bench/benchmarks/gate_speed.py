"""Gate time / generation time over real answers: ingest data/ into a temporary store, answer each question with the
real answer workflow (local Qwen 1.5B), and read both times from the same answer's workflow trace::

    .venv/bin/python -m evals.bench.benchmarks.gate_speed [--limit N] [--json OUT] [--store DIR] [--no-serve]

Generation is the ``generate`` step (plus ``generate_strict`` when the strict retry ran), the gate the ``gate``
step (plus ``gate_strict``); both are measured in the same run, on the same machine, for the same answer. The goal
of issue 7 was a mean ratio <= 1.0, issue 18's is <= 0.5 with the claim judge. Answers whose model call was skipped
(no passages, a blocked question) are listed but left out of the ratio. Each row also has the generation's and the
judge's tokens, and the whole answer's seconds (the service call, request to stored record): the summary's median
over all answers and over released ones is issue 19's "time to a released answer"."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from core.console import clear_errors, console
from core.errors import InputError
from core.settings import Settings, load_settings
from core.types import AnswerRecord
from evals.bench.benchmarks.gate_proof import judge_settings, stop_on_sigterm
from evals.bench.metrics import bootstrap_ci
from pipelines.compose.answer import build_answer_service
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.stores import open_store

REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_QUESTIONS = REPO_ROOT / "evals" / "bench" / "proof" / "data" / "speed_questions.txt"
GENERATION_STEPS = ("generate", "generate_strict")
GATE_STEPS = ("gate", "gate_strict")
#: The gate stages that call the judge model: the claim verdicts, relevance, and a Ragas judge.
JUDGE_STAGES = ("entailment", "relevance", "judge")
app = typer.Typer(add_completion=False, help=__doc__.splitlines()[0] if __doc__ else None)


def read_questions(path: Path) -> list[str]:
    """Non-empty, non-comment lines of ``path``."""
    if not path.is_file():
        raise InputError(f"questions file {path} does not exist", hint="pass --questions FILE (one per line)")
    questions = [line.strip() for line in path.read_text("utf-8").splitlines()]
    questions = [q for q in questions if q and not q.startswith("#")]
    if not questions:
        raise InputError(f"{path} holds no questions", hint="one question per line; # starts a comment")
    return questions


def timing(record: AnswerRecord, seconds: float | None = None) -> dict[str, Any]:
    """Generation and gate milliseconds of one answer, from its workflow trace, and their ratio; ``seconds``: the
    whole answer as the caller timed it."""
    trace = record.provenance.trace
    generation = sum(t.duration_ms for t in trace if t.step in GENERATION_STEPS and t.status != "skipped")
    gate = sum(t.duration_ms for t in trace if t.step in GATE_STEPS and t.status != "skipped")
    stages = record.provenance.gate.stages
    ran = [s.name for s in stages if s.outcome != "skipped"]
    judge_prompt, judge_completion = record.provenance.gate.judge_tokens()
    return {
        "question": record.question,
        "answer": record.provenance.draft or record.answer,
        "reason": record.provenance.gate.reason,
        "decision": record.provenance.gate.decision,
        "generation_ms": round(generation, 1),
        "gate_ms": round(gate, 1),
        "ratio": round(gate / generation, 4) if generation > 0 else None,
        "judge_ran": any(name in JUDGE_STAGES for name in ran),
        "stages_ran": ran,
        "generation_tokens": [record.provenance.prompt_tokens, record.provenance.completion_tokens],
        "judge_tokens": [judge_prompt, judge_completion],
        "strict_retry": any(t.step == "generate_strict" and t.status != "skipped" for t in trace),
        "seconds": None if seconds is None else round(seconds, 3),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean (and bootstrap 95% CI) of the per-answer ratio, and total gate time over total generation time."""
    timed = [r for r in rows if r["ratio"] is not None]
    ratios = [float(r["ratio"]) for r in timed]
    total_generation = sum(r["generation_ms"] for r in timed)
    whole = [float(r["seconds"]) for r in rows if r.get("seconds") is not None]
    released = [float(r["seconds"]) for r in rows if r.get("seconds") is not None and r.get("decision") == "released"]
    return {
        "answers": len(rows),
        "timed": len(timed),
        "mean_ratio": bootstrap_ci(ratios).as_dict() if ratios else None,
        "total_ratio": round(sum(r["gate_ms"] for r in timed) / total_generation, 4) if total_generation else None,
        "mean_generation_ms": round(total_generation / len(timed), 1) if timed else None,
        "mean_gate_ms": round(sum(r["gate_ms"] for r in timed) / len(timed), 1) if timed else None,
        "judge_ran": sum(1 for r in timed if r["judge_ran"]),
        "mean_judge_prompt_tokens": round(sum(r["judge_tokens"][0] for r in timed) / len(timed), 1) if timed else None,
        "median_seconds": round(statistics.median(whole), 3) if whole else None,
        "released": len(released),
        "median_released_seconds": round(statistics.median(released), 3) if released else None,
        "rows": list(rows),
    }


def _store(settings: Settings, store: Path | None, workdir: Path, err: Console) -> Settings:
    if store is not None:
        return settings.model_copy(update={"store_dir": store})
    root = workdir / "store"
    local = settings.model_copy(update={"store_dir": root})
    with err.status("ingesting data/ into a temporary store"):
        embedder = load_embedder(local)
        knowledge = open_store(local, embedder, create=True)
        build_ingestor(local, knowledge, embedder).ingest([REPO_ROOT / "data"])
        knowledge.audit.close()
    return local


@app.command()
@clear_errors
def main(
    questions: Annotated[Path, typer.Option(help="One question per line.")] = DEFAULT_QUESTIONS,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    store: Annotated[Path | None, typer.Option(help="An existing store (default: ingest data/ afresh).")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the figures as JSON here.")] = None,
    serve: Annotated[bool, typer.Option(help="Start the local model (else KGRAG_LLM_BASE_URL).")] = True,
) -> None:
    """Answer each question with the real workflow and print gate time / generation time per answer."""
    stop_on_sigterm()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}", hint="omit --limit to answer every question")
    asked = read_questions(questions)[:limit]
    err = console(stderr=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kgrag-gate-speed-") as tmp:
        settings = _store(load_settings(), store, Path(tmp), err)
        with judge_settings(settings, serve, Path(tmp) / "model.log") as served:
            embedder = load_embedder(served)
            service = build_answer_service(served, open_store(served, embedder, create=False), embedder)
            columns = (
                TextColumn("answer"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns, console=err, transient=True) as progress:
                task = progress.add_task("answer", total=len(asked))
                try:
                    for question in asked:
                        started = time.perf_counter()
                        record = service.answer(question)
                        rows.append(timing(record, time.perf_counter() - started))
                        progress.console.print(json.dumps(rows[-1]))  # the log keeps every row
                        progress.advance(task)
                except (KeyboardInterrupt, SystemExit):  # stopped early: report the answers that completed
                    err.print(f"[yellow]stopped after {len(rows)} of {len(asked)} answers[/]")
                    if not rows:
                        raise
    summary = summarise(rows) | {"gate": served.gate.model_dump(mode="json")}
    out = Console(highlight=False, width=160)
    table = Table(title="gate time / generation time, per answer (same run)")
    for column in ("question", "decision", "stages run", "generation s", "gate s", "ratio"):
        table.add_column(column, justify="right" if column.endswith(("s", "ratio")) else "left")
    for row in rows:
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        table.add_row(
            row["question"][:60],
            row["decision"] + (" (strict retry)" if row["strict_retry"] else ""),
            ",".join(row["stages_ran"]),
            f"{row['generation_ms'] / 1000:.2f}",
            f"{row['gate_ms'] / 1000:.2f}",
            ratio,
        )
    out.print(table)
    mean = summary["mean_ratio"]
    if mean is not None:
        out.print(
            f"mean gate/generation ratio {mean['mean']:.3f} [95% CI {mean['ci_low']:.3f}, {mean['ci_high']:.3f}] "
            f"over {summary['timed']} answers; total gate / total generation {summary['total_ratio']:.3f}; "
            f"judge ran on {summary['judge_ran']} of {summary['timed']}"
        )
    if summary["median_seconds"] is not None:
        released = summary["median_released_seconds"]
        out.print(
            f"whole answer: median {summary['median_seconds']:.2f} s over {len(rows)}; released "
            f"{summary['released']}" + (f", median {released:.2f} s" if released is not None else "")
        )
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2), "utf-8")
        err.print(f"figures written to {json_path}")


if __name__ == "__main__":
    app()
