"""Drift of the answer KPIs: the newest window of answers compared with the baseline window before it.

:func:`compute_drift` judges a list of samples; :class:`DriftWatch` keeps the newest ``window + baseline`` samples
of a running service (seeded from the audit store, then one per answer), bounded and cheap to judge on a scrape.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from core.settings import DriftSettings
from core.types import AnswerRecord
from pipelines.ops.samples import AnswerSample, sample_of

ThresholdKind = Literal["rate", "score", "relative"]


@dataclass(frozen=True)
class Kpi:
    """A tracked KPI: its name, what it reads of one answer (None: no value), and how its threshold is set."""

    name: str
    value: Callable[[AnswerSample], float | None]
    threshold: ThresholdKind
    help: str


def _share(decision: str) -> Callable[[AnswerSample], float]:
    return lambda s: 1.0 if s.decision == decision else 0.0


#: The tracked KPIs, in the order reports and the dashboard show them.
KPIS: tuple[Kpi, ...] = (
    Kpi("release_rate", _share("released"), "rate", "share of answers the gate released"),
    Kpi("abstain_rate", _share("abstained"), "rate", "share of answers that abstained"),
    Kpi("review_rate", _share("review"), "rate", "share of answers held for review"),
    Kpi("mean_entailment", lambda s: s.entailment, "score", "mean of the judge's lowest claim entailment"),
    Kpi("mean_faithfulness", lambda s: s.faithfulness, "score", "mean Ragas faithfulness (the Ragas gate)"),
    Kpi("retrieval_top_score", lambda s: s.top_score, "relative", "mean score of the first retrieval hit"),
    Kpi("facts_share", lambda s: 1.0 if s.has_facts else 0.0, "rate", "share of answers given graph facts"),
)


class KpiDrift(BaseModel):
    """One KPI in both windows: their means (None without values), the allowed change, and whether it drifts."""

    kpi: str
    current: float | None
    baseline: float | None
    current_values: int = Field(description="Answers of the current window with a value for this KPI.")
    baseline_values: int
    threshold: float | None = Field(description="The largest change allowed (absolute); None without a baseline.")
    drifting: bool


class DriftReport(BaseModel):
    """The newest ``window`` answers against the ``baseline_window`` answers before them."""

    window: int
    baseline_window: int
    min_answers: int
    current_answers: int
    baseline_answers: int
    current_since: str | None = Field(default=None, description="Creation time of the current window's oldest answer.")
    baseline_since: str | None = None
    kpis: list[KpiDrift]
    drifting: list[str] = Field(description="The KPIs that drift.")


def mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _threshold(kind: ThresholdKind, baseline: float | None, settings: DriftSettings) -> float | None:
    if kind == "rate":
        return settings.rate_delta
    if kind == "score":
        return settings.score_delta
    return None if baseline is None else abs(baseline) * settings.top_score_relative


def compute_drift(samples: Sequence[AnswerSample], settings: DriftSettings) -> DriftReport:
    """Judge ``samples`` (oldest first): the last ``window`` against the ``baseline`` before them."""
    n = len(samples)
    current = samples[max(0, n - settings.window) :]
    baseline = samples[max(0, n - settings.window - settings.baseline) : max(0, n - settings.window)]
    rows = []
    for kpi in KPIS:
        now = [v for s in current if (v := kpi.value(s)) is not None]
        before = [v for s in baseline if (v := kpi.value(s)) is not None]
        cur, base = mean(now), mean(before)
        limit = _threshold(kpi.threshold, base, settings)
        enough = len(now) >= settings.min_answers and len(before) >= settings.min_answers
        drifting = bool(
            enough and cur is not None and base is not None and limit is not None and abs(cur - base) > limit
        )
        rows.append(
            KpiDrift(
                kpi=kpi.name,
                current=cur,
                baseline=base,
                current_values=len(now),
                baseline_values=len(before),
                threshold=limit,
                drifting=drifting,
            )
        )
    return DriftReport(
        window=settings.window,
        baseline_window=settings.baseline,
        min_answers=settings.min_answers,
        current_answers=len(current),
        baseline_answers=len(baseline),
        current_since=current[0].created_at if current else None,
        baseline_since=baseline[0].created_at if baseline else None,
        kpis=rows,
        drifting=[r.kpi for r in rows if r.drifting],
    )


class DriftWatch:
    """The newest ``window + baseline`` answer samples of a running service, judged on demand (thread-safe).

    Seed it with :func:`~pipelines.ops.samples.recent_samples` when the audit store opens, then :meth:`observe`
    each answer; memory and the cost of :meth:`report` are bounded by the two windows.
    """

    def __init__(self, settings: DriftSettings) -> None:
        self.settings = settings
        self._samples: deque[AnswerSample] = deque(maxlen=self.capacity)
        self._lock = threading.Lock()

    @property
    def capacity(self) -> int:
        return self.settings.window + self.settings.baseline

    def seed(self, samples: Iterable[AnswerSample]) -> None:
        """Replace what the watch holds with ``samples`` (oldest first)."""
        with self._lock:
            self._samples.clear()
            self._samples.extend(samples)

    def observe(self, record: AnswerRecord) -> None:
        sample = sample_of(record)
        with self._lock:
            self._samples.append(sample)

    def report(self) -> DriftReport:
        with self._lock:
            samples = list(self._samples)
        return compute_drift(samples, self.settings)
