"""Composition root, models: the embedder, the prompt registry and the model endpoint check, from typed settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.errors import ConfigurationError, ModelUnavailableError
from core.settings import Settings
from pipelines.compose import lazy
from retrieval.base import Embedder
from retrieval.model_files import describe_model

if TYPE_CHECKING:
    from prompts.registry import FilePromptRegistry


def load_embedder(settings: Settings) -> Embedder:
    """The embedder the settings choose: ONNX Runtime (default) or PyTorch, same model, same vectors."""
    config = settings.embedding
    if config.backend == "onnx":
        if config.device != "cpu":
            raise ConfigurationError(
                f"the ONNX embedding backend runs on the CPU only, but KGRAG_EMBEDDING__DEVICE={config.device!r}",
                hint="set KGRAG_EMBEDDING__BACKEND=torch to embed on that device",
            )
        return lazy.OnnxEmbedder(
            model_path=config.model_path,
            batch_size=config.batch_size,
            num_threads=config.num_threads,
            cache_dir=config.onnx_cache_dir,
        )
    return lazy.SentenceTransformerEmbedder(
        model_path=config.model_path,
        batch_size=config.batch_size,
        device=config.device,
        num_threads=config.num_threads,
    )


def deferred_embedder(settings: Settings) -> Embedder:
    """The embedder of :func:`load_embedder`, loaded only when a run has texts to embed (a no-change ingestion or a
    delete has none). Loaded now when the model's files do not state its dimension."""
    name, dimension = describe_model(settings.embedding.model_path)
    if dimension is None:
        return load_embedder(settings)
    return lazy.DeferredEmbedder(name, dimension, lambda: load_embedder(settings))


def prompt_registry(settings: Settings) -> FilePromptRegistry:
    return lazy.FilePromptRegistry(settings.prompts.directory)


def check_model(settings: Settings) -> list[str]:
    """Models served at the configured endpoint; raises ModelUnavailableError with the fix if unreachable."""
    client = lazy.ModelClient.from_settings(settings)
    served = client.served_models()
    if served and settings.llm_model not in served:
        raise ModelUnavailableError(
            f"model {settings.llm_model!r} is not served at {settings.llm_base_url} (it serves: {', '.join(served)})",
            hint="set KGRAG_LLM_MODEL to one of those, or start the right model with `kgrag model serve`",
        )
    return served
