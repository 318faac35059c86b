"""Support similarity: each answer sentence against the sentences of the passages it cites, with the embedder."""

from __future__ import annotations

from typing import Literal

import numpy as np

from core.text import sentence_spans
from evals.gate.base import CheckInput, CheckResult
from evals.gate.checks.claims import band, validate_band
from retrieval.base import Embedder


def passage_sentences(passage: str) -> list[str]:
    """A passage's sentences, and each with the sentence before it (so "She was born in Warsaw" keeps the name
    the previous sentence gave); the passage itself when it has one sentence or none."""
    parts = [passage[a:b] for a, b in sentence_spans(passage)]
    if len(parts) < 2:
        return [passage]
    return parts + [f"{before} {after}" for before, after in zip(parts, parts[1:], strict=False)]


class SupportSimilarityCheck:
    """For every claim, the best cosine between it and a sentence of its cited passages (all passages when it cites
    none); the claims' scores aggregated by ``min`` (default: the weakest sentence decides) or ``mean``.

    A short claim (an entity alone, embedded after its question) is compared too, but its cosine cannot fail the
    answer: a name or a year is far from any sentence that holds it (about 0.4 for right short answers), so a low
    score there is no evidence against it. The longer claims decide; an answer of short claims only is at worst
    inconclusive (lexical support and the judge still check it)."""

    name = "support_similarity"

    def __init__(
        self,
        embedder: Embedder,
        fail_below: float = 0.45,
        pass_at: float = 0.75,
        aggregate: Literal["min", "mean"] = "min",
    ) -> None:
        validate_band(self.name, fail_below, pass_at)
        self.embedder = embedder
        self.fail_below = fail_below
        self.pass_at = pass_at
        self.aggregate = aggregate

    def check(self, item: CheckInput) -> CheckResult:
        if not item.claims:
            return CheckResult("fail", {"support_similarity": 0.0}, "the answer has no sentence to check")
        sentences: list[str] = []
        index: dict[str, int] = {}
        per_claim: list[list[int]] = []
        for claim in item.claims:
            rows = []
            for passage in item.cited_contexts(claim):
                for sentence in passage_sentences(passage):
                    if sentence not in index:
                        index[sentence] = len(sentences)
                        sentences.append(sentence)
                    rows.append(index[sentence])
            per_claim.append(rows)
        # A fragment ("Amara Okafor.") means nothing alone: it is embedded after the question it answers.
        texts = [f"{item.question} {c.text}" if c.short else c.text for c in item.claims]
        vectors = self.embedder.embed(texts + sentences)
        claims, support = vectors[: len(item.claims)], vectors[len(item.claims) :]
        best = [float(np.max(support[rows] @ claims[i])) for i, rows in enumerate(per_claim)]
        deciding = [b for b, c in zip(best, item.claims, strict=True) if not c.short] or best
        low, mean = min(deciding), sum(deciding) / len(deciding)
        score = low if self.aggregate == "min" else mean
        weakest = item.claims[best.index(low)].text
        detail = f"weakest sentence {low:.2f}: {weakest[:120]!r}" if len(best) > 1 else f"best match {low:.2f}"
        outcome = band(score, self.fail_below, self.pass_at)
        if outcome == "fail" and all(c.short for c in item.claims):
            outcome, detail = "inconclusive", f"{detail} (a short answer: its cosine cannot fail it)"
        return CheckResult(
            outcome,
            {
                "support_similarity": round(score, 4),
                "support_similarity_min": round(low, 4),
                "support_similarity_mean": round(mean, 4),
            },
            detail,
        )
