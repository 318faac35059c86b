"""Second-hop "bridge" stages on top of graph retrieval, every variant scored on the same ingested store.

The misses of graph mode are mostly second-hop passages whose document title the first-hop passage names
(docs/retrieval.md, "Where the misses are"). Variants, all without a model call per question, all on graph mode's
ranking (title bridge off):

* ``title m n``: documents whose title (whole words, any case; ``qual``: also without a trailing "(qualifier)";
  ``cased``: a lower-case mention of a capitalised title does not count) the top ``m`` passages name, scored by
  their graph score (or ``score=q``: cosine with the question, ``qp``: with ``normalize(q + v(first passage))``,
  ``lex``: question words they contain), the best ``n`` inserted right after the first passage;
* ``title after m n``: each of the top ``m`` passages followed by its own best ``n`` bridges;
* ``title inherit m n a``: each of the top ``m`` passages' best ``n`` bridges scores ``a * passage score +
  (1 - a) * own score`` (the rule of the product's :class:`retrieval.bridge.TitleBridge`);
* ``title-rrf``: the bridges of the top 2 passages fused with the ranking by reciprocal rank fusion;
* ``prf``: vector pseudo-relevance feedback, ``normalize(q + lambda * v(first passage))`` searched again, the first
  ``keep`` passages kept and the rest fused with that search by reciprocal rank fusion;
* ``graph + title bridge (product)``: graph mode as the default settings build it (``build_retriever``).

The dataset is ingested once into ``--store`` (as ``retrieval_tuning`` does; reused when it exists). The table gives
recall@2/@5 and all-gold@8 with 95% bootstrap intervals, the paired recall@5 difference from graph (and how many
questions it raised / lowered) and the p50 time a variant adds per question (variants: the stage alone, on a cached
graph ranking and question vector; the product row: paired with a plain graph retrieval of the same question)::

    HF_HUB_OFFLINE=1 .venv/bin/python -m evals.bench.benchmarks.retrieval_bridge \
        --dataset /work/shared/eval/musique --store /tmp/tune-musique
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.types import RetrievedChunk
from evals.bench.benchmarks.retrieval_tuning import open_or_ingest
from evals.bench.harness import ALL_GOLD_K, CHUNK_POOL, BenchQuestion, load_questions
from evals.bench.metrics import all_gold_at_k, bootstrap_ci, percentile, recall_at_k
from pipelines.compose.retrieval import build_retriever
from retrieval.graph import GraphRetriever
from retrieval.hybrid import reciprocal_rank_fusion

_WORD = re.compile(r"\w+")
_QUALIFIER = re.compile(r"\s*\([^()]*\)\s*$")


STOP = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "by",
        "with",
        "from",
        "and",
        "or",
        "is",
        "was",
        "were",
        "are",
        "be",
        "been",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "how",
        "did",
        "does",
        "do",
        "that",
        "this",
        "his",
        "her",
        "its",
        "their",
        "as",
        "than",
    ]
)


def words(text: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _WORD.findall(text))


@dataclass
class Prepared:
    """What every variant starts from, computed once per question."""

    question: BenchQuestion
    qvec: np.ndarray
    graph: list[RetrievedChunk]
    dense: list[RetrievedChunk]
    graph_ms: float


class TitleIndex:
    """Title words (and title words without a parenthesised qualifier) -> document ids; document id -> chunk ids."""

    def __init__(self, titles: dict[str, str], chunks_of: dict[str, list[str]], qualifier: bool, cased: bool) -> None:
        self.keys: dict[tuple[str, ...], set[str]] = {}
        self.has_upper: dict[tuple[str, ...], bool] = {}
        for doc, title in titles.items():
            variants = {title, _QUALIFIER.sub("", title)} if qualifier else {title}
            for variant in variants:
                key = words(variant)
                if key and any(any(ch.isalpha() for ch in w) for w in key):
                    self.keys.setdefault(key, set()).add(doc)
                    self.has_upper[key] = self.has_upper.get(key, False) or any(ch.isupper() for ch in variant)
        self.longest = max((len(k) for k in self.keys), default=0)
        self.chunks_of = chunks_of
        self.cased = cased

    def mentioned(self, text: str) -> list[str]:
        """Documents whose title occurs in ``text``, in order of first occurrence."""
        raw = _WORD.findall(text)
        tokens = [w.lower() for w in raw]
        found: dict[str, None] = {}
        for i in range(len(tokens)):
            for n in range(1, min(self.longest, len(tokens) - i) + 1):
                key = tuple(tokens[i : i + n])
                docs = self.keys.get(key)
                if not docs:
                    continue
                if self.cased and self.has_upper[key] and all(w.islower() for w in raw[i : i + n]):
                    continue
                found.update(dict.fromkeys(sorted(docs)))
        return list(found)


def passages(hits: Sequence[RetrievedChunk]) -> list[str]:
    return list(dict.fromkeys(h.chunk.document_id for h in hits))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True, help="ingested here once, reused afterwards")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--misses", action="store_true", help="print the gold passages graph misses at 5")
    args = parser.parse_args()
    settings, embedder, store = open_or_ingest(args.dataset, args.store)
    questions = load_questions(args.dataset, args.limit)

    all_chunks = list(store.chunks.iter_chunks())
    by_id = {c.id: c for c in all_chunks}
    # Prototype only: the stored vectors, read straight from FAISS (the product would need a lookup method).
    vid_of = dict(store.chunks._conn.execute("SELECT id, vector_id FROM chunks").fetchall())
    index = store.vectors._index
    vectors: dict[str, np.ndarray] = {cid: np.asarray(index.reconstruct(int(vid))) for cid, vid in vid_of.items()}
    titles = {c.document_id: c.title for c in all_chunks}
    chunks_of: dict[str, list[str]] = {}
    for c in all_chunks:
        chunks_of.setdefault(c.document_id, []).append(c.id)
    title_index = {(q, c): TitleIndex(titles, chunks_of, q, c) for q in (False, True) for c in (False, True)}

    dense_r = build_retriever(settings, store, embedder, "dense")
    plain = settings.model_copy(deep=True)
    plain.retrieval.graph_bridge = False
    graph_r = build_retriever(plain, store, embedder, "graph")
    product = build_retriever(settings, store, embedder, "graph")  # the product's graph mode: with the title bridge
    assert isinstance(graph_r, GraphRetriever) and isinstance(product, GraphRetriever)
    graph_r.refresh()
    product.refresh()

    def dense_search(vec: np.ndarray, k: int) -> list[str]:
        hits = store.vectors.search(vec, k)
        found = store.chunks.chunks_by_vector_ids([v for v, _ in hits])
        return [found[v].document_id for v, _ in hits if v in found]

    prepared: list[Prepared] = []
    for q in questions:
        qvec = embedder.embed([q.question])[0]
        t0 = time.perf_counter()
        graph = graph_r.retrieve(q.question, top_k=CHUNK_POOL)
        graph_ms = (time.perf_counter() - t0) * 1000
        prepared.append(Prepared(q, qvec, graph, dense_r.retrieve(q.question, top_k=CHUNK_POOL), graph_ms))

    def first_vec(p: Prepared) -> np.ndarray:
        return vectors[p.graph[0].chunk.id]

    def candidate_scores(p: Prepared, doc: str, score: str, tindex: TitleIndex) -> dict[str, float]:
        """Documents named by ``doc``'s text, scored (the best first)."""
        probe = p.qvec
        if score == "qp":
            probe = p.qvec + first_vec(p)
            probe = probe / np.linalg.norm(probe)
        qwords = set(words(p.question.question)) - STOP
        graph_score = {h.chunk.document_id: h.score for h in reversed(p.graph)}
        text = " ".join(by_id[c].text for c in chunks_of[doc])
        out: dict[str, float] = {}
        for position, other in enumerate(tindex.mentioned(text)):
            if other == doc:
                continue
            if score == "lex":
                best = max(len(qwords & set(words(by_id[c].text))) for c in chunks_of[other]) - 0.01 * position
            elif score == "graph":
                best = graph_score.get(other, 0.0) - 1e-6 * position
            else:
                best = max(float(vectors[c] @ probe) for c in tindex.chunks_of[other])
            out[other] = best
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def title_variant(
        m: int, score: str, n: int, keep: int, qualifier: bool, after: bool = False, cased: bool = False
    ) -> Callable[[Prepared], list[str]]:
        """``after``: each of the top m passages is followed by its own best n bridges; else the best n bridges of
        the top m passages together follow the first ``keep`` passages."""
        tindex = title_index[(qualifier, cased)]

        def run(p: Prepared) -> list[str]:
            ranked = passages(p.graph)
            if not ranked:
                return ranked
            if after:
                out: dict[str, None] = {}
                for doc in ranked[:m]:
                    out[doc] = None
                    fresh = [d for d in candidate_scores(p, doc, score, tindex) if d not in out]
                    out.update(dict.fromkeys(fresh[:n]))
                return list(dict.fromkeys([*out, *ranked]))
            head = ranked[:keep]
            candidates: dict[str, float] = {}
            for doc in ranked[:m]:
                for other, value in candidate_scores(p, doc, score, tindex).items():
                    if other not in head:
                        candidates.setdefault(other, value)
            bridges = [d for d, _ in sorted(candidates.items(), key=lambda kv: -kv[1])[:n]]
            return list(dict.fromkeys([*head, *bridges, *ranked]))

        return run

    def title_inherit(m: int, n: int, alpha: float, qualifier: bool = True) -> Callable[[Prepared], list[str]]:
        """Each of the top m passages' best n bridges scores ``alpha * parent score + (1 - alpha) * own score``."""
        tindex = title_index[(qualifier, True)]

        def run(p: Prepared) -> list[str]:
            ranked = passages(p.graph)
            score = {h.chunk.document_id: h.score for h in reversed(p.graph)}
            for doc in ranked[:m]:
                bridges = [d for d in candidate_scores(p, doc, "graph", tindex) if d not in ranked[:m]][:n]
                for d in bridges:
                    score[d] = max(score.get(d, 0.0), alpha * score[doc] + (1 - alpha) * score.get(d, 0.0))
            return sorted(score, key=lambda d: -score[d])

        return run

    def title_rrf(m: int, weight: float, keep: int) -> Callable[[Prepared], list[str]]:
        tindex = title_index[(True, False)]

        def run(p: Prepared) -> list[str]:
            ranked = passages(p.graph)
            if not ranked:
                return ranked
            candidates: dict[str, float] = {}
            for doc in ranked[:m]:
                text = " ".join(by_id[c].text for c in chunks_of[doc])
                for other in tindex.mentioned(text):
                    if other != doc:
                        best = max(float(vectors[c] @ p.qvec) for c in tindex.chunks_of[other])
                        candidates[other] = max(candidates.get(other, -1.0), best)
            bridges = [d for d, _ in sorted(candidates.items(), key=lambda kv: -kv[1])]
            fused = [d for d, _ in reciprocal_rank_fusion([ranked[keep:], bridges], [1.0, weight], 60)]
            return list(dict.fromkeys([*ranked[:keep], *fused]))

        return run

    def prf_variant(lam: float, keep: int, weight: float) -> Callable[[Prepared], list[str]]:
        def run(p: Prepared) -> list[str]:
            ranked = passages(p.graph)
            if not ranked:
                return ranked
            q2 = p.qvec + lam * first_vec(p)
            second = list(dict.fromkeys(dense_search(q2 / np.linalg.norm(q2), CHUNK_POOL)))
            fused = [d for d, _ in reciprocal_rank_fusion([ranked[keep:], second], [1.0, weight], 60)]
            return list(dict.fromkeys([*ranked[:keep], *fused]))

        return run

    variants: dict[str, Callable[[Prepared], list[str]]] = {}
    # Insert the best n bridges of the top m passages right after the first passage ("qual": titles also without a
    # trailing "(qualifier)"; "cased": a mention all in lower case of a capitalised title does not count).
    for m, n in ((1, 1), (1, 2), (2, 2), (2, 3)):
        for qualifier, cased in ((False, False), (True, False), (True, True)):
            name = f"title m={m} n={n}{' qual' if qualifier else ''}{' cased' if cased else ''}"
            variants[name] = title_variant(m, "graph", n, 1, qualifier, False, cased)
    for score in ("q", "qp", "lex"):  # other scores of the bridge candidates than their graph score
        variants[f"title m=1 n=2 qual score={score}"] = title_variant(1, score, 2, 1, True)
    for m, n in ((2, 1), (2, 2), (3, 1)):  # each of the top m passages followed by its own best n bridges
        variants[f"title after m={m} n={n} qual cased"] = title_variant(m, "graph", n, 1, True, True, True)
    for m, n in ((2, 2), (3, 2), (2, 3)):  # bridges inherit a share of their passage's score (the product's rule)
        for alpha in (0.5, 0.7, 0.9):
            variants[f"title inherit m={m} n={n} a={alpha} qual cased"] = title_inherit(m, n, alpha)
    variants["title inherit m=2 n=2 a=0.7 cased (no qual)"] = title_inherit(2, 2, 0.7, qualifier=False)
    variants["title-rrf m=2 w=1.0 keep=1"] = title_rrf(2, 1.0, 1)
    for lam in (0.5, 1.0):
        for keep in (1, 2):
            variants[f"prf lam={lam} keep={keep}"] = prf_variant(lam, keep, 1.0)

    rows: dict[str, tuple[list[list[str]], list[float]]] = {
        "dense": ([passages(p.dense) for p in prepared], [0.0] * len(prepared)),
        "graph": ([passages(p.graph) for p in prepared], [p.graph_ms for p in prepared]),
    }
    product_ranked, product_ms = [], []
    for p in prepared:  # the added time: paired with a second run of plain graph retrieval, back to back
        t0 = time.perf_counter()
        graph_r.retrieve(p.question.question, top_k=CHUNK_POOL)
        t1 = time.perf_counter()
        product_ranked.append(passages(product.retrieve(p.question.question, top_k=CHUNK_POOL)))
        product_ms.append((time.perf_counter() - t1) * 1000 - (t1 - t0) * 1000)
    rows["graph + title bridge (product)"] = (product_ranked, product_ms)
    for name, fn in variants.items():
        ranked_all, added = [], []
        for p in prepared:
            t0 = time.perf_counter()
            ranked_all.append(fn(p))
            added.append((time.perf_counter() - t0) * 1000)
        rows[name] = (ranked_all, added)

    def ci(values: Sequence[float]) -> str:
        e = bootstrap_ci(values)
        return f"{100 * e.mean:5.1f} [{100 * e.ci_low:5.1f},{100 * e.ci_high:5.1f}]"

    base5 = [recall_at_k(r, p.question.gold_passage_ids, 5) for r, p in zip(rows["graph"][0], prepared, strict=True)]
    print(f"{args.dataset.name}: {len(questions)} questions, {len(all_chunks)} chunks")
    print(f"{'variant':<46}{'recall@2':>20}{'recall@5':>20}{'all-gold@8':>20}{'R@5 - graph':>22}{'+/-':>7}{'ms':>7}")
    for name, (ranked_all, added) in rows.items():
        gold = [p.question.gold_passage_ids for p in prepared]
        r2 = [recall_at_k(r, g, 2) for r, g in zip(ranked_all, gold, strict=True)]
        r5 = [recall_at_k(r, g, 5) for r, g in zip(ranked_all, gold, strict=True)]
        ag = [all_gold_at_k(r, g, ALL_GOLD_K) for r, g in zip(ranked_all, gold, strict=True)]
        diffs = [a - b for a, b in zip(r5, base5, strict=True)]
        moved = f"{sum(d > 0 for d in diffs)}/{sum(d < 0 for d in diffs)}"  # questions whose R@5 rose / fell
        print(
            f"{name:<46}{ci(r2):>20}{ci(r5):>20}{ci(ag):>20}{ci(diffs):>22}{moved:>7}{percentile(added, 50):>7.2f}",
            flush=True,
        )

    if args.misses:
        for p, ranked in zip(prepared, rows["graph"][0], strict=True):
            missed = [g for g in p.question.gold_passage_ids if g not in ranked[:5]]
            if missed:
                top = ranked[0]
                print(
                    f"\nQ {p.question.question}\n  top1 {titles.get(top)!r} gold? {top in p.question.gold_passage_ids}"
                )
                for g in missed:
                    named = g in title_index[(True, False)].mentioned(" ".join(by_id[c].text for c in chunks_of[top]))
                    pos = ranked.index(g) + 1 if g in ranked else None
                    print(f"  missed {titles.get(g)!r} at {pos}; named by top1: {named}")
    store.close()


if __name__ == "__main__":
    main()
