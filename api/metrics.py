"""Prometheus metrics of one API instance, in a registry of its own (held by the app state, never the global one).

Counters and histograms are updated as requests, answers, model calls and ingestion jobs happen; the queue depths,
the breaker's state, the serving snapshot's age and the KPI drift are read when ``/metrics`` is scraped
(:class:`_LiveGauges`). Labels are low-cardinality: route templates (never raw paths), status codes, decisions,
prompt names and versions, gate stages and outcomes, retrieval modes, KPI names.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.admission import AdmissionQueue
from core.breaker import STATES, ModelBreaker
from core.types import AnswerRecord
from pipelines.answer.names import AnswerStep
from pipelines.ingest.report import IngestReport
from pipelines.ops.drift import DriftWatch

#: Buckets for whole requests and answers (a CPU-served model answers in seconds to minutes).
SLOW_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Buckets for gate stages (milliseconds for the cheap checks, seconds for the judge).
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0)
UNMATCHED_ROUTE = "unmatched"
#: The ``mode`` label of the graph-context step's latency (entity linking and fact lookup) beside the retrieval mode.
GRAPH_CONTEXT_MODE = "graph_context"


@dataclass
class LiveSources:
    """What the scrape-time gauges read: the admission queue, the breaker, the review-queue count, the serving
    snapshot's age in seconds (None: no store open) and the KPI drift watch (None: drift off)."""

    admission: AdmissionQueue
    breaker: ModelBreaker
    review_queue: Callable[[], int | None]
    snapshot_age: Callable[[], float | None]
    drift: DriftWatch | None = None


class _LiveGauges(Collector):
    def __init__(self, sources: LiveSources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        stats = self.sources.admission.stats()
        yield GaugeMetricFamily("kgrag_admission_in_flight", "Answers running on the model now.", stats.in_flight)
        yield GaugeMetricFamily("kgrag_admission_waiting", "Answers waiting for a model slot.", stats.waiting)
        yield GaugeMetricFamily("kgrag_admission_slots", "Answers the model may run at once.", stats.slots)
        yield GaugeMetricFamily(
            "kgrag_admission_queue_capacity", "Answers that may wait before 429.", stats.queue_depth
        )
        yield GaugeMetricFamily(
            "kgrag_admission_service_time_seconds", "Measured (EWMA) time of one answer.", stats.service_time_s
        )
        replica_in_flight = GaugeMetricFamily(
            "kgrag_admission_replica_in_flight", "Answers running on each model replica.", labels=["endpoint"]
        )
        replica_service = GaugeMetricFamily(
            "kgrag_admission_replica_service_time_seconds",
            "Measured (EWMA) time of one answer on each model replica.",
            labels=["endpoint"],
        )
        for replica in stats.replicas:
            replica_in_flight.add_metric([replica.endpoint], replica.in_flight)
            replica_service.add_metric([replica.endpoint], replica.service_time_s)
        yield replica_in_flight
        yield replica_service
        breaker = self.sources.breaker
        state = GaugeMetricFamily(
            "kgrag_model_breaker_state", "The model breaker's state (1 for the current one).", labels=["state"]
        )
        current = breaker.state
        for name in STATES:
            state.add_metric([name], 1.0 if name == current else 0.0)
        yield state
        yield GaugeMetricFamily(
            "kgrag_model_breaker_retry_after_seconds",
            "Seconds left of the open breaker's cool-down.",
            breaker.retry_after_s(),
        )
        yield GaugeMetricFamily(
            "kgrag_model_breaker_consecutive_failures",
            "Model calls failed in a row.",
            breaker.stats().consecutive_failures,
        )
        depth = self.sources.review_queue()
        if depth is not None:
            yield GaugeMetricFamily("kgrag_review_queue_depth", "Answers held for review, not reviewed yet.", depth)
        age = self.sources.snapshot_age()
        if age is not None:
            yield GaugeMetricFamily(
                "kgrag_snapshot_age_seconds", "Seconds since the snapshot the API serves was published.", age
            )
        if self.sources.drift is not None:
            yield from _drift_families(self.sources.drift)


def _drift_families(watch: DriftWatch) -> Iterator[Metric]:
    report = watch.report()
    labels = ["kpi"]
    current = GaugeMetricFamily("kgrag_kpi_current", "A tracked KPI over the newest window of answers.", labels=labels)
    baseline = GaugeMetricFamily(
        "kgrag_kpi_baseline", "A tracked KPI over the baseline window before it.", labels=labels
    )
    drifting = GaugeMetricFamily(
        "kgrag_kpi_drifting", "1 while the KPI's windows differ by more than its threshold.", labels=labels
    )
    for row in report.kpis:
        if row.current is not None:
            current.add_metric([row.kpi], row.current)
        if row.baseline is not None:
            baseline.add_metric([row.kpi], row.baseline)
        drifting.add_metric([row.kpi], 1.0 if row.drifting else 0.0)
    windows = GaugeMetricFamily(
        "kgrag_kpi_window_answers", "Answers in the current and baseline windows.", labels=["window"]
    )
    windows.add_metric(["current"], report.current_answers)
    windows.add_metric(["baseline"], report.baseline_answers)
    yield from (current, baseline, drifting, windows)


class ApiMetrics:
    """The API's metric families, in :attr:`registry`; with ``enabled`` false nothing is counted. Each answer is
    also shown to the KPI drift watch, if any; retrieval latency is labelled with the configured ``retrieval_mode``."""

    def __init__(self, retrieval_mode: str = "hybrid", drift: DriftWatch | None = None, enabled: bool = True) -> None:
        self.enabled = enabled
        self.retrieval_mode = retrieval_mode
        self.drift = drift
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "kgrag_http_requests",
            "HTTP requests by route template and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "kgrag_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["method", "route"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "kgrag_answers",
            "Answers by gate decision and the resolved prompt version.",
            ["decision", "prompt", "prompt_version"],
            registry=r,
        )
        self.answer_tokens = Counter(
            "kgrag_answer_tokens", "Model tokens the answers used (from their provenance).", ["kind"], registry=r
        )
        self.judge_tokens = Counter(
            "kgrag_gate_judge_tokens",
            "Model tokens the gate's judge used for the answers' verdicts (from their provenance).",
            ["kind"],
            registry=r,
        )
        self.gate_stages = Counter(
            "kgrag_gate_stage_outcomes", "Gate cascade stages by outcome.", ["stage", "outcome"], registry=r
        )
        self.gate_stage_seconds = Histogram(
            "kgrag_gate_stage_duration_seconds", "Gate stage durations.", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.model_calls = Counter(
            "kgrag_model_calls",
            "Model calls by role (answer, judge) and outcome (ok, error, rejected by the breaker, cancelled by the "
            "request).",
            ["role", "outcome"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "kgrag_model_call_duration_seconds",
            "Model call latency by role (answer, judge).",
            ["role", "outcome"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter(
            "kgrag_model_tokens", "Tokens of model calls by role (answer, judge).", ["role", "kind"], registry=r
        )
        self.retrieval_seconds = Histogram(
            "kgrag_retrieval_duration_seconds",
            "Retrieval latency of the answers by mode (and the graph-context lookup as graph_context).",
            ["mode"],
            buckets=STAGE_BUCKETS,
            registry=r,
        )
        self.ingest_runs = Counter(
            "kgrag_ingest_runs",
            "Ingestion runs of the API's document jobs by kind and status.",
            ["kind", "status"],
            registry=r,
        )
        self.ingest_documents = Counter(
            "kgrag_ingest_documents", "Documents the API's ingestion runs changed.", ["change"], registry=r
        )
        self.ingest_chunks = Counter(
            "kgrag_ingest_chunks", "Chunks of the API's ingestion runs by what was done.", ["kind"], registry=r
        )
        self.ingest_failures = Counter(
            "kgrag_ingest_failures", "Files skipped and extractions failed in ingestion runs.", ["kind"], registry=r
        )
        self.ingest_tokens = Counter(
            "kgrag_ingest_tokens", "Model tokens of the LLM extractor in ingestion runs.", ["kind"], registry=r
        )
        self.ingest_seconds = Histogram(
            "kgrag_ingest_run_duration_seconds", "Ingestion run durations.", buckets=SLOW_BUCKETS, registry=r
        )

    def watch(self, sources: LiveSources) -> None:
        """Add the scrape-time gauges (queue depths, breaker state) read from ``sources``."""
        self.registry.register(_LiveGauges(sources))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        if not self.enabled:
            return
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def answer(self, record: AnswerRecord) -> None:
        """Count one answer: its decision and prompt version, its gate stages, its tokens (and show it to the drift
        watch, which ``/healthz`` reports whether metrics are on or not)."""
        if self.drift is not None:
            self.drift.observe(record)
        if not self.enabled:
            return
        p = record.provenance
        self.answers.labels(p.gate.decision, p.prompt.name, str(p.prompt.version)).inc()
        for stage in p.gate.stages:
            self.gate_stages.labels(stage.name, stage.outcome).inc()
            self.gate_stage_seconds.labels(stage.name).observe(stage.duration_ms / 1000)
        if p.prompt_tokens:
            self.answer_tokens.labels("prompt").inc(p.prompt_tokens)
        if p.completion_tokens:
            self.answer_tokens.labels("completion").inc(p.completion_tokens)
        judge_prompt, judge_completion = p.gate.judge_tokens()
        if judge_prompt:
            self.judge_tokens.labels("prompt").inc(judge_prompt)
        if judge_completion:
            self.judge_tokens.labels("completion").inc(judge_completion)
        for entry in p.trace:
            if entry.status == "skipped":
                continue
            if entry.step == AnswerStep.RETRIEVE:
                self.retrieval_seconds.labels(self.retrieval_mode).observe(entry.duration_ms / 1000)
            elif entry.step == AnswerStep.GRAPH_CONTEXT:
                self.retrieval_seconds.labels(GRAPH_CONTEXT_MODE).observe(entry.duration_ms / 1000)

    def ingest_run(self, kind: str, status: str, report: IngestReport | None) -> None:
        """Count one finished ingestion job (``status``: succeeded, partial, failed) and what its run did."""
        if not self.enabled:
            return
        self.ingest_runs.labels(kind, status).inc()
        if report is None:
            return
        for change, n in (
            ("added", report.documents_added),
            ("changed", report.documents_changed),
            ("deleted", report.documents_deleted),
        ):
            self.ingest_documents.labels(change).inc(n)
        for kind_, n in (
            ("embedded", report.chunks_embedded),
            ("reused", report.chunks_reused),
            ("removed", report.chunks_removed),
            ("extracted", report.chunks_extracted),
        ):
            self.ingest_chunks.labels(kind_).inc(n)
        self.ingest_failures.labels("skipped_file").inc(len(report.skipped))
        self.ingest_failures.labels("extraction").inc(report.extraction_failures)
        self.ingest_tokens.labels("prompt").inc(report.prompt_tokens)
        self.ingest_tokens.labels("completion").inc(report.completion_tokens)
        if "total" in report.durations_s:
            self.ingest_seconds.observe(report.durations_s["total"])

    def model_call(
        self,
        *,
        seconds: float,
        outcome: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        role: str = "answer",
    ) -> None:
        if not self.enabled:
            return
        self.model_calls.labels(role, outcome).inc()
        self.model_seconds.labels(role, outcome).observe(seconds)
        if prompt_tokens:
            self.model_tokens.labels(role, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.model_tokens.labels(role, "completion").inc(completion_tokens)


class RequestMetrics:
    """ASGI middleware: counts each HTTP request by its route template (after routing) and status, and times it."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.request(scope.get("method", "GET"), route, status, time.perf_counter() - started)
