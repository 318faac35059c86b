"""The deferred embedder loads its model on the first texts only; the model's files give its name and dimension."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigurationError
from retrieval.base import Embedder
from retrieval.deferred_embedder import DeferredEmbedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.model_files import default_model_path, describe_model


def test_nothing_to_embed_loads_nothing_and_texts_load_once(embedder: SentenceTransformerEmbedder) -> None:
    loads: list[int] = []

    def load() -> Embedder:
        loads.append(1)
        return embedder

    deferred = DeferredEmbedder(embedder.model_name, embedder.dimension, load)
    empty = deferred.embed([])
    assert empty.shape == (0, embedder.dimension) and empty.dtype == np.float32
    assert not loads and not deferred.loaded
    vectors = deferred.embed(["Northwind was founded in Oslo.", "Ada reports to Grace."])
    np.testing.assert_array_equal(vectors, embedder.embed(["Northwind was founded in Oslo.", "Ada reports to Grace."]))
    deferred.embed(["again"])
    assert loads == [1] and deferred.loaded and deferred.get() is embedder


def test_a_loaded_model_unlike_its_description_is_a_configuration_error(embedder: SentenceTransformerEmbedder) -> None:
    deferred = DeferredEmbedder(embedder.model_name, embedder.dimension + 1, lambda: embedder)
    with pytest.raises(ConfigurationError, match="not 'all-MiniLM-L6-v2' \\(385-d\\)"):
        deferred.embed(["text"])
    assert not deferred.loaded


def test_describing_the_bundled_model_matches_loading_it(embedder: SentenceTransformerEmbedder) -> None:
    assert describe_model() == (embedder.model_name, embedder.dimension) == ("all-MiniLM-L6-v2", 384)


def _model_dir(root: Path, modules: list[dict[str, str]], configs: dict[str, object]) -> Path:
    root.mkdir()
    (root / "modules.json").write_text(json.dumps(modules), "utf-8")
    for sub, config in configs.items():
        (root / sub).mkdir(exist_ok=True)
        (root / sub / "config.json").write_text(json.dumps(config), "utf-8")
    return root


def test_a_dense_head_gives_the_dimension_and_unclear_files_give_none(tmp_path: Path) -> None:
    st = "sentence_transformers.models."
    dense = _model_dir(
        tmp_path / "dense",
        [
            {"path": "", "type": st + "Transformer"},
            {"path": "1_P", "type": st + "Pooling"},
            {"path": "2_D", "type": st + "Dense"},
        ],
        {"1_P": {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}, "2_D": {"out_features": 256}},
    )
    assert describe_model(dense) == ("dense", 256)
    two_modes = _model_dir(
        tmp_path / "two-modes",
        [{"path": "", "type": st + "Transformer"}, {"path": "1_P", "type": st + "Pooling"}],
        {"1_P": {"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": True}},
    )
    assert describe_model(two_modes) == ("two-modes", None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "modules.json").write_text("{not json", "utf-8")
    assert describe_model(broken) == ("broken", None)
    assert describe_model(tmp_path / "missing") == ("missing", None)
    assert default_model_path().is_dir()
