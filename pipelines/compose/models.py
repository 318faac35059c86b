"""Composition root, models: the embedder, the prompt registry and the model endpoint check, from typed settings."""

from __future__ import annotations

from core.errors import ConfigurationError, ModelUnavailableError
from core.llm import ModelClient
from core.settings import Settings
from prompts.registry import FilePromptRegistry
from retrieval.base import Embedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.onnx_embedder import OnnxEmbedder


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
