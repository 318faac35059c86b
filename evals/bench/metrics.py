"""Metrics of the retrieval benchmark: passage recall@k, all-gold@k, SQuAD exact match / token F1, bootstrap CIs."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def recall_at_k(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    """Fraction of the gold ids found in the first ``k`` ranked ids (HippoRAG 2's passage recall@k)."""
    wanted = set(gold)
    if not wanted:
        raise ValueError("recall needs at least one gold id")
    return len(wanted & set(ranked[:k])) / len(wanted)


def all_gold_at_k(ranked: Sequence[str], gold: Sequence[str], k: int) -> float:
    """1.0 when every gold id is in the first ``k`` ranked ids, else 0.0."""
    return 1.0 if recall_at_k(ranked, gold, k) == 1.0 else 0.0


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation and articles (a, an, the), collapse whitespace."""
    lowered = text.lower()
    no_punct = "".join(ch for ch in lowered if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", no_punct).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals any normalised gold answer or alias."""
    guess = normalize_answer(prediction)
    return 1.0 if any(guess == normalize_answer(a) for a in answers) else 0.0


def _f1(prediction: str, answer: str) -> float:
    guess, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    if not guess or not gold:
        return 1.0 if guess == gold else 0.0
    common = sum((Counter(guess) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(guess), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD token F1 of the prediction, the maximum over the gold answer and its aliases."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


@dataclass(frozen=True)
class Estimate:
    """A mean with its percentile-bootstrap 95% confidence interval."""

    mean: float
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict[str, float]:
        return {"mean": round(self.mean, 6), "ci_low": round(self.ci_low, 6), "ci_high": round(self.ci_high, 6)}


def bootstrap_ci(values: Sequence[float], *, resamples: int = 2000, seed: int = 0, level: float = 0.95) -> Estimate:
    """Mean of ``values`` and the percentile bootstrap interval (resampling questions with replacement)."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        raise ValueError("cannot estimate the mean of no values")
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return Estimate(float(data.mean()), float(low), float(high))


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (linear interpolation) of ``values``."""
    if not values:
        raise ValueError("cannot take a percentile of no values")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
