"""The ONNX Runtime embedder: same vectors as the PyTorch embedder, a cached export, clear errors on bad models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigurationError, InputError
from core.settings import EmbeddingSettings, Settings
from pipelines.compose.models import load_embedder
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.model_files import default_model_path
from retrieval.onnx_embedder import OnnxEmbedder

TEXTS = [
    "Who founded Northwind Robotics?",
    "x",
    "Every full-time employee receives 28 days of paid annual leave, and part-time staff a pro-rata share. " * 30,
    "The finance team approves expenses above 500 euros.",
    "",
]


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(onnx_cache: Path) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=onnx_cache)


def test_vectors_equal_the_pytorch_embedders(
    onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    # Mixed lengths (one text far beyond the 256-token limit, one empty) in one batch: order is kept and the long
    # text is truncated exactly as sentence-transformers truncates it.
    expected = embedder.embed(TEXTS)
    got = onnx_embedder.embed(TEXTS)
    assert got.shape == (len(TEXTS), 384)
    assert got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (expected * got).sum(axis=1)
    assert cosines.min() > 0.9999, cosines
    assert onnx_embedder.model_name == embedder.model_name
    assert onnx_embedder.dimension == embedder.dimension


def test_batches_smaller_than_the_input_give_the_same_vectors(onnx_cache: Path, onnx_embedder: OnnxEmbedder) -> None:
    small_batches = OnnxEmbedder(cache_dir=onnx_cache, batch_size=2)
    np.testing.assert_allclose(small_batches.embed(TEXTS), onnx_embedder.embed(TEXTS), atol=1e-5)


def test_inputs_are_exactly_the_transformers_tokenizers(
    onnx_embedder: OnnxEmbedder, embedder: SentenceTransformerEmbedder
) -> None:
    # The ONNX embedder tokenizes with the `tokenizers` library alone; its inputs (one text, and a batch padded to
    # its longest text) must be exactly those of the transformers tokenizer the model was exported with, truncation
    # of the long text at the model's 256 tokens included, and one text's vector that of the same text in a batch.
    texts = [*TEXTS, "  spaces  around ", "Ünïcödé naïve café — 東京 🚀", "Who was born in Varnholm?\nAnd where?"]
    wrapper = embedder.model.tokenizer
    assert onnx_embedder.max_length == embedder.model.max_seq_length == 256
    for batch in [[text] for text in texts] + [texts, texts[:2]]:
        expected = wrapper(batch, padding=True, truncation=True, max_length=256, return_tensors="np")
        got = onnx_embedder._feeds(batch)
        assert list(got) == list(expected.keys()) == onnx_embedder._input_names
        for name, values in got.items():
            assert values.dtype == np.int64
            assert values.tolist() == expected[name].tolist(), (batch, name)
    assert onnx_embedder._feeds([TEXTS[2]])["input_ids"].shape == (1, 256)
    one_by_one = np.vstack([onnx_embedder.embed([text]) for text in texts])
    np.testing.assert_allclose(one_by_one, onnx_embedder.embed(texts), atol=1e-5)
    assert ((one_by_one * embedder.embed(texts)).sum(axis=1) > 0.9999).all()


def test_the_export_is_cached_and_reused(onnx_cache: Path, onnx_embedder: OnnxEmbedder) -> None:
    assert onnx_embedder.onnx_path.parent == onnx_cache
    assert onnx_embedder.onnx_path.is_file() and onnx_embedder.onnx_path.with_suffix(".json").is_file()
    again = OnnxEmbedder(cache_dir=onnx_cache)
    assert not again.exported
    assert again.onnx_path == onnx_embedder.onnx_path
    assert (again.model_name, again.dimension, again.max_length) == ("all-MiniLM-L6-v2", 384, 256)
    # The same inputs to the same graph: the very same vectors as the process that exported it.
    np.testing.assert_array_equal(again.embed(TEXTS), onnx_embedder.embed(TEXTS))
    np.testing.assert_array_equal(again.embed(TEXTS[:1]), onnx_embedder.embed(TEXTS[:1]))


def test_a_cached_export_loads_without_torch_or_transformers(onnx_cache: Path, onnx_embedder: OnnxEmbedder) -> None:
    # A later process runs the cached export with ONNX Runtime and `tokenizers` only: seconds less start-up.
    code = (
        "import sys, json; from pathlib import Path; from retrieval.onnx_embedder import OnnxEmbedder; "
        f"e = OnnxEmbedder(cache_dir=Path({str(onnx_cache)!r})); v = e.embed(['Who founded Northwind Robotics?']); "
        "print(json.dumps([e.exported, v[0].tolist(), "
        "[m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=_env())
    exported, vector, heavy = json.loads(out.stdout.splitlines()[-1])
    assert exported is False and heavy == []
    np.testing.assert_array_equal(np.asarray(vector, dtype=np.float32), onnx_embedder.embed([TEXTS[0]])[0])


@pytest.mark.parametrize("damage", ["missing", "garbage", "old format"])
def test_a_damaged_export_manifest_exports_again(tmp_path: Path, onnx_embedder: OnnxEmbedder, damage: str) -> None:
    first = OnnxEmbedder(cache_dir=tmp_path)
    manifest = first.onnx_path.with_suffix(".json")
    if damage == "missing":  # e.g. a crash between the two files: the manifest is written last
        manifest.unlink()
    elif damage == "garbage":
        manifest.write_text("{not json")
    else:
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 1}))
    second = OnnxEmbedder(cache_dir=tmp_path)
    assert second.exported and OnnxEmbedder(cache_dir=tmp_path).exported is False
    np.testing.assert_allclose(second.embed(TEXTS[:2]), onnx_embedder.embed(TEXTS[:2]), atol=1e-5)


def test_an_unreadable_cached_export_is_exported_again(tmp_path: Path, onnx_embedder: OnnxEmbedder) -> None:
    first = OnnxEmbedder(cache_dir=tmp_path)
    first.onnx_path.write_bytes(b"not an onnx model")  # e.g. a disk that lost the file's blocks
    second = OnnxEmbedder(cache_dir=tmp_path)
    assert second.exported
    np.testing.assert_allclose(second.embed(TEXTS[:2]), onnx_embedder.embed(TEXTS[:2]), atol=1e-5)
    assert not list(tmp_path.glob(".*.tmp")), "no temporary export files left behind"


def test_bad_input_is_rejected(onnx_embedder: OnnxEmbedder) -> None:
    with pytest.raises(InputError, match="sequence of texts"):
        onnx_embedder.embed("not a list")
    assert onnx_embedder.embed([]).shape == (0, 384)


def _env() -> dict[str, str]:
    root = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}


def _model_copy(target: Path) -> Path:
    """A copy of the bundled model whose small files can be edited (the weights are linked, not copied)."""
    source = default_model_path()
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".safetensors":
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.symlink_to(path)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, destination)
    return target


def test_a_pooling_the_export_does_not_support_names_the_torch_backend(tmp_path: Path) -> None:
    model = _model_copy(tmp_path / "model")
    pooling = model / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    for key in list(config):
        if key.startswith("pooling_mode"):
            config[key] = False
    config["pooling_mode_weightedmean_tokens"] = True
    pooling.write_text(json.dumps(config))
    with pytest.raises(ConfigurationError, match="pools with") as caught:
        OnnxEmbedder(model_path=model, cache_dir=tmp_path / "cache")
    assert "KGRAG_EMBEDDING__BACKEND=torch" in (caught.value.hint or "")


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    onnx = load_embedder(Settings(embedding=EmbeddingSettings(onnx_cache_dir=tmp_path)))
    assert isinstance(onnx, OnnxEmbedder)
    torch = load_embedder(Settings(embedding=EmbeddingSettings(backend="torch")))
    assert isinstance(torch, SentenceTransformerEmbedder)
    with pytest.raises(ConfigurationError, match="CPU only"):
        load_embedder(Settings(embedding=EmbeddingSettings(device="cuda", onnx_cache_dir=tmp_path)))


def test_the_int8_query_encoder_is_close_faster_to_load_again_and_finds_the_same_passages(
    onnx_cache: Path, onnx_embedder: OnnxEmbedder
) -> None:
    questions = ["Who founded Northwind Robotics?", "How many days of annual leave do employees get?"]
    passages = [
        "Northwind Robotics was founded in 2014 by Amara Okafor in Rotterdam.",
        "Every full-time employee receives 28 days of paid annual leave.",
        "The finance team approves expenses above 500 euros.",
        "Kestrel is an indoor drone that counts inventory on high shelves.",
    ]
    encoder = onnx_embedder.query_encoder()
    assert encoder is onnx_embedder.query_encoder()  # built once, shared
    assert encoder.onnx_path.name.endswith("-int8q.onnx") and encoder.onnx_path.is_file()
    assert encoder.onnx_path.stat().st_size < onnx_embedder.onnx_path.stat().st_size / 2  # int8, not float32 weights
    assert (encoder.model_name, encoder.dimension) == (onnx_embedder.model_name, onnx_embedder.dimension)
    full, quantized = onnx_embedder.embed(questions), encoder.embed(questions)
    assert quantized.shape == full.shape and quantized.dtype == np.float32
    assert np.allclose(np.linalg.norm(quantized, axis=1), 1.0, atol=1e-4)
    cosines = (full * quantized).sum(axis=1)
    assert cosines.min() > 0.97 and not np.allclose(full, quantized, atol=1e-4)  # close, but really quantized
    passage_vectors = onnx_embedder.embed(passages)
    assert ((quantized @ passage_vectors.T).argmax(axis=1) == [0, 1]).all()  # full-precision passages still match
    # A second process (a new embedder on the same cache) reuses the quantized file instead of writing it again.
    written = encoder.onnx_path.stat().st_mtime_ns
    again = OnnxEmbedder(cache_dir=onnx_cache).query_encoder()
    assert again.onnx_path == encoder.onnx_path and again.onnx_path.stat().st_mtime_ns == written
    assert np.allclose(again.embed(questions), quantized, atol=1e-6)


def test_retrievers_embed_questions_with_the_int8_encoder_unless_switched_off(tmp_path: Path) -> None:
    from pipelines.compose.ingest import build_ingestor
    from pipelines.compose.retrieval import build_retriever
    from pipelines.compose.stores import open_store

    settings = Settings(store_dir=tmp_path / "store", embedding=EmbeddingSettings(onnx_cache_dir=tmp_path / "onnx"))
    embedder = load_embedder(settings)
    assert isinstance(embedder, OnnxEmbedder)
    store = open_store(settings, embedder, create=True)
    build_ingestor(settings, store, embedder).ingest([Path(__file__).resolve().parents[2] / "data"])
    on = build_retriever(settings, store, embedder, "dense")
    off_settings = settings.model_copy(
        update={"embedding": settings.embedding.model_copy(update={"quantize_queries": False})}
    )
    off = build_retriever(off_settings, store, embedder, "dense")
    assert on.embedder is embedder.query_encoder() and off.embedder is embedder
    question = "How many days of paid annual leave does a full-time employee get?"
    quantized_hits, full_hits = on.retrieve(question, top_k=3), off.retrieve(question, top_k=3)
    assert [h.chunk.id for h in quantized_hits] == [h.chunk.id for h in full_hits]
    assert any("28 days" in h.chunk.text for h in quantized_hits)
    assert [h.score for h in quantized_hits] != [h.score for h in full_hits]  # the question vectors really differ
