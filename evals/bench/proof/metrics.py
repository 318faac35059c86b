"""Figures of the gate's proof, computed from per-item results (pure functions; the runner writes the results).

A result is a dict (one JSONL line of the runner's results file)::

    {"id", "question_id", "variant", "label", "decision", "reason", "duration_ms",
     "stages": [{"name", "outcome", "duration_ms", "scores", "detail"}], "decided_by"}

An answer counts as *released* only when the decision is ``released``; ``review`` (held for a human, or a judge
error) and ``abstained`` both keep it from the asker. So hallucination recall is the share of hallucinated
answers whose decision is not ``released``, and faithful release rate the share of faithful answers released.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from evals.bench.metrics import bootstrap_ci
from evals.bench.proof.items import V2_VARIANTS, VARIANTS
from evals.gate.cascade import JUDGE
from evals.gate.verification import ENTAILMENT, RELEVANCE

#: Stages whose pass is a positive verdict (a release); cheap stages passing release nothing.
JUDGES = frozenset({ENTAILMENT, RELEVANCE, JUDGE})

#: ``decided_by`` when every cheap stage passed clearly (the answer was released without the judge).
ALL_PASSED = "all cheap stages passed"
#: ``decided_by`` of a gate that records no stages (a single-stage gate).
WHOLE_GATE = "gate"


def decided_by(stages: Sequence[Mapping[str, Any]]) -> str:
    """The stage whose verdict stood.

    The first stage that failed (or errored) stops a cascade, so it decided. Else, when some stage was
    inconclusive, the judge decided if it ran (``"none"`` if not: the cascade's fallback decision applied).
    Else every stage that ran passed: :data:`ALL_PASSED` (or that stage's name when only one ran).
    A gate without stage records is :data:`WHOLE_GATE`.
    """
    if not stages:
        return WHOLE_GATE
    ran = [s for s in stages if s.get("outcome") != "skipped"]
    for stage in ran:
        if stage.get("outcome") in ("fail", "error"):
            return str(stage["name"])
    if not ran:
        return "none"
    last = str(ran[-1]["name"])
    if any(s.get("outcome") == "inconclusive" for s in ran):
        return last if last in JUDGES and ran[-1].get("outcome") == "pass" else "none"
    if len(ran) == 1:
        return str(ran[0]["name"])
    return last if last in JUDGES else ALL_PASSED


def _estimate(values: Sequence[float], seed: int) -> dict[str, float] | None:
    return bootstrap_ci(values, seed=seed).as_dict() if values else None


def summarise(results: Sequence[Mapping[str, Any]], *, seed: int = 0) -> dict[str, Any]:
    """Hallucination recall, faithful release rate (both with 95% bootstrap CIs, overall and per variant), the
    confusion table (label x decision), each stage's contribution and time, and the gate's mean time."""
    faithful = [r for r in results if r["label"] == "faithful"]
    hallucinated = [r for r in results if r["label"] == "hallucinated"]
    per_variant: dict[str, Any] = {}
    known = tuple(dict.fromkeys((*VARIANTS, *V2_VARIANTS)))
    present = {str(r["variant"]) for r in results}
    for variant in (*(v for v in known if v in present or v in VARIANTS), *sorted(present - set(known))):
        rows = [r for r in results if r["variant"] == variant]
        if not rows:
            continue
        if rows[0]["label"] == "faithful":
            values = [1.0 if r["decision"] == "released" else 0.0 for r in rows]
            metric = "release_rate"
        else:
            values = [0.0 if r["decision"] == "released" else 1.0 for r in rows]
            metric = "caught"
        per_variant[variant] = {
            "items": len(rows),
            metric: _estimate(values, seed),
            "decisions": dict(Counter(str(r["decision"]) for r in rows)),
        }
    confusion: dict[str, dict[str, int]] = defaultdict(dict)
    for (label, decision), count in sorted(Counter((str(r["label"]), str(r["decision"])) for r in results).items()):
        confusion[label][decision] = count
    return {
        "items": len(results),
        "hallucination_recall": _estimate([0.0 if r["decision"] == "released" else 1.0 for r in hallucinated], seed),
        "faithful_release_rate": _estimate([1.0 if r["decision"] == "released" else 0.0 for r in faithful], seed),
        "counts": {"faithful": len(faithful), "hallucinated": len(hallucinated)},
        "per_variant": per_variant,
        "confusion": dict(confusion),
        "stages": stage_contribution(results),
        "gate_errors": sum(1 for r in results if str(r.get("reason", "")).startswith("gate_error")),
        "mean_gate_ms": sum(float(r["duration_ms"]) for r in results) / len(results) if results else None,
    }


def stage_contribution(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: how many items it ran on, how many it decided (by decision), and its mean time where it ran."""
    table: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for result in results:
        stages = result.get("stages") or []
        for stage in stages:
            name = str(stage["name"])
            if name not in table:
                order.append(name)
                table[name] = {"ran": 0, "decided": 0, "decisions": Counter(), "outcomes": Counter(), "ms": 0.0}
            row = table[name]
            row["outcomes"][str(stage.get("outcome"))] += 1
            if stage.get("outcome") != "skipped":
                row["ran"] += 1
                row["ms"] += float(stage.get("duration_ms") or 0.0)
        decider = str(result.get("decided_by") or decided_by(stages))
        if decider not in table:
            order.append(decider)
            table[decider] = {"ran": 0, "decided": 0, "decisions": Counter(), "outcomes": Counter(), "ms": 0.0}
            if not stages:
                table[decider]["ran"] = 0
        table[decider]["decided"] += 1
        table[decider]["decisions"][str(result["decision"])] += 1
        if not stages:  # the whole gate is the only stage
            table[decider]["ran"] += 1
            table[decider]["ms"] += float(result["duration_ms"])
    return {
        name: {
            "ran": table[name]["ran"],
            "decided": table[name]["decided"],
            "decisions": dict(table[name]["decisions"]),
            "outcomes": dict(table[name]["outcomes"]),
            "mean_ms": table[name]["ms"] / table[name]["ran"] if table[name]["ran"] else None,
        }
        for name in order
    }
