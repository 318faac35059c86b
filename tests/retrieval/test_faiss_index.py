"""FaissVectorIndex: add/search/remove, persistence round trip, corrupt files and dimension checks."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np
import pytest

from core.errors import ConfigurationError, InputError, StoreCorruptError
from retrieval.faiss_index import FaissVectorIndex, VectorPrecision, ivf_lists

DIM = 16


@pytest.fixture(params=["float32", "float16"])
def precision(request: pytest.FixtureRequest) -> VectorPrecision:
    """Every behaviour test runs on both storage precisions."""
    return request.param  # type: ignore[no-any-return]


def tolerance(precision: VectorPrecision) -> float:
    return 1e-5 if precision == "float32" else 2e-3


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_empty_index_search_returns_nothing(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    assert len(index) == 0
    assert index.search(unit_vectors(rng, 1)[0], 5) == []


def test_add_and_search_finds_each_vector_first(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    vectors = unit_vectors(rng, 20)
    ids = list(range(100, 120))
    index.add(ids, vectors)
    assert len(index) == 20
    for vid, vector in zip(ids, vectors, strict=True):
        hits = index.search(vector, 3)
        assert hits[0][0] == vid
        assert hits[0][1] == pytest.approx(1.0, abs=tolerance(precision))
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    # Scores are inner products.
    hits = index.search(vectors[0], 20)
    expected = {vid: float(vectors[0] @ v) for vid, v in zip(ids, vectors, strict=True)}
    for vid, score in hits:
        assert score == pytest.approx(expected[vid], abs=tolerance(precision))


def test_k_larger_than_index_returns_all(tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    index.add([1, 2, 3], unit_vectors(rng, 3))
    hits = index.search(unit_vectors(rng, 1)[0], 50)
    assert sorted(vid for vid, _ in hits) == [1, 2, 3]


def test_remove_really_removes(tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    vectors = unit_vectors(rng, 5)
    index.add([10, 11, 12, 13, 14], vectors)
    assert index.remove([11, 13, 999]) == 2
    assert len(index) == 3
    hits = index.search(vectors[1], 10)
    assert {vid for vid, _ in hits} == {10, 12, 14}
    assert index.remove([11]) == 0
    assert index.remove([]) == 0
    # A removed id can be added again (the chunk store never does, but the index allows it).
    index.add([11], vectors[1:2])
    assert index.search(vectors[1], 1)[0][0] == 11


def test_save_and_reload_round_trip(tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision) -> None:
    path = tmp_path / "store" / "vectors.faiss"
    index = FaissVectorIndex(path, DIM, precision=precision)
    vectors = unit_vectors(rng, 8)
    index.add(list(range(8)), vectors)
    index.remove([3])
    index.save()
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ["vectors.faiss"], "no temp files left behind"

    reloaded = FaissVectorIndex(path, DIM, precision=precision)
    assert len(reloaded) == 7
    assert 3 not in reloaded and 4 in reloaded
    for i in (0, 4, 7):
        assert reloaded.search(vectors[i], 2) == index.search(vectors[i], 2)
    assert {vid for vid, _ in reloaded.search(vectors[3], 10)} == {0, 1, 2, 4, 5, 6, 7}

    # Saving again replaces the file with the new state.
    reloaded.remove([0])
    reloaded.save()
    assert len(FaissVectorIndex(path, DIM, precision=precision)) == 6


def test_unsaved_changes_are_not_persisted(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    path = tmp_path / "vectors.faiss"
    index = FaissVectorIndex(path, DIM, precision=precision)
    index.add([1], unit_vectors(rng, 1))
    index.save()
    index.add([2], unit_vectors(rng, 1))
    assert len(FaissVectorIndex(path, DIM, precision=precision)) == 1


def test_corrupt_file_raises_store_corrupt_naming_the_file(tmp_path: Path, precision: VectorPrecision) -> None:
    path = tmp_path / "vectors.faiss"
    path.write_bytes(b"definitely not a faiss index")
    with pytest.raises(StoreCorruptError, match="vectors.faiss"):
        FaissVectorIndex(path, DIM, precision=precision)


def test_dimension_mismatch_on_add_and_search(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    with pytest.raises(InputError, match="dimension"):
        index.add([1], unit_vectors(rng, 1, dim=DIM + 1))
    with pytest.raises(InputError, match="2 ids for 3 vectors"):
        index.add([1, 2], unit_vectors(rng, 3))
    with pytest.raises(InputError, match="dimension"):
        index.search(np.ones(DIM + 1, dtype=np.float32), 1)
    assert len(index) == 0


def test_duplicate_ids_are_rejected(tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision) -> None:
    index = FaissVectorIndex(tmp_path / "vectors.faiss", DIM, precision=precision)
    index.add([1, 2], unit_vectors(rng, 2))
    with pytest.raises(InputError, match="already in the index"):
        index.add([2, 3], unit_vectors(rng, 2))
    with pytest.raises(InputError, match="duplicate"):
        index.add([4, 4], unit_vectors(rng, 2))
    assert len(index) == 2


def test_loading_with_another_dimension_is_a_configuration_error(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    path = tmp_path / "vectors.faiss"
    index = FaissVectorIndex(path, DIM, precision=precision)
    index.add([1], unit_vectors(rng, 1))
    index.save()
    with pytest.raises(ConfigurationError, match="dimension 16"):
        FaissVectorIndex(path, 384, precision=precision)


def test_a_reloaded_index_keeps_the_precision_it_was_written_with(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "vectors.faiss"
    written = FaissVectorIndex(path, DIM, precision="float16")
    written.add([1, 2], unit_vectors(rng, 2))
    written.save()
    reloaded = FaissVectorIndex(path, DIM, precision="float32")
    assert reloaded.precision == "float16"
    assert path.stat().st_size < 2 * DIM * 4 + 1024  # two half-precision vectors plus the header, not float32


def test_float16_ranks_like_float32(tmp_path: Path, rng: np.random.Generator) -> None:
    vectors = unit_vectors(rng, 2000, dim=64)
    queries = unit_vectors(rng, 50, dim=64)
    exact = FaissVectorIndex(tmp_path / "a.faiss", 64, precision="float32")
    half = FaissVectorIndex(tmp_path / "b.faiss", 64, precision="float16")
    for index in (exact, half):
        index.add(list(range(2000)), vectors)
    overlap = [len({i for i, _ in exact.search(q, 10)} & {i for i, _ in half.search(q, 10)}) / 10 for q in queries]
    assert sum(overlap) / len(overlap) >= 0.95
    exact.save()
    half.save()
    sizes = (tmp_path / "a.faiss").stat().st_size, (tmp_path / "b.faiss").stat().st_size
    assert sizes[1] * 2 == pytest.approx(sizes[0], rel=0.1), sizes


def test_an_index_of_another_kind_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    faiss.write_index(faiss.IndexIDMap2(faiss.IndexFlatL2(DIM)), str(path))  # L2 distances, not inner products
    with pytest.raises(StoreCorruptError, match="flat or inverted-file inner-product index"):
        FaissVectorIndex(path, DIM)


def clustered_vectors(rng: np.random.Generator, n: int, centres: int = 40, dim: int = DIM) -> np.ndarray:
    """Unit vectors around ``centres`` random directions (real embeddings cluster; uniform noise does not)."""
    middle = unit_vectors(rng, centres, dim)
    x = middle[rng.integers(0, centres, size=n)] + 0.35 * rng.standard_normal((n, dim)).astype(np.float32) / dim**0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_saving_a_large_index_partitions_it_and_every_vector_is_still_found(
    tmp_path: Path, rng: np.random.Generator, precision: VectorPrecision
) -> None:
    path = tmp_path / "vectors.faiss"
    index = FaissVectorIndex(path, DIM, precision=precision, ivf_min_vectors=1000, ivf_nprobe=4)
    vectors = clustered_vectors(rng, 1500)
    ids = list(range(10_000, 11_500))
    index.add(ids[:999], vectors[:999])
    index.save()
    assert not index.partitioned  # below the threshold: exhaustive
    index.add(ids[999:], vectors[999:])
    index.save()
    assert index.partitioned and index.lists == ivf_lists(1500)
    reloaded = FaissVectorIndex(path, DIM, precision="float32", ivf_min_vectors=1000, ivf_nprobe=4)
    assert reloaded.partitioned and reloaded.precision == precision and len(reloaded) == 1500
    assert reloaded.ids() == set(ids)
    for vid, vector in list(zip(ids, vectors, strict=True))[::50]:
        best, score = reloaded.search(vector, 3)[0]
        assert best == vid and score == pytest.approx(1.0, abs=tolerance(precision))
    assert reloaded.remove([ids[0], ids[1], 999_999]) == 2
    assert ids[0] not in reloaded and ids[0] not in {i for i, _ in reloaded.search(vectors[0], 10)}
    reloaded.add([ids[0]], vectors[:1])
    assert reloaded.search(vectors[0], 1)[0][0] == ids[0]
    with pytest.raises(InputError, match="already in the index"):
        reloaded.add([ids[2]], vectors[2:3])


def test_a_partitioned_index_ranks_like_an_exhaustive_one(tmp_path: Path, rng: np.random.Generator) -> None:
    vectors = clustered_vectors(rng, 4000, dim=32)
    queries = clustered_vectors(rng, 50, dim=32)
    exact = FaissVectorIndex(tmp_path / "a.faiss", 32)
    approximate = FaissVectorIndex(tmp_path / "b.faiss", 32, ivf_min_vectors=1000, ivf_nprobe=16)
    for index in (exact, approximate):
        index.add(list(range(4000)), vectors)
        index.save()
    assert approximate.partitioned and not exact.partitioned
    overlap = [
        len({i for i, _ in exact.search(q, 10)} & {i for i, _ in approximate.search(q, 10)}) / 10 for q in queries
    ]
    assert sum(overlap) / len(overlap) >= 0.9
    # One list probed finds fewer of the exact neighbours than sixteen: nprobe is what trades recall for speed.
    narrow = FaissVectorIndex(tmp_path / "b.faiss", 32, ivf_min_vectors=1000, ivf_nprobe=1)
    narrow_overlap = [
        len({i for i, _ in exact.search(q, 10)} & {i for i, _ in narrow.search(q, 10)}) / 10 for q in queries
    ]
    assert sum(narrow_overlap) < sum(overlap)


def test_a_partitioned_index_is_retrained_as_it_grows_and_unpartitioned_as_it_shrinks(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "vectors.faiss"
    index = FaissVectorIndex(path, DIM, ivf_min_vectors=500)
    vectors = clustered_vectors(rng, 3000)
    index.add(list(range(600)), vectors[:600])
    index.save()
    first = index.lists
    assert first == ivf_lists(600)
    index.add(list(range(600, 1000)), vectors[600:1000])
    index.save()
    assert index.lists == first  # grown, but not enough to double the lists
    index.add(list(range(1000, 3000)), vectors[1000:])
    index.save()
    assert index.lists == ivf_lists(3000) >= 2 * first
    assert index.search(vectors[2999], 1)[0][0] == 2999
    index.remove(list(range(2740)))
    index.save()
    assert index.partitioned  # 260 vectors: still at least half the threshold
    index.remove(list(range(2740, 2800)))
    index.save()
    assert not index.partitioned and len(index) == 200 and index.ids() == set(range(2800, 3000))
    assert index.search(vectors[2900], 1)[0][0] == 2900


def test_switching_partitioning_off_makes_a_partitioned_file_exhaustive_again(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    path = tmp_path / "vectors.faiss"
    vectors = clustered_vectors(rng, 800)
    partitioned = FaissVectorIndex(path, DIM, precision="float16", ivf_min_vectors=500)
    partitioned.add(list(range(800)), vectors)
    partitioned.save()
    assert partitioned.partitioned
    off = FaissVectorIndex(path, DIM, ivf_min_vectors=0)
    assert off.partitioned  # as written, until saved
    off.save()
    again = FaissVectorIndex(path, DIM)
    assert not again.partitioned and again.precision == "float16" and again.ids() == set(range(800))
    assert again.search(vectors[5], 1)[0][0] == 5


def test_a_partitioned_index_of_another_metric_is_reported_as_corrupt(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "vectors.faiss"
    l2 = faiss.IndexIVFFlat(faiss.IndexFlatL2(DIM), DIM, 4, faiss.METRIC_L2)
    l2.train(unit_vectors(rng, 200))
    faiss.write_index(l2, str(path))
    with pytest.raises(StoreCorruptError, match="inverted-file inner-product index"):
        FaissVectorIndex(path, DIM)


def test_bad_partitioning_settings_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="ivf_nprobe"):
        FaissVectorIndex(tmp_path / "v.faiss", DIM, ivf_nprobe=0)
    with pytest.raises(ConfigurationError, match="ivf_min_vectors"):
        FaissVectorIndex(tmp_path / "v.faiss", DIM, ivf_min_vectors=-1)
