"""What the gate's cheap stages decide on a proof set, per part and variant: which stage failed each answer fast,
and how many go on to the judge (cheap stages never release). No model is called.

Run ``.venv/bin/python -m evals.bench.benchmarks.gate_cheap_stages [--set PATH]``.
"""

from __future__ import annotations

import argparse
import collections
import time
from collections.abc import Sequence
from pathlib import Path

from core.errors import ConfigurationError
from core.settings import load_settings
from evals.bench.benchmarks.gate_proof import build_gate_from, cheap_settings
from evals.bench.proof.build_v2 import DEFAULT_V2
from evals.bench.proof.items import load_items

TO_JUDGE = "to the judge"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="proof_set", type=Path, default=DEFAULT_V2)
    args = parser.parse_args(argv)
    settings = cheap_settings(load_settings())
    if settings is None:
        raise ConfigurationError("the gate's stages hold no cheap stage and judge stage to separate")
    gate = build_gate_from(settings)
    items = load_items(args.proof_set)
    counts: dict[tuple[str, str, str], collections.Counter[str]] = collections.defaultdict(collections.Counter)
    started = time.perf_counter()
    for item in items:
        record = gate.evaluate(item.question, item.answer, list(item.contexts))
        failed = next((s.name for s in record.stages if s.outcome in ("fail", "error")), TO_JUDGE)
        counts[(item.part, item.label, item.variant)][failed] += 1
    print(f"{len(items)} answers in {time.perf_counter() - started:.1f} s")
    for key in sorted(counts):
        total = sum(counts[key].values())
        print(f"{'/'.join(key):45} {total:4}  " + ", ".join(f"{k} {v}" for k, v in counts[key].most_common()))


if __name__ == "__main__":
    main()
