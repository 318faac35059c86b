"""What the KPIs cost: the drift watch per answer (``observe``) and per scrape (``report``), seeding it when the API
opens its store, and ``kgrag report`` / ``GET /v1/kpis`` over N answers. No model is called.

The answers are copies (new ids, spread over 30 days) of the real records in ``--store``'s audit file, written into
a scratch SQLite audit store. Run ``.venv/bin/python -m evals.bench.benchmarks.kpi_costs --store DIR [--answers N]``
on a store that has answered at least one question (``kgrag ask``, or the API).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from core.errors import StoreNotFoundError
from core.settings import load_settings
from core.types import AnswerRecord
from pipelines.compose.stores import open_audit
from pipelines.ops.drift import DriftWatch
from pipelines.ops.kpis import build_report
from pipelines.ops.period import Period
from pipelines.ops.samples import recent_samples
from pipelines.store.sql_audit import SqliteAuditStore


def _timed(fn: Callable[[], object], repeat: int) -> float:
    """Median seconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, required=True, help="a store whose audit file holds answers")
    parser.add_argument("--answers", type=int, default=10_000, help="answers in the scratch audit store")
    args = parser.parse_args(argv)
    settings = load_settings(store_dir=args.store)
    source = open_audit(settings)
    templates = source.records(limit=20)
    source.close()
    if not templates:
        raise StoreNotFoundError(f"no answers in {args.store}", hint="answer a question first (kgrag ask ... --store)")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=30) / args.answers
    with tempfile.TemporaryDirectory() as tmp:
        audit = SqliteAuditStore(Path(tmp) / "audit.sqlite")
        copies: list[AnswerRecord] = []
        for i in range(args.answers):
            record = templates[i % len(templates)]
            copy = record.model_copy(
                update={"answer_id": uuid.uuid4().hex, "created_at": (start + i * step).isoformat()}
            )
            audit.save(copy)
            copies.append(copy)
        watch = DriftWatch(settings.drift)
        seed = _timed(lambda: watch.seed(recent_samples(audit, watch.capacity)), 3)

        def observe_all() -> None:
            for r in copies[:1000]:
                watch.observe(r)

        observe = _timed(observe_all, 3) / 1000
        report = _timed(watch.report, 50)
        started = time.perf_counter()
        kpis = build_report(audit, Path(tmp) / "reports", Period(), kpis=settings.kpis, drift=settings.drift)
        whole = time.perf_counter() - started
        audit.close()
    print(f"{len(templates)} real records as templates, {args.answers} answers, drift windows {watch.capacity}")
    print(
        f"drift watch: observe {observe * 1e6:.0f} us per answer, report {report * 1e3:.2f} ms per scrape, "
        f"seed {seed * 1e3:.0f} ms at start-up"
    )
    print(f"KPI report over {kpis.answers} answers: {whole:.2f} s ({kpis.answers / whole:.0f} answers/s)")


if __name__ == "__main__":
    main()
