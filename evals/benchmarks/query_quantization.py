"""What an int8 query encoder would cost and buy: an experiment, not a product setting.

The default ONNX export of the embedding model is quantized with ONNX Runtime's dynamic quantization (int8 weights,
per channel); questions are embedded by it while the store's passage vectors stay as ingested (full precision), and
dense and graph recall@5 are compared, paired, with the full-precision query encoder on the same store, searched
exhaustively (so only the encoder differs). Query embedding p50 of both encoders is measured side by side::

    HF_HUB_OFFLINE=1 .venv/bin/python -m evals.benchmarks.query_quantization \
        --dataset ../shared/eval/musique --store /tmp/vector-index-100k

``--store`` is a store holding the dataset's corpus (for example the one ``vector_index`` builds); it is only read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.settings import load_settings
from evals.bench import CHUNK_POOL, load_questions
from evals.bench_metrics import bootstrap_ci, percentile, recall_at_k
from pipelines.factory import build_retriever, load_embedder, open_store
from retrieval.graph import GraphRetriever
from retrieval.onnx_embedder import OnnxEmbedder


class QuantizedQueryEncoder:
    """The ONNX embedder's tokenizer with an int8-quantized copy of its model (same model name and dimension)."""

    def __init__(self, full: OnnxEmbedder, directory: Path) -> None:
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic

        self.full = full
        self.model_name = full.model_name
        self.dimension = full.dimension
        target = directory / "query-int8.onnx"
        quantize_dynamic(str(full.onnx_path), str(target), weight_type=QuantType.QInt8, per_channel=True)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(target), options, providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        rows = []
        for text in texts:
            encoded = self.full._tokenizer(
                [text], truncation=True, max_length=self.full.max_length, return_tensors="np"
            )
            feeds = {name: np.asarray(encoded[name], dtype=np.int64) for name in self.full._input_names}
            rows.append(self.session.run(["sentence_embedding"], feeds)[0][0])
        return np.asarray(rows, dtype=np.float32).reshape(len(rows), self.dimension)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args()
    settings = load_settings(store_dir=args.store)
    full = load_embedder(settings)
    if not isinstance(full, OnnxEmbedder):
        raise SystemExit("needs the ONNX embedding backend (KGRAG_EMBEDDING__BACKEND=onnx, the default)")
    store = open_store(settings, full, create=False)
    store.vectors.ivf_nprobe = 1 << 30  # every list: an exhaustive search even on a partitioned index
    questions = load_questions(args.dataset)
    mapping = {chunk.id: chunk.document_id for chunk in store.chunks.iter_chunks()}
    with tempfile.TemporaryDirectory() as tmp:
        quantized = QuantizedQueryEncoder(full, Path(tmp))
        timings: dict[str, list[float]] = {"full precision": [], "int8": []}
        cosines = []
        for question in questions:
            t0 = time.perf_counter()
            a = full.embed([question.question])[0]
            t1 = time.perf_counter()
            b = quantized.embed([question.question])[0]
            timings["full precision"].append((t1 - t0) * 1000)
            timings["int8"].append((time.perf_counter() - t1) * 1000)
            cosines.append(float(a @ b))
        recall: dict[tuple[str, str], list[float]] = {}
        for name, encoder in (("full precision", full), ("int8", quantized)):
            for mode in ("dense", "graph"):
                retriever = build_retriever(settings, store, encoder, mode)
                if isinstance(retriever, GraphRetriever):
                    retriever.refresh()
                values = []
                for question in questions:
                    hits = retriever.retrieve(question.question, top_k=CHUNK_POOL)
                    ranked = list(dict.fromkeys(mapping.get(h.chunk.id, h.chunk.id) for h in hits))
                    values.append(recall_at_k(ranked, question.gold_passage_ids, 5))
                recall[(name, mode)] = values
    print(f"{len(questions)} questions; query vectors int8 vs full precision: cosine min {min(cosines):.4f}, "
          f"mean {np.mean(cosines):.4f}")  # fmt: skip
    for name, values in timings.items():
        print(f"query embedding p50 {name}: {percentile(values, 50):.2f} ms")
    print(f"speed-up: {percentile(timings['full precision'], 50) / percentile(timings['int8'], 50):.2f}x")
    for mode in ("dense", "graph"):
        delta = bootstrap_ci(
            [a - b for a, b in zip(recall[("int8", mode)], recall[("full precision", mode)], strict=True)]
        )
        print(
            f"{mode}: recall@5 full {100 * np.mean(recall[('full precision', mode)]):.1f}, "
            f"int8 {100 * np.mean(recall[('int8', mode)]):.1f}, "
            f"difference {100 * delta.mean:+.1f} [{100 * delta.ci_low:+.1f}, {100 * delta.ci_high:+.1f}]"
        )
    store.close()


if __name__ == "__main__":
    main()
