"""``kgrag report``: the KPIs of a period as rich tables, and as JSON (``--json OUT``, ``-`` for stdout): answers,
decision rates, latency by workflow step, tokens, review turnaround, the most often abstained questions, drift, and
the ingestion runs with their extractor tokens. The same report as ``GET /v1/kpis`` and the /ui dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from core.console import console
from core.errors import InputError
from pipelines.cli.common import StoreOption, settings_for
from pipelines.compose.stores import open_audit
from pipelines.ops.kpis import KpiReport, build_report
from pipelines.ops.period import parse_period
from pipelines.store.layout import StoreLayout


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def _summary(r: KpiReport) -> Table:
    table = Table(
        "answers",
        "released",
        "abstained",
        "review",
        "tokens (prompt + completion)",
        "judge tokens",
        "tokens/answer",
        title=f"answers from {r.start or 'the first'} to {r.end or 'now'}" + (" (truncated)" if r.truncated else ""),
    )
    table.add_row(
        str(r.answers),
        f"{r.decisions['released']} ({_pct(r.rates['released'])})",
        f"{r.decisions['abstained']} ({_pct(r.rates['abstained'])})",
        f"{r.decisions['review']} ({_pct(r.rates['review'])})",
        f"{r.tokens.prompt} + {r.tokens.completion}",
        f"{r.tokens.judge_prompt} + {r.tokens.judge_completion}",
        _num(r.tokens.per_answer, 1),
    )
    return table


def _latency(r: KpiReport) -> Table:
    table = Table("step", "count", "p50 s", "p95 s", "max s", title="latency by workflow step")
    for step, p in r.latency_s.items():
        table.add_row(step, str(p.count), _num(p.p50), _num(p.p95), _num(p.max))
    return table


def _reviews(r: KpiReport) -> Table:
    v = r.reviews
    table = Table("held", "reviewed", "pending", "decisions", "turnaround p50 s", "p95 s", title="review")
    decisions = ", ".join(f"{k} {n}" for k, n in sorted(v.decisions.items())) or "-"
    table.add_row(
        str(v.held),
        str(v.reviewed),
        str(v.pending),
        decisions,
        _num(v.turnaround_s.p50, 0),
        _num(v.turnaround_s.p95, 0),
    )
    return table


def _drift(r: KpiReport) -> Table:
    d = r.drift
    table = Table(
        "KPI",
        "period",
        "current",
        "baseline",
        "allowed change",
        "drifting",
        title=f"drift: newest {d.current_answers} answers against the {d.baseline_answers} before them "
        f"(at least {d.min_answers} values each)",
    )
    for row in d.kpis:
        flag = "[bold red]yes[/]" if row.drifting else "no"
        table.add_row(row.kpi, _num(r.kpis[row.kpi]), _num(row.current), _num(row.baseline), _num(row.threshold), flag)
    return table


def _abstained(r: KpiReport) -> Table:
    table = Table("count", "question", "last asked", title="most often abstained questions")
    for q in r.top_abstained:
        table.add_row(str(q.count), escape(q.question), q.last_asked[:19])
    return table


def _ingestion(r: KpiReport) -> Table:
    i = r.ingestion
    table = Table(
        "runs",
        "failed",
        "documents +/~/-",
        "chunks embedded",
        "extracted",
        "extraction failures",
        "files skipped",
        "extractor tokens (prompt + completion)",
        title="ingestion runs",
    )
    table.add_row(
        str(i.runs),
        str(i.failed),
        f"{i.documents_added}/{i.documents_changed}/{i.documents_deleted}",
        str(i.chunks_embedded),
        str(i.chunks_extracted),
        str(i.extraction_failures),
        str(i.files_skipped),
        f"{i.prompt_tokens} + {i.completion_tokens}",
    )
    return table


def print_report(r: KpiReport, out: Console) -> None:
    """The report as rich tables."""
    for table in (_summary(r), _latency(r), _reviews(r), _drift(r), _abstained(r), _ingestion(r)):
        out.print(table)
    if r.drift.drifting:
        out.print(f"[bold red]drifting:[/] {', '.join(r.drift.drifting)}")
    if r.ingestion.unreadable_reports:
        out.print(f"[yellow]note[/] {r.ingestion.unreadable_reports} run report(s) could not be read")


def report(
    store: StoreOption = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Start (inclusive): an ISO date or datetime, UTC unless given.")
    ] = None,
    to: Annotated[str | None, typer.Option("--to", help="End: an ISO date (that whole day) or datetime.")] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the report as JSON to this file ('-': stdout only).")
    ] = None,
) -> None:
    """KPIs of the answers (and ingestion runs) of a period: decision rates, latency by step, tokens, review
    turnaround, the most often abstained questions and drift."""
    period = parse_period(from_, to)
    settings = settings_for(store)
    audit = open_audit(settings)
    try:
        result = build_report(
            audit, StoreLayout(settings.store_dir).reports, period, kpis=settings.kpis, drift=settings.drift
        )
    finally:
        audit.close()
    text = result.model_dump_json(indent=2)
    if json_out is not None and str(json_out) == "-":
        print(text)
        return
    if json_out is not None:
        try:
            json_out.write_text(text + "\n", "utf-8")
        except OSError as exc:
            raise InputError(f"cannot write {json_out}: {exc.strerror}", hint="give a writable file path") from exc
    print_report(result, Console(highlight=False, width=160))
    if json_out is not None:
        console().print(f"JSON written to {json_out}")
