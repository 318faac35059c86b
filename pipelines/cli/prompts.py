"""``kgrag prompts list|show|diff|promote|split|history|test|rollback-check``: the prompt registry from the shell."""

from __future__ import annotations

import difflib
import getpass
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from core.console import clear_errors
from core.errors import InputError
from core.settings import load_settings
from pipelines.cli.common import StoreOption, settings_for
from pipelines.compose import lazy
from pipelines.compose.answer import golden_service_builder
from pipelines.compose.models import load_embedder
from pipelines.store.layout import StoreLayout
from prompts.labels import describe
from prompts.registry import FilePromptRegistry, default_templates_dir
from prompts.rollback import RollbackMonitor, RollbackPolicy

if TYPE_CHECKING:
    from pipelines.answer.golden import GoldenReport

app = typer.Typer(no_args_is_help=True, help="List, compare, test, promote and roll back prompt versions.")
DirOption = Annotated[
    Path | None,
    typer.Option("--prompts-dir", help="Template folder (default: KGRAG_PROMPTS__DIRECTORY or the packaged one)."),
]


def _registry(directory: Path | None) -> FilePromptRegistry:
    return FilePromptRegistry(directory or load_settings().prompts.directory)


def _console() -> Console:
    return Console(highlight=False, width=160)


@app.command("list")
@clear_errors
def list_command(directory: DirOption = None) -> None:
    """Every prompt version with its owner, content hash and the labels that point at it."""
    registry = _registry(directory)
    targets = registry.targets()
    table = Table("name", "version", "labels", "owner", "sha256", "description")
    for t in registry.list():
        labels = []
        for label, target in targets.get(t.name, {}).items():
            if target == t.version:
                labels.append(label)
            elif not isinstance(target, int) and t.version in target.split:
                labels.append(f"{label} ({target.split[t.version]:g}%)")
        table.add_row(t.name, str(t.version), ", ".join(sorted(labels)), t.owner, t.sha256[:12], escape(t.description))
    _console().print(table)


@app.command("show")
@clear_errors
def show(
    name: Annotated[str, typer.Argument(help="Prompt name, e.g. answer.")],
    version: Annotated[int | None, typer.Argument(help="Version (default: the one --label points at).")] = None,
    label: Annotated[str, typer.Option("--label", help="Label to resolve when no version is given.")] = "production",
    directory: DirOption = None,
) -> None:
    """Print one version: metadata, labels, guardrails, and the system and user templates."""
    registry = _registry(directory)
    t = registry.get(name, version) if version is not None else registry.resolve(name, label)
    out = _console()
    out.print(f"[bold]{t.name}[/] v{t.version}  owner {t.owner}  sha256 {t.sha256}")
    out.print(t.description, markup=False)
    out.print("inputs: " + ", ".join(t.inputs))
    out.print("labels: " + (", ".join(f"{k} -> {describe(v)}" for k, v in registry.targets().get(name, {}).items())))
    guardrails = registry.guardrails(name)
    if guardrails is not None:
        c = guardrails.config
        out.print(f"guardrails: input {c.input.model_dump()} output {c.output.model_dump()}")
    out.rule("system")
    out.print(t.system, markup=False)
    out.rule("user")
    out.print(t.user, markup=False)


@app.command("diff")
@clear_errors
def diff(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    a: Annotated[int, typer.Argument(help="Older version.")],
    b: Annotated[int, typer.Argument(help="Newer version.")],
    directory: DirOption = None,
) -> None:
    """Unified diff between two versions of a prompt (description, inputs, system and user texts)."""
    registry = _registry(directory)
    old, new = registry.get(name, a), registry.get(name, b)

    def lines(t: object) -> list[str]:
        data = {k: getattr(t, k) for k in ("description", "owner", "inputs", "system", "user")}
        out = []
        for key, value in data.items():
            text = value if isinstance(value, str) else ", ".join(value)
            out += [f"{key}: {line}" for line in text.splitlines()] or [f"{key}:"]
        return out

    result = difflib.unified_diff(lines(old), lines(new), f"{name}.v{a}", f"{name}.v{b}", lineterm="")
    text = "\n".join(result)
    typer.echo(text if text else f"{name} v{a} and v{b} have the same content")


@app.command("promote")
@clear_errors
def promote(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[int, typer.Argument(help="Version to point the label at.")],
    label: Annotated[str, typer.Option("--label", help="Label to move, e.g. production or staging.")],
    actor: Annotated[str | None, typer.Option("--actor", help="Who is moving it (default: your login).")] = None,
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the label log).")] = "",
    directory: DirOption = None,
) -> None:
    """Point a label at a version; the move (who, when, from, to) is appended to labels.log.jsonl."""
    event = _registry(directory).promote(name, version, label, actor=actor or getpass.getuser(), reason=reason)
    typer.echo(f"{name} {label}: {event.from_ or '(unset)'} -> {event.to} by {event.actor} at {event.at}")


@app.command("split")
@clear_errors
def split(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Option("--label", help="Label whose traffic is split.")],
    share: Annotated[list[str], typer.Option("--share", help="VERSION=PERCENT, repeated; shares sum to 100.")],
    actor: Annotated[str | None, typer.Option("--actor", help="Who (default: your login).")] = None,
    directory: DirOption = None,
) -> None:
    """Split a label's traffic between versions, deterministically by request id (A/B test)."""
    shares: dict[int, float] = {}
    for item in share:
        version, sep, percent = item.partition("=")
        try:
            shares[int(version)] = float(percent)
        except ValueError:
            raise InputError(
                f"--share {item!r} is not VERSION=PERCENT", hint="e.g. --share 1=90 --share 2=10"
            ) from None
        if not sep:
            raise InputError(f"--share {item!r} is not VERSION=PERCENT", hint="e.g. --share 1=90 --share 2=10")
    event = _registry(directory).set_split(name, label, shares, actor=actor or getpass.getuser())
    typer.echo(f"{name} {label}: {event.from_ or '(unset)'} -> {event.to}")


@app.command("history")
@clear_errors
def history(
    name: Annotated[str | None, typer.Argument(help="Prompt name (default: all).")] = None,
    directory: DirOption = None,
) -> None:
    """The label log: every move, oldest first."""
    table = Table("at", "actor", "prompt", "label", "kind", "from", "to", "reason")
    for e in _registry(directory).history(name):
        table.add_row(e.at, e.actor, e.prompt, e.label, e.kind, e.from_ or "", e.to, escape(e.reason))
    _console().print(table)


@app.command("test")
@clear_errors
def test(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    version: Annotated[int, typer.Argument(help="Version to test.")],
    baseline: Annotated[int | None, typer.Option("--baseline", help="Also run this version, side by side.")] = None,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the reports as JSON.")] = False,
) -> None:
    """Run the prompt's golden cases through the answer workflow and report gate decisions and scores."""
    settings = settings_for(store)
    cases = len(lazy.load_golden(settings.prompts.directory or default_templates_dir(), name).cases)
    versions = [version] + ([baseline] if baseline is not None else [])
    for v in versions:  # fail on a wrong version before loading the embedder
        FilePromptRegistry(settings.prompts.directory).get(name, v)
    embedder = load_embedder(settings)
    reports: list[GoldenReport] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        for v in versions:
            task = progress.add_task(f"{name} v{v}", total=cases)

            def advance(_: object, task_id: TaskID = task) -> None:
                progress.advance(task_id)

            reports.append(
                lazy.run_golden(settings, name, v, build_service=golden_service_builder(embedder), on_case=advance)
            )
    if as_json:
        typer.echo(json.dumps([r.model_dump() | {"pass_rate": r.pass_rate} for r in reports], indent=2))
        return
    out = _console()
    for report in reports:
        table = Table(
            "question",
            "decision",
            "expected",
            "missing",
            "faithfulness",
            "relevancy",
            "pass",
            title=f"{name} v{report.version}",
        )
        for r in report.results:
            f = "" if r.faithfulness is None else f"{r.faithfulness:.2f}"
            rel = "" if r.answer_relevancy is None else f"{r.answer_relevancy:.2f}"
            missing = escape(", ".join(r.missing))
            table.add_row(escape(r.question), r.decision, r.expected, missing, f, rel, "yes" if r.passed else "NO")
        out.print(table)
        out.print(
            f"v{report.version}: pass {report.pass_rate:.0%}, released {report.release_rate:.0%}, "
            f"mean faithfulness {report.mean_score('faithfulness')}, "
            f"mean relevancy {report.mean_score('answer_relevancy')}"
        )


@app.command("rollback-check")
@clear_errors
def rollback_check(
    name: Annotated[str, typer.Argument(help="Prompt name.")],
    label: Annotated[str, typer.Option("--label", help="Label to watch.")] = "production",
    window: Annotated[int, typer.Option("--window", min=1, help="Last N answers of each version.")] = 50,
    margin: Annotated[float, typer.Option("--margin", min=0, max=1, help="Allowed pass-rate drop.")] = 0.1,
    min_answers: Annotated[int, typer.Option("--min-answers", min=1, help="Answers needed per version.")] = 20,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Decide, but do not move the label.")] = False,
    store: StoreOption = None,
    directory: DirOption = None,
) -> None:
    """Compare the label's version with the previous one on recorded answers; roll back if it degraded."""
    settings = load_settings()
    path = StoreLayout(store or settings.store_dir).audit
    if not settings.audit.url and not path.is_file():
        raise InputError(f"no audit store at {path}", hint="pass --store with the store that served the answers")
    audit = lazy.open_audit_store(settings.audit.url, path)
    try:
        outcomes = lazy.recent_outcomes(audit, name, limit=window * 20)
    finally:
        audit.close()
    policy = RollbackPolicy(window=window, margin=margin, min_answers=min_answers)
    decision = RollbackMonitor(_registry(directory), policy).check(name, label, outcomes, apply=not dry_run)
    typer.echo(
        ("ROLLED BACK: " if decision.event else "rollback: " if decision.rollback else "kept: ") + decision.reason
    )
