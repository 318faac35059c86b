"""The answer gate's proof: run the labelled set (evals/proof/data/proof_set.jsonl) through the gate the settings
build, and print hallucination recall and faithful release rate (95% bootstrap CIs, per variant), what each
cascade stage decided and its mean time, the gate's mean time and the confusion table::

    .venv/bin/python -m evals.bench.benchmarks.gate_proof [--limit N] [--json OUT] [--results FILE] [--stages
    a,b]

By default it starts the local model (``settings.model_server.model``, Qwen2.5 1.5B) on a free 127.0.0.1 port as
the judge; ``--no-serve`` uses ``KGRAG_LLM_BASE_URL`` instead. Every item's result is appended to ``--results``
as it is known, so an interrupted run resumes where it stopped (delete the file to start over).
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from core.console import clear_errors, console
from core.errors import InputError
from core.llm import ModelClient
from core.settings import Settings, load_settings
from evals.bench.proof.items import DEFAULT_SET, ProofItem, load_items
from evals.bench.proof.metrics import ALL_PASSED, JUDGES, summarise
from evals.bench.proof.model_server import local_model_server
from evals.bench.proof.runner import read_results, run_items
from evals.gate.base import AnswerGate
from evals.gate.factory import build_gate
from pipelines.compose.answer import ragas_judge
from pipelines.compose.models import load_embedder

DEFAULT_RESULTS = Path(__file__).resolve().parents[1] / "proof" / "results" / "gate_proof.jsonl"
app = typer.Typer(add_completion=False, help=__doc__.splitlines()[0] if __doc__ else None)


def _pct(estimate: dict[str, float] | None) -> str:
    if estimate is None:
        return "-"
    return f"{estimate['mean'] * 100:.1f}% [{estimate['ci_low'] * 100:.1f}, {estimate['ci_high'] * 100:.1f}]"


def report_tables(summary: dict[str, Any]) -> list[Table]:
    """The summary as rich tables: headline, per variant, per stage, confusion."""
    head = Table(title=f"answer gate proof: {summary['items']} items")
    head.add_column("metric")
    head.add_column("value [95% CI]", justify="right")
    head.add_column("n", justify="right")
    head.add_row(
        "hallucination recall (not released)",
        _pct(summary["hallucination_recall"]),
        str(summary["counts"]["hallucinated"]),
    )
    head.add_row("faithful release rate", _pct(summary["faithful_release_rate"]), str(summary["counts"]["faithful"]))
    mean = summary["mean_gate_ms"]
    head.add_row("mean gate time", "-" if mean is None else f"{mean / 1000:.2f} s", str(summary["items"]))
    head.add_row("gate errors (routed to review)", str(summary["gate_errors"]), "")

    variants = Table(title="per variant")
    for column in ("variant", "items", "caught / released [95% CI]", "decisions"):
        variants.add_column(column)
    for name, row in summary["per_variant"].items():
        metric = row.get("caught") or row.get("release_rate")
        kind = "released" if "release_rate" in row else "caught"
        decisions = ", ".join(f"{k} {v}" for k, v in sorted(row["decisions"].items()))
        variants.add_row(name, str(row["items"]), f"{kind} {_pct(metric)}", decisions)

    stages = Table(title="per stage (decided = its verdict stood)")
    for column in ("stage", "ran", "decided", "decisions", "outcomes", "mean ms"):
        stages.add_column(column)
    for name, row in summary["stages"].items():
        stages.add_row(
            name,
            str(row["ran"]),
            str(row["decided"]),
            ", ".join(f"{k} {v}" for k, v in sorted(row["decisions"].items())),
            ", ".join(f"{k} {v}" for k, v in sorted(row["outcomes"].items())),
            "-" if row["mean_ms"] is None else f"{row['mean_ms']:.0f}",
        )

    confusion = Table(title="confusion (label x decision)")
    columns = sorted({d for row in summary["confusion"].values() for d in row})
    confusion.add_column("label")
    for decision in columns:
        confusion.add_column(decision, justify="right")
    for label, row in summary["confusion"].items():
        confusion.add_row(label, *(str(row.get(d, 0)) for d in columns))
    return [head, variants, stages, confusion]


def _with_stages(settings: Settings, stages: str | None) -> Settings:
    if stages is None:
        return settings
    if "stages" not in type(settings.gate).model_fields:
        raise InputError("--stages: this gate has no configurable stages", hint="omit --stages")
    names = [name.strip() for name in stages.split(",") if name.strip()]
    try:
        gate = type(settings.gate).model_validate({**settings.gate.model_dump(), "stages": names})
    except ValueError as exc:
        raise InputError(f"--stages {stages!r} is not valid: {exc}", hint="see GateSettings.stages") from exc
    return settings.model_copy(update={"gate": gate})


def stop_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so a killed run still stops the model server it started."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


@contextmanager
def judge_settings(settings: Settings, serve: bool, log_path: Path) -> Iterator[Settings]:
    """``settings`` pointing at a freshly started local model server (``serve``), or unchanged."""
    if not serve:
        yield settings
        return

    model = settings.model_server.model
    with local_model_server(model, log_path, n_ctx=settings.model_server.n_ctx) as base_url:
        yield settings.model_copy(update={"llm_base_url": base_url, "llm_model": model})


def build_gate_from(settings: Settings) -> AnswerGate:
    """The gate ``settings`` ask for, judged by ``settings``' model, embeddings by the local MiniLM."""

    return build_gate(
        settings.gate, ModelClient.from_settings(settings), load_embedder(settings), judge_factory=ragas_judge
    )


def cheap_settings(settings: Settings) -> Settings | None:
    """The same gate without its judge stages (``None`` when it has no judge or no cheap stage)."""
    stages = list(getattr(settings.gate, "stages", []))
    cheap_stages = [s for s in stages if s not in JUDGES]
    if cheap_stages == stages or not cheap_stages:
        return None
    cheap = settings.gate.model_copy(update={"stages": cheap_stages})
    return settings.model_copy(update={"gate": cheap})


def score(
    items: list[ProofItem], results: Path, settings: Settings, serve: bool, err: Console, *, cheap_first: bool = True
) -> list[dict[str, Any]]:
    """Score the items not yet in ``results`` (with progress bars) and return every item's result.

    ``cheap_first``: a first pass runs the cascade without its judge over every item and keeps the results the
    cheap stages decided (the cascade is deterministic and calls the judge only when a cheap stage is
    inconclusive, so those are exactly the full cascade's results, minus the ``skipped`` judge record); the
    second pass runs the full cascade, judge included, on the rest, in set order.
    """
    done_ids = {r["id"] for r in read_results(results)}
    todo = [item for item in items if item.id not in done_ids]
    err.print(f"{len(items)} items, {len(items) - len(todo)} already in {results}, {len(todo)} to score")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    cheap = cheap_settings(settings) if cheap_first else None
    if todo and cheap is not None:
        with Progress(*columns, TimeRemainingColumn(), console=err, transient=True) as progress:
            task = progress.add_task("cheap stages", total=len(todo))
            run_items(
                build_gate_from(cheap),
                todo,
                results,
                on_result=lambda _r: progress.advance(task),
                accept=lambda r: r["decided_by"] not in ("none", ALL_PASSED),
            )
        done_ids = {r["id"] for r in read_results(results)}
        todo = [item for item in items if item.id not in done_ids]
        err.print(f"cheap stages decided {len(items) - len(todo)} of {len(items)}; {len(todo)} go to the judge")
    if todo:
        log = Path(tempfile.gettempdir()) / f"kgrag-{results.stem}.model.log"
        err.print(f"model server log: {log}")
        with judge_settings(settings, serve, log) as judged:
            gate = build_gate_from(judged)
            with Progress(*columns, TimeRemainingColumn(), console=err, transient=True) as progress:
                task = progress.add_task("full cascade", total=len(todo))
                run_items(gate, todo, results, on_result=lambda _r: progress.advance(task))
    wanted = {item.id for item in items}
    return [r for r in read_results(results) if r["id"] in wanted]


@app.command()
@clear_errors
def main(
    proof_set: Annotated[Path, typer.Option("--set", help="The labelled set (JSONL).")] = DEFAULT_SET,
    limit: Annotated[int | None, typer.Option(help="Only the first N items (a question's 4 answers together).")] = None,
    results: Annotated[Path, typer.Option(help="Per-item results JSONL (appended; resumable).")] = DEFAULT_RESULTS,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the summary as JSON here.")] = None,
    stages: Annotated[str | None, typer.Option(help="Override the gate's stages (comma-separated).")] = None,
    serve: Annotated[bool, typer.Option(help="Start the local model as the judge (else KGRAG_LLM_BASE_URL).")] = True,
    report_only: Annotated[bool, typer.Option(help="Only summarise what --results holds.")] = False,
    part: Annotated[
        str | None, typer.Option(help="Only this part of a v2 set: calibration (tune here) or report.")
    ] = None,
    variants: Annotated[
        str | None, typer.Option(help="Only these answer variants (comma-separated, e.g. short,off_topic).")
    ] = None,
    cheap_first: Annotated[
        bool, typer.Option(help="First decide what the cheap stages can for every item, then run the judge.")
    ] = True,
) -> None:
    """Score the labelled set with the gate and print the proof's figures."""
    stop_on_sigterm()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    err = console(stderr=True)
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}", hint="omit --limit to run every item")
    chosen = None if variants is None else {v.strip() for v in variants.split(",") if v.strip()}
    items = [
        item
        for item in load_items(proof_set)
        if (part is None or item.part == part) and (chosen is None or item.variant in chosen)
    ][:limit]
    if not items:
        raise InputError(
            f"no items of {proof_set} match --part {part} --variants {variants}",
            hint="variants are named in the set's README (e.g. verbatim, short, negated, off_topic)",
        )
    settings = _with_stages(load_settings(), stages)
    if report_only:
        wanted = {item.id for item in items}
        done = [r for r in read_results(results) if r["id"] in wanted]
    else:
        done = score(items, results, settings, serve, err, cheap_first=cheap_first)
    if not done:
        raise InputError(f"no results for these items in {results}", hint="run without --report-only first")
    finished = {r["id"] for r in done}
    pending: dict[str, int] = {}
    for item in items:
        if item.id not in finished:
            pending[item.variant] = pending.get(item.variant, 0) + 1
    summary = summarise(done) | {
        "pending": pending,
        "config": {"set": str(proof_set), "items": len(items), "gate": settings.gate.model_dump(mode="json")},
    }
    out = Console(highlight=False, width=160)
    for table in report_tables(summary):
        out.print(table)
    if pending:
        out.print(f"[yellow]{sum(pending.values())} of {len(items)} items not scored yet[/] (by variant: {pending})")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2), "utf-8")
        err.print(f"summary written to {json_path}")


if __name__ == "__main__":
    app()
