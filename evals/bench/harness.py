"""The retrieval benchmark behind ``kgrag bench``: ingest a dataset's corpus into a temporary store, run every
question through every retrieval mode in the same run, and score passage recall; with ``answers``, also ask every
question of the real answer service (gate included) per settings variant (:mod:`evals.bench.answers`).

A dataset directory holds ``questions.jsonl`` (``id``, ``question``, ``answers``, ``gold_passage_ids``) and
``corpus.jsonl`` (``id``, ``title``, ``text``), one passage per line. Each passage is ingested as one document;
chunks are mapped back to their passage (document) id, and a passage ranks where its best chunk ranks.

The report (:func:`run_benchmark`) is a JSON-ready dict, schema version 2::

    {"schema_version": 2,
     "dataset": {"path", "name", "questions", "passages"},
     "config": {"modes", "rerank", "answers", "limit", "embedding_model", "retrieval": {...settings},
                "bootstrap_resamples"},
     "ingest": {"seconds", "chunks", "durations_s": {stage: seconds}, "graph_build_s"},
     "modes": {mode: {"recall@2": EST, "recall@5": EST, "all_gold@8": EST,
                      "latency_ms": {"p50", "p95", "mean"},
                      "delta_vs_dense": {"recall@2": EST, "recall@5": EST, "all_gold@8": EST}?}},
     "questions": [{"id", "gold_passage_ids", "modes": {mode: {"ranked": [passage ids, top 8], "recall@2",
                    "recall@5", "all_gold@8", "latency_ms"}}}],
     "answers"?: {"variants", "settings", "summary": {variant: {...}}, "questions": [...]}}

where EST is ``{"mean", "ci_low", "ci_high"}`` (fractions in [0, 1], 95% percentile bootstrap over questions).
``answers`` appears only with ``answers=True`` (:func:`evals.bench.answers.run_answer_benchmark` documents it; schema
1's per-mode ``em``/``f1`` came from a bare generator outside the answer workflow and are no longer produced);
``delta_vs_dense`` (paired: the per-question difference
from dense, bootstrapped) only for modes other than dense, when dense was run. Keys are only ever added, never renamed.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from core.errors import InputError
from core.settings import RetrievalModeName, Settings
from evals.bench.answers import DEFAULT, Variant, parse_variant, run_answer_benchmark
from evals.bench.metrics import all_gold_at_k, bootstrap_ci, percentile, recall_at_k
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.models import load_embedder
from pipelines.compose.retrieval import build_retriever, rerank_with_llm
from pipelines.compose.stores import open_store
from pipelines.ingest.progress import NoProgress, ProgressReporter
from retrieval.base import Retriever
from retrieval.graph import GraphRetriever

SCHEMA_VERSION = 2
MODES: tuple[str, ...] = get_args(RetrievalModeName)
RECALL_KS = (2, 5)
ALL_GOLD_K = 8
#: Chunks fetched per question: enough that the top passages survive deduplication of multi-chunk passages.
CHUNK_POOL = 40
#: What the answer benchmark compares the default settings with, unless told otherwise.
DEFAULT_ANSWER_VARIANTS = ("retrieval.mode=hybrid",)


@dataclass(frozen=True)
class BenchQuestion:
    """One benchmark question with its gold answers and gold passage ids."""

    id: str
    question: str
    answers: list[str]
    gold_passage_ids: list[str]


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError(
            f"{path} does not exist",
            hint="pass a dataset folder holding questions.jsonl and corpus.jsonl (see shared/eval/README.md)",
        )
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number} is not valid JSON ({exc.msg})", hint="fix or remove that line") from exc
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number} is not a JSON object", hint="one object per line")
        records.append(record)
    return records


def load_questions(dataset: Path, limit: int | None = None) -> list[BenchQuestion]:
    """The dataset's questions (the first ``limit``), checked against its corpus ids."""
    path = dataset / "questions.jsonl"
    questions = []
    for number, record in enumerate(_read_jsonl(path), start=1):
        gold, answers, text = record.get("gold_passage_ids"), record.get("answers"), record.get("question")
        if not isinstance(text, str) or not text.strip() or not isinstance(gold, list) or not gold:
            raise InputError(
                f"{path} record {number} needs a non-empty 'question' and a non-empty list 'gold_passage_ids'",
                hint="see the schema in shared/eval/README.md",
            )
        questions.append(
            BenchQuestion(
                id=str(record.get("id", number)),
                question=text,
                answers=[str(a) for a in answers] if isinstance(answers, list) else [],
                gold_passage_ids=[str(g) for g in gold],
            )
        )
    if not questions:
        raise InputError(f"{path} holds no questions", hint="add at least one question")
    return questions[:limit] if limit else questions


def load_corpus(dataset: Path) -> dict[str, dict[str, str]]:
    """Passage id -> ``{"title", "text"}``."""
    path = dataset / "corpus.jsonl"
    corpus: dict[str, dict[str, str]] = {}
    for number, record in enumerate(_read_jsonl(path), start=1):
        if "id" not in record or not isinstance(record.get("text"), str):
            raise InputError(f"{path} record {number} needs 'id' and a string 'text'", hint="see shared/eval/README.md")
        corpus[str(record["id"])] = {"title": str(record.get("title") or ""), "text": record["text"]}
    return corpus


def parse_modes(modes: str | Sequence[str]) -> list[RetrievalModeName]:
    """Validate a comma-separated (or listed) set of modes, keeping their order."""
    names = [m.strip() for m in (modes.split(",") if isinstance(modes, str) else modes) if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise InputError(
            f"unknown retrieval mode(s): {', '.join(unknown) or '(none given)'}",
            hint=f"use a comma-separated subset of {','.join(MODES)}",
        )
    return list(dict.fromkeys(names))  # type: ignore[arg-type]


def rank_passages(retriever: Retriever, question: str, document_of: Callable[[str], str]) -> list[str]:
    """Passage ids best first: each passage at the rank of its best chunk."""
    hits = retriever.retrieve(question, top_k=CHUNK_POOL)
    return list(dict.fromkeys(document_of(hit.chunk.id) for hit in hits))


def run_benchmark(
    dataset: Path,
    modes: Sequence[RetrievalModeName],
    settings: Settings,
    *,
    answers: bool = False,
    limit: int | None = None,
    progress: ProgressReporter | None = None,
    resamples: int = 2000,
    rerank: bool = False,
    variants: Sequence[str] = DEFAULT_ANSWER_VARIANTS,
) -> dict[str, Any]:
    """Ingest ``dataset``'s corpus into a temporary store, run every question through every mode, and report.

    With ``rerank`` every mode also runs behind the LLM rerank stage, reported as ``<mode>+rerank``. With
    ``answers`` every question is also answered by the real answer service, with ``settings`` and with each of
    ``variants`` (``PATH=VALUE`` overrides), after the retrieval modes.
    """

    if not dataset.is_dir():
        raise InputError(f"dataset folder {dataset} does not exist", hint="pass e.g. ../shared/eval/musique")
    questions = load_questions(dataset, limit)
    corpus = load_corpus(dataset)
    missing = sorted({g for q in questions for g in q.gold_passage_ids} - set(corpus))
    if missing:
        raise InputError(
            f"{len(missing)} gold passage id(s) are not in {dataset / 'corpus.jsonl'} (e.g. {missing[0]!r})",
            hint="the corpus must hold every gold passage of the questions",
        )
    report_progress = progress or NoProgress()
    answer_variants = [Variant(DEFAULT, settings), *(parse_variant(v, settings) for v in variants)] if answers else []
    embedder = load_embedder(settings)
    with tempfile.TemporaryDirectory(prefix="kgrag-bench-") as tmp:
        store = open_store(settings, embedder, create=True, store_dir=Path(tmp) / "store")
        t0 = time.perf_counter()
        ingest = build_ingestor(settings, store, embedder, report_progress).ingest([dataset / "corpus.jsonl"])
        ingest_s = time.perf_counter() - t0
        document_of = _document_lookup(store)
        retrievers: dict[str, Retriever] = {}
        graph_build_s = None
        for mode in modes:
            retriever = build_retriever(settings, store, embedder, mode)
            if isinstance(retriever, GraphRetriever):
                t1 = time.perf_counter()
                retriever.refresh()
                graph_build_s = round(time.perf_counter() - t1, 3)
            retrievers[mode] = retriever
        if rerank:
            for base in modes:
                retrievers[f"{base}+rerank"] = rerank_with_llm(settings, retrievers[base])
        per_question: list[dict[str, Any]] = [
            {"id": q.id, "gold_passage_ids": q.gold_passage_ids, "modes": {}} for q in questions
        ]
        summary: dict[str, Any] = {}
        for label in retrievers:
            report_progress.start(label, len(questions))
            latencies: list[float] = []
            scores: dict[str, list[float]] = {}
            for q, row in zip(questions, per_question, strict=True):
                t1 = time.perf_counter()
                ranked = rank_passages(retrievers[label], q.question, document_of)
                latency_ms = (time.perf_counter() - t1) * 1000
                latencies.append(latency_ms)
                result: dict[str, Any] = {"ranked": ranked[:ALL_GOLD_K], "latency_ms": round(latency_ms, 3)}
                for k in RECALL_KS:
                    result[f"recall@{k}"] = recall_at_k(ranked, q.gold_passage_ids, k)
                result[f"all_gold@{ALL_GOLD_K}"] = all_gold_at_k(ranked, q.gold_passage_ids, ALL_GOLD_K)
                for key in ("recall@2", "recall@5", f"all_gold@{ALL_GOLD_K}"):
                    scores.setdefault(key, []).append(result[key])
                row["modes"][label] = result
                report_progress.advance(label)
            summary[label] = {
                key: bootstrap_ci(values, resamples=resamples).as_dict() for key, values in scores.items()
            } | {
                "latency_ms": {
                    "p50": round(percentile(latencies, 50), 3),
                    "p95": round(percentile(latencies, 95), 3),
                    "mean": round(sum(latencies) / len(latencies), 3),
                }
            }
        answered = (
            run_answer_benchmark(
                questions, store, embedder, answer_variants, progress=report_progress, resamples=resamples
            )
            if answer_variants
            else None
        )
        store.chunks.close()
    if "dense" in summary:
        for name in summary:
            if name != "dense":
                summary[name]["delta_vs_dense"] = {
                    key: bootstrap_ci(
                        [row["modes"][name][key] - row["modes"]["dense"][key] for row in per_question],
                        resamples=resamples,
                    ).as_dict()
                    for key in ("recall@2", "recall@5", f"all_gold@{ALL_GOLD_K}")
                }
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "dataset": {"path": str(dataset), "name": dataset.name, "questions": len(questions), "passages": len(corpus)},
        "config": {
            "modes": list(modes),
            "rerank": rerank,
            "answers": answers,
            "limit": limit,
            "embedding_model": embedder.model_name,
            "retrieval": settings.retrieval.model_dump(),
            "bootstrap_resamples": resamples,
        },
        "ingest": {
            "seconds": round(ingest_s, 3),
            "chunks": ingest.chunks_embedded,
            "durations_s": ingest.durations_s,
            "graph_build_s": graph_build_s,
        },
        "modes": summary,
        "questions": per_question,
    }
    if answered is not None:
        report["answers"] = answered
    return report


def _document_lookup(store: Any) -> Callable[[str], str]:
    mapping = {chunk.id: chunk.document_id for chunk in store.chunks.iter_chunks()}
    return lambda chunk_id: mapping.get(chunk_id, chunk_id)
