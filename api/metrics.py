"""Prometheus metrics of one API instance, in a registry of its own (held by the app state, never the global one).

Counters and histograms are updated as requests, answers and model calls happen; the queue depths and the
breaker's state are read when ``/metrics`` is scraped (:class:`_LiveGauges`). Labels are low-cardinality: route
templates (never raw paths), status codes, decisions, prompt names and versions, gate stages and outcomes.
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

#: Buckets for whole requests and answers (a CPU-served model answers in seconds to minutes).
SLOW_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Buckets for gate stages (milliseconds for the cheap checks, seconds for the judge).
STAGE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 120.0)
UNMATCHED_ROUTE = "unmatched"


@dataclass
class LiveSources:
    """What the scrape-time gauges read: the admission queue, the breaker, and the review-queue count."""

    admission: AdmissionQueue
    breaker: ModelBreaker
    review_queue: Callable[[], int | None]


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


class ApiMetrics:
    """The API's metric families, in :attr:`registry`."""

    def __init__(self) -> None:
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
        self.gate_stages = Counter(
            "kgrag_gate_stage_outcomes", "Gate cascade stages by outcome.", ["stage", "outcome"], registry=r
        )
        self.gate_stage_seconds = Histogram(
            "kgrag_gate_stage_duration_seconds", "Gate stage durations.", ["stage"], buckets=STAGE_BUCKETS, registry=r
        )
        self.model_calls = Counter(
            "kgrag_model_calls",
            "Answer-model calls by outcome (ok, error, rejected by the breaker, cancelled by the request).",
            ["outcome"],
            registry=r,
        )
        self.model_seconds = Histogram(
            "kgrag_model_call_duration_seconds",
            "Answer-model call latency.",
            ["outcome"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.model_tokens = Counter("kgrag_model_tokens", "Tokens of answer-model calls.", ["kind"], registry=r)

    def watch(self, sources: LiveSources) -> None:
        """Add the scrape-time gauges (queue depths, breaker state) read from ``sources``."""
        self.registry.register(_LiveGauges(sources))

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def answer(self, record: AnswerRecord) -> None:
        """Count one answer: its decision and prompt version, its gate stages, its tokens."""
        p = record.provenance
        self.answers.labels(p.gate.decision, p.prompt.name, str(p.prompt.version)).inc()
        for stage in p.gate.stages:
            self.gate_stages.labels(stage.name, stage.outcome).inc()
            self.gate_stage_seconds.labels(stage.name).observe(stage.duration_ms / 1000)
        if p.prompt_tokens:
            self.answer_tokens.labels("prompt").inc(p.prompt_tokens)
        if p.completion_tokens:
            self.answer_tokens.labels("completion").inc(p.completion_tokens)

    def model_call(
        self, *, seconds: float, outcome: str, prompt_tokens: int | None, completion_tokens: int | None
    ) -> None:
        self.model_calls.labels(outcome).inc()
        self.model_seconds.labels(outcome).observe(seconds)
        if prompt_tokens:
            self.model_tokens.labels("prompt").inc(prompt_tokens)
        if completion_tokens:
            self.model_tokens.labels("completion").inc(completion_tokens)


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
