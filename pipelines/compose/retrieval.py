"""Composition root, retrieval: the retriever of the configured mode, optionally behind the LLM rerank stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.settings import RetrievalModeName, Settings
from pipelines.compose import lazy
from pipelines.compose.models import prompt_registry
from pipelines.compose.tracing import model_tracer
from retrieval.base import Embedder, Retriever
from retrieval.bridge import TitleBridge
from retrieval.hybrid import HybridRetriever

if TYPE_CHECKING:
    from core.tracing import Tracing
    from pipelines.store.knowledge import KnowledgeStore
    from retrieval.graph import GraphRetriever
    from retrieval.rerank import LLMReranker


def build_retriever(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    mode: RetrievalModeName | None = None,
) -> HybridRetriever | GraphRetriever:
    """The retriever of ``mode`` (default: ``settings.retrieval.mode``); graph mode is seeded by dense retrieval."""
    r = settings.retrieval
    chosen = mode or r.mode
    if settings.embedding.quantize_queries and isinstance(embedder, lazy.OnnxEmbedder):
        embedder = embedder.query_encoder()  # questions only: the store's passage vectors stay full precision
    base = HybridRetriever(
        embedder,
        store.vectors,
        store.keywords,
        store.chunks,
        mode="dense" if chosen == "graph" else chosen,
        top_k=r.top_k,
        candidates=r.candidates,
        rrf_k=r.rrf_k,
        dense_weight=r.dense_weight,
        bm25_weight=r.bm25_weight,
    )
    if chosen != "graph":
        return base
    return lazy.GraphRetriever(
        base,
        store.chunks,
        store.graph,
        lazy.EntityLinker(store.graph),
        top_k=r.top_k,
        dense_seeds=r.graph_dense_seeds,
        damping=r.graph_damping,
        passage_weight=r.graph_passage_weight,
        dense_mix=r.graph_dense_mix,
        ppr_epsilon=r.graph_ppr_epsilon,
        bridge=TitleBridge(
            scan=r.graph_bridge_scan,
            per_passage=r.graph_bridge_per_passage,
            inherit=r.graph_bridge_inherit,
            strip_qualifier=r.graph_bridge_strip_qualifier,
            max_title_documents=r.graph_bridge_max_title_documents,
        )
        if r.graph_bridge
        else None,
    )


def rerank_with_llm(settings: Settings, retriever: Retriever, tracing: Tracing | None = None) -> LLMReranker:
    """``retriever`` behind the listwise LLM rerank stage (the configured model, the ``rerank`` prompt)."""
    registry = prompt_registry(settings)
    return lazy.LLMReranker(
        retriever,
        lazy.ModelClient.from_settings(settings, traced=model_tracer(tracing)),
        registry.resolve("rerank", settings.prompts.label),
        registry.render,
        top_k=settings.retrieval.top_k,
        candidates=settings.retrieval.rerank_candidates,
    )
