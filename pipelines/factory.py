"""Wiring: build the components a command or the API needs from typed settings (no string lookup tables)."""

from __future__ import annotations

from pathlib import Path

from core.errors import ConfigurationError, ModelUnavailableError
from core.llm import ModelClient
from core.settings import RetrievalModeName, Settings
from evals.factory import build_gate
from kg.base import Extractor
from kg.graph_context import GraphContextBuilder
from kg.linking import EntityLinker
from kg.llm_extractor import LLMExtractor
from kg.offline_extractor import OfflineExtractor
from pipelines.answer import AnswerService
from pipelines.audit_store import SnapshottingAuditStore, SqlAuditStore
from pipelines.auto_rollback import AutoRollback
from pipelines.engines.base import IngestEngine
from pipelines.engines.local import LocalEngine
from pipelines.engines.ray_engine import RayEngine
from pipelines.ingest import Ingestor, ProgressReporter
from pipelines.store import KnowledgeStore
from prompts.registry import FilePromptRegistry
from retrieval.base import Embedder, Retriever
from retrieval.bridge import TitleBridge
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.faiss_index import VectorIndexOptions
from retrieval.graph import GraphRetriever
from retrieval.hybrid import HybridRetriever
from retrieval.onnx_embedder import OnnxEmbedder
from retrieval.rerank import LLMReranker


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings choose: ONNX Runtime (default) or PyTorch, same model, same vectors."""
    config = settings.embedding
    if config.backend == "onnx":
        if config.device != "cpu":
            raise ConfigurationError(
                f"the ONNX embedding backend runs on the CPU only, but KGRAG_EMBEDDING__DEVICE={config.device!r}",
                hint="set KGRAG_EMBEDDING__BACKEND=torch to embed on that device",
            )
        return OnnxEmbedder(
            model_path=config.model_path,
            batch_size=config.batch_size,
            num_threads=config.num_threads,
            cache_dir=config.onnx_cache_dir,
        )
    return SentenceTransformerEmbedder(
        model_path=config.model_path,
        batch_size=config.batch_size,
        device=config.device,
        num_threads=config.num_threads,
    )


def prompt_registry(settings: Settings) -> FilePromptRegistry:
    return FilePromptRegistry(settings.prompts.directory)


def open_store(
    settings: Settings, embedder: Embedder, *, create: bool, store_dir: Path | None = None
) -> KnowledgeStore:
    root = store_dir or settings.store_dir
    opener = KnowledgeStore.open_or_create if create else KnowledgeStore.open_existing
    return opener(
        root,
        embedding_model=embedder.model_name,
        dimension=embedder.dimension,
        snapshots_retained=settings.ingest.snapshots_retained,
        graph_settings=settings.graph,
        vector_index=VectorIndexOptions(
            precision=settings.retrieval.vector_precision,
            ivf_min_vectors=settings.retrieval.vector_ivf_min_vectors,
            ivf_nprobe=settings.retrieval.vector_ivf_nprobe,
        ),
    )


def build_extractor(settings: Settings) -> Extractor:
    if settings.extraction.extractor == "offline":
        return OfflineExtractor()
    client = ModelClient.from_settings(settings)
    client.served_models()  # fail now, with the fix, rather than on the first chunk
    registry = prompt_registry(settings)
    template = registry.resolve("extraction", settings.extraction.prompt_label)
    return LLMExtractor(
        client,
        template,
        registry.render,
        max_retries=settings.extraction.max_retries,
        max_tokens=settings.extraction.max_tokens,
    )


def build_ingestor(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    progress: ProgressReporter | None = None,
) -> Ingestor:
    return Ingestor(
        store,
        embedder,
        build_extractor(settings),
        settings.chunking,
        progress,
        max_file_bytes=settings.ingest.max_file_bytes,
        engine=build_ingest_engine(settings, embedder),
    )


def build_ingest_engine(settings: Settings, embedder: Embedder) -> IngestEngine:
    """The engine of ``settings.ingest.engine``: in this process (``local``) or on Ray Data (``ray``)."""
    if settings.ingest.engine == "ray":
        return RayEngine(settings.ingest.ray, settings.embedding, embedder.dimension)
    return LocalEngine(embedder)


def build_audit(settings: Settings, store: KnowledgeStore) -> SqlAuditStore:
    """The audit store: PostgreSQL (or any SQLAlchemy URL) when ``KGRAG_AUDIT__URL`` is set, else the store's own."""
    return SqlAuditStore(settings.audit.url) if settings.audit.url else store.audit


def build_retriever(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    mode: RetrievalModeName | None = None,
) -> HybridRetriever | GraphRetriever:
    """The retriever of ``mode`` (default: ``settings.retrieval.mode``); graph mode is seeded by dense retrieval."""
    r = settings.retrieval
    chosen = mode or r.mode
    if settings.embedding.quantize_queries and isinstance(embedder, OnnxEmbedder):
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
    return GraphRetriever(
        base,
        store.chunks,
        store.graph,
        EntityLinker(store.graph),
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


def rerank_with_llm(settings: Settings, retriever: Retriever) -> LLMReranker:
    """``retriever`` behind the listwise LLM rerank stage (the configured model, the ``rerank`` prompt)."""
    registry = prompt_registry(settings)
    return LLMReranker(
        retriever,
        ModelClient.from_settings(settings),
        registry.resolve("rerank", settings.prompts.label),
        registry.render,
        top_k=settings.retrieval.top_k,
        candidates=settings.retrieval.rerank_candidates,
    )


def build_answer_service(
    settings: Settings,
    store: KnowledgeStore,
    embedder: Embedder,
    audit: SqlAuditStore | None = None,
) -> AnswerService:
    r = settings.retrieval
    retriever: Retriever = build_retriever(settings, store, embedder)
    if r.rerank:
        retriever = rerank_with_llm(settings, retriever)
    graph_context = GraphContextBuilder(
        store.graph, EntityLinker(store.graph), max_facts=r.max_facts, max_chunks=r.graph_chunks, hops=r.fact_hops
    )
    client = ModelClient.from_settings(settings)
    registry = prompt_registry(settings)
    audit = audit or build_audit(settings, store)
    rollback = settings.prompts.rollback
    return AnswerService(
        retriever=retriever,
        graph_context=graph_context,
        chunks=store.chunks,
        registry=registry,
        client=client,
        gate=build_gate(settings.gate, client, embedder),
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
        rollback=AutoRollback(registry, audit, rollback, label=settings.prompts.label) if rollback.enabled else None,
    )


def check_model(settings: Settings) -> list[str]:
    """Models served at the configured endpoint; raises ModelUnavailableError with the fix if unreachable."""
    client = ModelClient.from_settings(settings)
    served = client.served_models()
    if served and settings.llm_model not in served:
        raise ModelUnavailableError(
            f"model {settings.llm_model!r} is not served at {settings.llm_base_url} (it serves: {', '.join(served)})",
            hint="set KGRAG_LLM_MODEL to one of those, or start the right model with `kgrag model serve`",
        )
    return served
