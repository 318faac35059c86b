"""The real all-MiniLM-L6-v2 embedder: shape, normalisation, semantics and configuration errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigurationError, InputError
from retrieval.embedder import SentenceTransformerEmbedder


def test_identity_and_dimension(embedder: SentenceTransformerEmbedder) -> None:
    assert embedder.model_name == "all-MiniLM-L6-v2"
    assert embedder.dimension == 384


def test_embeddings_are_float32_and_normalised(embedder: SentenceTransformerEmbedder) -> None:
    texts = ["A short sentence.", "Another, somewhat longer sentence about shipping times and refunds.", "x"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Distinct texts give distinct vectors; the same text gives the same vector.
    assert not np.allclose(vectors[0], vectors[1])
    np.testing.assert_allclose(embedder.embed(["A short sentence."])[0], vectors[0], atol=1e-6)


def test_paraphrase_is_closer_than_unrelated_sentence(embedder: SentenceTransformerEmbedder) -> None:
    anchor, paraphrase, unrelated = embedder.embed(
        [
            "The cat is sitting on the mat.",
            "A kitten sits on a rug.",
            "Quarterly revenue grew by ten percent compared to last year.",
        ]
    )
    close = float(anchor @ paraphrase)
    far = float(anchor @ unrelated)
    assert close > far + 0.3, (close, far)


def test_empty_input_gives_empty_matrix(embedder: SentenceTransformerEmbedder) -> None:
    vectors = embedder.embed([])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_bare_string_is_rejected(embedder: SentenceTransformerEmbedder) -> None:
    with pytest.raises(InputError, match="sequence of texts"):
        embedder.embed("not a list")


def test_missing_model_path_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigurationError, match="no-such-model"):
        SentenceTransformerEmbedder(model_path=missing)


def test_directory_without_a_model_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ConfigurationError, match="not a sentence-transformers model"):
        SentenceTransformerEmbedder(model_path=tmp_path)


def test_broken_model_files_are_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{ this is not json")
    with pytest.raises(ConfigurationError, match="could not load the embedding model"):
        SentenceTransformerEmbedder(model_path=tmp_path)


def test_concurrent_calls_agree_with_sequential_ones(embedder: SentenceTransformerEmbedder) -> None:
    texts = [f"Question number {i} about refunds and shipping." for i in range(8)]
    expected = embedder.embed(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda t: embedder.embed([t])[0], texts))
    np.testing.assert_allclose(np.stack(results), expected, atol=1e-5)
