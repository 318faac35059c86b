"""The Ray engine (``kgrag ingest --engine ray``): parsing and chunking as Ray Data tasks, embedding on a Ray Data
actor pool that loads the model once per actor.

Only the data-parallel work leaves the driver: ``ray.data.from_items`` of the changed files -> ``map_batches`` of
:func:`~pipelines.ingest.engines.ray_tasks.parse_and_chunk` (tasks); after the driver's chunk-level diff against the
store,
``ray.data.from_items`` of the new chunks' texts -> ``map_batches`` of
:class:`~pipelines.ingest.engines.ray_tasks.EmbedActor`
with ``ActorPoolStrategy``. Results come back to the driver, which writes the snapshot, vectors, BM25 and graph and
runs extraction exactly as with the local engine. Sources must be readable at the same path on every node.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import IngestEngineError, KgragError
from core.settings import ChunkingSettings, EmbeddingSettings, RayEngineSettings
from pipelines.ingest.engines.base import EngineName, ParsedFile
from pipelines.ingest.engines.ray_runtime import RayRuntime
from pipelines.ingest.engines.ray_tasks import EmbedActor, parse_and_chunk
from pipelines.ingest.progress import ProgressReporter


class RayEngine:
    """Runs parse + chunk and embedding on Ray Data; starts (or joins) Ray on first use, :meth:`close` ends it."""

    name: EngineName = "ray"

    def __init__(
        self,
        settings: RayEngineSettings,
        embedding: EmbeddingSettings,
        dimension: int,
        runtime: RayRuntime | None = None,
    ) -> None:
        self.settings = settings
        self.embedding = embedding
        self.dimension = dimension
        self.runtime = runtime or RayRuntime(settings.address, settings.num_cpus, settings.object_store_mb)

    def parse(
        self, files: Sequence[tuple[Path, str]], chunking: ChunkingSettings, progress: ProgressReporter
    ) -> Iterator[ParsedFile]:
        files = list(files)
        if not files:
            return
        ray = self.runtime.start()
        items = [{"i": i, "path": str(path), "file_id": file_id} for i, (path, file_id) in enumerate(files)]
        per_task = self.settings.parse_batch
        results: dict[int, tuple[Any, dict[str, Any]]] = {}
        with _ray_errors("parsing"):
            dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / per_task)).map_batches(
                parse_and_chunk,
                batch_size=per_task,
                fn_kwargs={"max_chars": chunking.max_chars, "min_chars": chunking.min_chars},
                num_cpus=1,
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for i, blob in zip(batch["i"], batch["result"], strict=True):
                    results[int(i)] = pickle.loads(blob)
                progress.advance("files", len(batch["i"]))
        _check_complete("parse", len(results), len(files))
        for i, (path, file_id) in enumerate(files):
            parsed, chunks = results.pop(i)
            yield ParsedFile(path, file_id, parsed, chunks)

    def embed(self, texts: Sequence[str], progress: ProgressReporter) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        ray = self.runtime.start()
        s, e = self.settings, self.embedding
        items = [{"i": i, "text": text} for i, text in enumerate(texts)]
        filled = 0
        with _ray_errors("embedding"):
            dataset = ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / s.embed_batch)).map_batches(
                EmbedActor,
                batch_size=s.embed_batch,
                compute=ray.data.ActorPoolStrategy(size=s.embed_actors),
                num_cpus=s.embed_actor_cpus,
                fn_constructor_kwargs={
                    "model_path": str(e.model_path) if e.model_path else None,
                    "batch_size": e.batch_size,
                    "device": e.device,
                    "num_threads": s.embed_threads,
                },
            )
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                vectors = np.asarray(batch["vector"], dtype=np.float32)
                if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
                    raise IngestEngineError(
                        f"the Ray embedding actors returned vectors of shape {vectors.shape}, expected "
                        f"(n, {self.dimension})",
                        hint="workers must load the store's embedding model (KGRAG_EMBEDDING__MODEL_PATH)",
                    )
                out[batch["i"]] = vectors
                filled += len(batch["i"])
                progress.advance("embeddings", len(batch["i"]))
        _check_complete("embed", filled, len(texts))
        return out

    def close(self) -> None:
        self.runtime.shutdown()


@contextmanager
def _ray_errors(stage: str) -> Iterator[None]:
    """Turn a Ray failure into an :class:`IngestEngineError` naming the stage; kgrag's own errors pass through."""
    try:
        yield
    except KgragError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise IngestEngineError(
            f"Ray {stage} failed: {first}",
            hint="see the worker logs under /tmp/ray/session_latest/logs, or re-run with --engine local",
        ) from exc


def _check_complete(stage: str, got: int, expected: int) -> None:
    if got != expected:
        raise IngestEngineError(f"Ray {stage} returned {got} results for {expected} inputs")
