"""``kgrag bench``: the retrieval benchmark (every mode, same run) as a rich table and stable JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.console import console
from core.errors import InputError
from core.settings import load_settings
from evals.bench.harness import DEFAULT_ANSWER_VARIANTS, parse_modes, run_benchmark
from pipelines.cli.common import RichProgress


def _pct(estimate: dict[str, float]) -> str:
    return f"{estimate['mean'] * 100:.1f} [{estimate['ci_low'] * 100:.1f}, {estimate['ci_high'] * 100:.1f}]"


def _delta(estimate: dict[str, float]) -> str:
    return f"[{estimate['ci_low'] * 100:+.1f}, {estimate['ci_high'] * 100:+.1f}]"


def results_table(report: dict[str, Any]) -> Table:
    """The benchmark report as a table: one row per mode, metrics in percent with their 95% CI."""
    data = report["dataset"]
    table = Table(
        title=f"{data['name']}: {data['questions']} questions, {data['passages']} passages "
        f"(ingest {report['ingest']['seconds']:.1f}s)"
    )
    first = next(iter(report["modes"].values()))
    metrics = [m for m in ("recall@2", "recall@5", "all_gold@8", "em", "f1") if m in first]
    table.add_column("mode")
    for metric in metrics:
        table.add_column(f"{metric} % [95% CI]", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    for mode, row in report["modes"].items():
        latency = row["latency_ms"]
        table.add_row(mode, *(_pct(row[m]) for m in metrics), f"{latency['p50']:.1f}", f"{latency['p95']:.1f}")
    return table


def answers_table(answers: dict[str, Any]) -> Table:
    """The answer benchmark: per variant, released/held x right/wrong, EM/F1 of draft and released text, times."""
    table = Table(title="answers through the answer workflow (gate included), % of questions [95% CI]")
    columns = [
        ("released right", "released_right"),
        ("released wrong", "released_wrong"),
        ("held right", "held_right"),
        ("held wrong", "held_wrong"),
        ("F1 released", "f1"),
        ("F1 draft", "draft_f1"),
        ("EM released", "em"),
    ]
    table.add_column("variant")
    for title, _ in columns:
        table.add_column(title, justify="right")
    table.add_column("p50 s (gen / gate)", justify="right")
    table.add_column("prompt tok", justify="right")
    for name, row in answers["summary"].items():
        time = row["time"]
        tokens = row["prompt_tokens"]
        table.add_row(
            name,
            *(_pct(row[key]) for _, key in columns),
            f"{time['seconds']['p50']:.1f} ({time['generation_ms']['p50'] / 1000:.1f} / "
            f"{time['gate_ms']['p50'] / 1000:.1f})",
            f"{tokens['mean']:.0f}" if tokens else "-",
        )
    return table


def bench(
    dataset: Annotated[Path, typer.Option("--dataset", help="Folder with questions.jsonl and corpus.jsonl.")],
    modes: Annotated[str, typer.Option(help="Comma-separated retrieval modes.")] = "dense,bm25,hybrid,graph",
    answers: Annotated[
        bool,
        typer.Option(
            "--answers",
            help="Also ask every question of the answer workflow, gate included (calls the LLM): EM/F1, "
            "released/held x right/wrong, times.",
        ),
    ] = False,
    vary: Annotated[
        list[str] | None,
        typer.Option(
            "--vary",
            help="With --answers: a settings variant to compare with the defaults, PATH=VALUE "
            "(repeatable; default: retrieval.mode=hybrid; `none`: the defaults only).",
        ),
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the full report as JSON here.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Also run every mode behind the LLM rerank stage (calls the LLM).")
    ] = False,
) -> None:
    """Benchmark retrieval modes on a dataset: recall@2/5, all-gold@8 with 95% CIs, latency, ingestion time."""
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}", hint="omit --limit to run every question")
    chosen = parse_modes(modes)
    err = console(stderr=True)
    columns = (TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as progress:
        report = run_benchmark(
            dataset,
            chosen,
            load_settings(),
            answers=answers,
            limit=limit,
            progress=RichProgress(progress),
            rerank=rerank,
            variants=DEFAULT_ANSWER_VARIANTS if vary is None else [v for v in vary if v.strip().casefold() != "none"],
        )
    out = Console(highlight=False, width=150)
    out.print(results_table(report))
    if "answers" in report:
        out.print(answers_table(report["answers"]))
        for name, row in report["answers"]["summary"].items():
            for key, delta in row.get("paired_vs_default", {}).items():
                points = f"{delta['mean'] * 100:+.1f} points, 95% CI {_delta(delta)}"
                out.print(f"default - {name}, {key} (paired): {points}")
    deltas = {m: r["delta_vs_dense"]["recall@5"] for m, r in report["modes"].items() if "delta_vs_dense" in r}
    for mode, delta in deltas.items():
        out.print(f"{mode} - dense, recall@5 (paired): {delta['mean'] * 100:+.1f} points, 95% CI {_delta(delta)}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2), "utf-8")
        err.print(f"report written to {json_path}")
