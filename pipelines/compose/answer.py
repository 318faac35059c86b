"""Composition root, answers: the answer service (retriever, graph context, model, gate, audit, rollback) from typed
settings, and the builder golden prompt tests run with."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.base import ChatModel
from core.settings import GateSettings, Settings
from pipelines.compose import lazy
from pipelines.compose.models import prompt_registry
from pipelines.compose.retrieval import build_retriever, rerank_with_llm
from pipelines.compose.stores import build_audit, open_store
from pipelines.compose.tracing import model_tracer, tracer_of
from pipelines.store.base import AuditStore
from pipelines.store.snapshotting_audit import SnapshottingAuditStore
from retrieval.base import Embedder, Retriever
from retrieval.sentences import SentenceSelector
from retrieval.traced import TracedRetriever

if TYPE_CHECKING:
    from core.llm import ModelClient
    from core.tracing import Tracing
    from evals.gate.base import AnswerGate, VerdictModel
    from pipelines.answer.service import AnswerService
    from pipelines.store.knowledge import KnowledgeStore


def build_answer_service(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    audit: AuditStore | None = None,
    model: ChatModel | None = None,
    tracing: Tracing | None = None,
    judge_guard: Callable[[ModelClient], VerdictModel] | None = None,
) -> AnswerService:
    """The answer service; ``model`` (default: a client of the configured endpoint) makes the answers, e.g. the
    API's client behind its breaker. The gate's judge has a client of its own, wrapped by ``judge_guard`` when
    given (the API: behind the breaker too, observed by the metrics). With ``tracing``, answers, their steps,
    retrievals, model calls and gate stages are spans."""
    r = settings.retrieval
    tracer = tracer_of(tracing)
    retriever: Retriever = build_retriever(settings, store, embedder)
    if r.rerank:
        retriever = rerank_with_llm(settings, retriever, tracing)
    if tracer is not None:
        retriever = TracedRetriever(retriever, tracer, r.mode + ("+rerank" if r.rerank else ""), r.top_k)
    graph_context = lazy.GraphContextBuilder(
        store.graph, lazy.EntityLinker(store.graph), max_facts=r.max_facts, max_chunks=r.graph_chunks, hops=r.fact_hops
    )
    client = lazy.ModelClient.from_settings(settings, traced=model_tracer(tracing))
    registry = prompt_registry(settings)
    audit = audit or build_audit(settings, store)
    rollback = settings.prompts.rollback
    return lazy.AnswerService(
        retriever=retriever,
        graph_context=graph_context,
        chunks=store.chunks,
        registry=registry,
        client=model or client,
        gate=lazy.build_gate(settings.gate, client, embedder, tracer, judge_factory=ragas_judge, guard=judge_guard),
        audit=SnapshottingAuditStore(audit, store.chunks, lambda: store.snapshot_id),
        prompt_label=settings.prompts.label,
        top_k=r.top_k,
        graph_chunks=r.graph_chunks,
        max_facts=r.max_facts,
        max_question_chars=settings.api.max_question_chars,
        model_timeout_s=settings.llm_timeout_s,
        gate_timeout_s=settings.gate.timeout_s * 2 + 60,
        strict_retry=settings.prompts.strict_retry,
        context_budget_tokens=r.context_budget_tokens,
        selector=SentenceSelector(r.evidence_budget_tokens, per_passage=r.evidence_per_passage)
        if r.evidence_budget_tokens
        else None,
        strict_selector=SentenceSelector(
            r.strict_evidence_budget_tokens, per_passage=r.evidence_per_passage, first_sentence=False
        )
        if r.strict_evidence_budget_tokens and r.evidence_budget_tokens
        else None,
        rollback=lazy.AutoRollback(registry, audit, rollback, label=settings.prompts.label)
        if rollback.enabled
        else None,
        tracer=tracer,
        capture_content=tracing.capture_content if tracing is not None else False,
    )


def ragas_judge(settings: GateSettings, client: ModelClient, embedder: Embedder) -> AnswerGate:
    """The gate's Ragas judge (:class:`~evals.gate.base.JudgeFactory`): Ragas is imported only when one is built."""
    return lazy.RagasGate.from_settings(settings, client, embedder)


def golden_service_builder(embedder: Embedder) -> Callable[[Settings, AuditStore], AnswerService]:
    """For ``run_golden``: the pinned settings' answer service over the existing store, recording into ``audit``."""

    def build(pinned: Settings, audit: AuditStore) -> AnswerService:
        return build_answer_service(pinned, open_store(pinned, embedder, create=False), embedder, audit=audit)

    return build
