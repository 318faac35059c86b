"""Run proof items through a gate, appending each result to a JSONL file as soon as it is known (resumable).

A crash or Ctrl-C loses at most the item being scored: re-running with the same results file skips every id
already there (a torn last line, from a crash mid-write, is ignored and that item scored again).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import InputError
from evals.bench.proof.items import ProofItem
from evals.bench.proof.metrics import decided_by
from evals.gate.base import AnswerGate


def read_results(path: Path) -> list[dict[str, Any]]:
    """The results already in ``path`` (none if it does not exist); unreadable lines are skipped."""
    if not path.exists():
        return []
    if not path.is_file():
        raise InputError(f"results path {path} is not a file", hint="pass --results FILE.jsonl")
    results = []
    for line in path.read_text("utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "id" in record and "decision" in record:
            results.append(record)
    return results


def _stage_dicts(record: Any) -> list[dict[str, Any]]:
    stages = getattr(record, "stages", None) or []
    out = []
    for stage in stages:
        data = stage.model_dump(mode="json") if hasattr(stage, "model_dump") else dict(stage)
        out.append(data)
    return out


def score_item(gate: AnswerGate, item: ProofItem) -> dict[str, Any]:
    """One item's result: the gate's decision, reason, scores, time and stage records.

    A gate that raises is recorded as decision ``error`` (never released) with the exception in ``reason``, so
    one bad item does not end the run.
    """
    started = time.perf_counter()
    try:
        record = gate.evaluate(item.question, item.answer, list(item.contexts))
    except Exception as exc:  # noqa: BLE001 - recorded, not hidden: the result says what failed
        elapsed = (time.perf_counter() - started) * 1000.0
        return {
            "id": item.id,
            "question_id": item.question_id,
            "variant": item.variant,
            "label": item.label,
            "decision": "error",
            "reason": f"gate_error: {type(exc).__name__}: {exc}",
            "scores": {},
            "duration_ms": elapsed,
            "stages": [],
            "decided_by": "error",
        }
    elapsed = (time.perf_counter() - started) * 1000.0
    stages = _stage_dicts(record)
    return {
        "id": item.id,
        "question_id": item.question_id,
        "variant": item.variant,
        "label": item.label,
        "decision": record.decision,
        "reason": record.reason,
        "scores": record.scores.model_dump(mode="json"),
        "duration_ms": record.duration_ms or elapsed,
        "stages": stages,
        "decided_by": decided_by(stages),
    }


def run_items(
    gate: AnswerGate,
    items: Sequence[ProofItem],
    results_path: Path,
    *,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    accept: Callable[[dict[str, Any]], bool] | None = None,
) -> list[dict[str, Any]]:
    """Score every item not yet in ``results_path``, appending (and syncing) each result; return the results of
    ``items`` (old and new) in item order. With ``accept``, a result it refuses is neither written nor returned
    (the item stays pending for a later run)."""
    results_path.parent.mkdir(parents=True, exist_ok=True)
    done = {r["id"]: r for r in read_results(results_path)}
    wanted = {item.id for item in items}
    if results_path.exists() and results_path.stat().st_size and not results_path.read_bytes().endswith(b"\n"):
        with results_path.open("ab") as handle:  # a torn last line: end it so the next result starts clean
            handle.write(b"\n")
    with results_path.open("a", encoding="utf-8") as handle:
        for item in items:
            if item.id in done:
                continue
            result = score_item(gate, item)
            if on_result is not None:
                on_result(result)
            if accept is not None and not accept(result):
                continue
            handle.write(json.dumps(result, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            done[item.id] = result
    return [done[item.id] for item in items if item.id in done and item.id in wanted]
