"""The parts the composition root builds with whose modules import heavy libraries, imported on first use.

The one place that defers imports: the compose modules (and the entry points, for the few parts they build
themselves) name these parts as ``lazy.NAME``, and reading ``lazy.NAME`` imports the module that defines ``NAME``
then, not when ``kgrag`` starts. So ``kgrag --help`` loads none of FAISS, Neo4j, SQLAlchemy, SciPy, openai or Ragas
(ONNX Runtime is loaded only by building an embedder, torch only by exporting the model or by the PyTorch backend;
Ragas only by building a gate with a Ragas judge), and a no-change ``kgrag ingest --sync`` loads only what deciding
"nothing to do" needs. Type checkers see the real objects through the ``TYPE_CHECKING`` imports.
"""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.llm import ModelClient
    from core.tracing import Tracing
    from evals.gate.factory import build_gate
    from evals.gate.ragas_gate import RagasGate
    from kg.export import graph_rows, push, to_cypher, to_json, write_graphml
    from kg.factory import open_graph_store
    from kg.graph_context import GraphContextBuilder
    from kg.linking import EntityLinker
    from kg.llm_extractor import LLMExtractor
    from kg.neo4j_store import Neo4jGraphStore
    from kg.networkx_store import NetworkxGraphStore
    from pipelines.answer.golden import load_golden, run_golden
    from pipelines.answer.rollback import AutoRollback
    from pipelines.answer.service import AnswerService
    from pipelines.ingest.engines.local import LocalEngine
    from pipelines.ingest.engines.ray_engine import RayEngine
    from pipelines.ingest.ingestor import Ingestor
    from pipelines.jobs.documents import DocumentJobs
    from pipelines.store.sql_audit import SqlAuditStore, SqliteAuditStore, open_audit_store, recent_outcomes
    from prompts.registry import FilePromptRegistry
    from retrieval.bm25_index import Bm25Index
    from retrieval.deferred_embedder import DeferredEmbedder
    from retrieval.embedder import SentenceTransformerEmbedder
    from retrieval.faiss_index import FaissVectorIndex
    from retrieval.graph import GraphRetriever
    from retrieval.onnx_embedder import OnnxEmbedder
    from retrieval.rerank import LLMReranker

__all__ = [
    "AnswerService",
    "AutoRollback",
    "Bm25Index",
    "DeferredEmbedder",
    "DocumentJobs",
    "EntityLinker",
    "FaissVectorIndex",
    "FilePromptRegistry",
    "GraphContextBuilder",
    "GraphRetriever",
    "Ingestor",
    "LLMExtractor",
    "LLMReranker",
    "LocalEngine",
    "ModelClient",
    "Neo4jGraphStore",
    "NetworkxGraphStore",
    "OnnxEmbedder",
    "RagasGate",
    "RayEngine",
    "SentenceTransformerEmbedder",
    "SqlAuditStore",
    "SqliteAuditStore",
    "Tracing",
    "build_gate",
    "graph_rows",
    "load_golden",
    "open_audit_store",
    "open_graph_store",
    "push",
    "recent_outcomes",
    "run_golden",
    "to_cypher",
    "to_json",
    "write_graphml",
]

#: Each name -> the module that defines it, and what importing that module costs.
HOMES: MappingProxyType[str, str] = MappingProxyType(
    {
        "AnswerService": "pipelines.answer.service",  # the answer workflow: openai, SQLAlchemy, SciPy
        "AutoRollback": "pipelines.answer.rollback",  # SQLAlchemy
        "Bm25Index": "retrieval.bm25_index",  # bm25s (SciPy)
        "DeferredEmbedder": "retrieval.deferred_embedder",  # NumPy
        "DocumentJobs": "pipelines.jobs.documents",  # the store and the ingestor
        "EntityLinker": "kg.linking",  # SciPy, RapidFuzz
        "FaissVectorIndex": "retrieval.faiss_index",  # FAISS
        "FilePromptRegistry": "prompts.registry",  # Jinja2, PyYAML, RapidFuzz (guardrails)
        "GraphContextBuilder": "kg.graph_context",  # SciPy
        "GraphRetriever": "retrieval.graph",  # SciPy
        "Ingestor": "pipelines.ingest.ingestor",  # the store
        "LLMExtractor": "kg.llm_extractor",  # openai
        "LLMReranker": "retrieval.rerank",  # openai
        "LocalEngine": "pipelines.ingest.engines.local",  # NumPy
        "ModelClient": "core.llm",  # openai
        "Neo4jGraphStore": "kg.neo4j_store",  # the neo4j driver (which imports pandas)
        "NetworkxGraphStore": "kg.networkx_store",  # networkx
        "OnnxEmbedder": "retrieval.onnx_embedder",  # NumPy; ONNX Runtime when built (torch only to export the model)
        "RagasGate": "evals.gate.ragas_gate",  # Ragas (with LangChain, datasets and pandas)
        "RayEngine": "pipelines.ingest.engines.ray_engine",  # NumPy; Ray when it runs
        "SentenceTransformerEmbedder": "retrieval.embedder",  # NumPy; torch and the model when built
        "SqlAuditStore": "pipelines.store.sql_audit",  # SQLAlchemy
        "SqliteAuditStore": "pipelines.store.sql_audit",  # SQLAlchemy
        "Tracing": "core.tracing",  # the OpenTelemetry SDK and its OTLP exporter (protobuf)
        "build_gate": "evals.gate.factory",  # openai (Ragas only through the judge factory, lazy.RagasGate)
        "graph_rows": "kg.export",  # networkx
        "load_golden": "pipelines.answer.golden",  # the answer workflow
        "open_audit_store": "pipelines.store.sql_audit",
        "open_graph_store": "kg.factory",  # the neo4j driver
        "push": "kg.export",
        "recent_outcomes": "pipelines.store.sql_audit",
        "run_golden": "pipelines.answer.golden",
        "to_cypher": "kg.export",
        "to_json": "kg.export",
        "write_graphml": "kg.export",
    }
)


def __getattr__(name: str) -> Any:
    """``lazy.NAME``: import the module that defines ``NAME`` (once; Python keeps it) and return ``NAME``."""
    home = HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
