"""ONNX Runtime embedder: the same sentence-transformers model, exported once to ONNX, run 2-3x faster on a CPU."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.metadata
import json
import os
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ConfigurationError, InputError
from retrieval.embedder import SentenceTransformerEmbedder
from retrieval.model_files import model_directory

#: ONNX opset of the exported graph (supported by the pinned onnxruntime).
_OPSET = 17
#: Bump when the exported graph or its manifest changes, so cached exports are rebuilt.
_EXPORT_FORMAT = 2
_POOLING_MODES = ("mean", "cls", "max")
#: Model input name -> the field of a ``tokenizers.Encoding`` that gives it.
_ENCODING_FIELDS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
_TORCH_FIX = "set KGRAG_EMBEDDING__BACKEND=torch to embed with PyTorch"


class OnnxEmbedder:
    """Embeds texts like :class:`SentenceTransformerEmbedder`, with the model's forward pass run by ONNX Runtime.

    The first time, the sentence-transformers model at ``model_path`` (default: the bundled all-MiniLM-L6-v2) is
    loaded with PyTorch; its transformer, pooling (mean, CLS or max) and normalisation are exported to one ONNX file
    under ``cache_dir``, keyed by the model files, with a manifest beside it (``<export>.json``: the model's inputs,
    token limit, dimension and the tokenizer's state). Later processes load only those two files, with ONNX Runtime
    and the ``tokenizers`` library: no torch, transformers or sentence-transformers. Vectors equal the PyTorch
    embedder's to within float rounding (cosine > 0.9999), so a store built with either backend is searched
    correctly by the other; ``model_name`` is the same. A single short query embeds in about 40 % of the PyTorch time
    on one CPU thread, which is what the request path pays.

    Only the module chain ``Transformer -> Pooling -> [Normalize]`` with a fast (Rust) tokenizer is exportable; any
    other model is a :class:`~core.errors.ConfigurationError` naming the PyTorch backend as the fix. ``embed`` may be
    called from several threads (calls are serialised: the tokenizer is not thread-safe).
    """

    def __init__(
        self,
        model_path: Path | None = None,
        batch_size: int = 64,
        num_threads: int | None = 1,
        cache_dir: Path | None = None,
    ) -> None:
        if num_threads is not None and num_threads < 1:
            raise ConfigurationError(f"embedding num_threads must be at least 1, got {num_threads}")
        if batch_size < 1:
            raise ConfigurationError(f"embedding batch_size must be at least 1, got {batch_size}")
        self.model_path, self.model_name = model_directory(model_path)
        self.batch_size: int = batch_size
        root = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "kgrag" / "onnx"
        self.onnx_path: Path = root / f"{self.model_name}-{_export_key(self.model_path)}.onnx"
        manifest_path = self.onnx_path.with_suffix(".json")
        #: True when this instance exported the model (False when it reused a cached export).
        self.exported: bool = False
        export = _ExportManifest.read(manifest_path)
        session = _open_session(self.onnx_path, num_threads) if export is not None else None
        if export is None or session is None:  # not exported yet, or an unreadable cached file: export (again)
            export = _export_model(model_path, self.onnx_path, manifest_path)
            session = _open_session(self.onnx_path, num_threads)
            if session is None:
                raise ConfigurationError(
                    f"cannot load the ONNX model just written to {self.onnx_path}", hint=_TORCH_FIX
                )
            self.exported = True
        self._session = session
        self.dimension: int = export.dimension
        self.max_length: int = export.max_length
        self._input_names: list[str] = list(export.input_names)
        self._tokenizer = export.tokenizer()
        self._lock = threading.Lock()
        self._num_threads = num_threads
        self._query_encoder: OnnxEmbedder | None = None

    def query_encoder(self) -> OnnxEmbedder:
        """This embedder with the model's weights quantized to int8, for embedding *questions* only.

        ONNX Runtime's dynamic quantization (int8 weights per output channel, activations quantized on the fly)
        of the exported model, written once next to it (``<export>-int8q.onnx``, atomically) and shared by every
        call. A question embeds ~1.8x faster on one CPU thread and its vector stays within cosine ~0.99 of the
        full-precision one; passages keep their full-precision vectors (ingestion never uses this encoder), so a
        store is the same whichever encoder searches it. ``KGRAG_EMBEDDING__QUANTIZE_QUERIES`` switches it on for
        the retrievers; recall measured with and without is in docs/retrieval.md. Same ``model_name``,
        ``dimension`` and tokenizer (calls to both encoders are serialised by one lock).
        """
        with self._lock:
            if self._query_encoder is None:
                path = self.onnx_path.with_name(f"{self.onnx_path.stem}-int8q.onnx")
                session, _ = _cached_session(
                    path,
                    self._num_threads,
                    lambda target: _quantize(self.onnx_path, target),
                    fix="set KGRAG_EMBEDDING__QUANTIZE_QUERIES=false",
                )
                encoder = copy.copy(self)  # shares the tokenizer and the lock, not the session
                encoder._session = session
                encoder.onnx_path = path
                encoder.exported = False
                encoder._query_encoder = encoder
                self._query_encoder = encoder
            return self._query_encoder

    def embed(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Return an array of shape ``(len(texts), dimension)``, dtype float32, each row L2-normalised.

        Texts are batched longest first (as sentence-transformers does) so a batch pads little; ``show_progress``
        is accepted for interface compatibility (ingestion reports its own progress).
        """
        if isinstance(texts, str):
            raise InputError("embed() takes a sequence of texts, not a single string; wrap it in a list")
        items = list(texts)
        result = np.zeros((len(items), self.dimension), dtype=np.float32)
        if not items:
            return result
        order = sorted(range(len(items)), key=lambda i: -len(items[i]))
        with self._lock:
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                (vectors,) = self._session.run(["sentence_embedding"], self._feeds([items[i] for i in batch]))
                if vectors.shape != (len(batch), self.dimension):
                    raise ConfigurationError(
                        f"the ONNX model {self.onnx_path} returned shape {vectors.shape}, "
                        f"expected ({len(batch)}, {self.dimension})",
                        hint="delete the file to export it again, or set KGRAG_EMBEDDING__BACKEND=torch",
                    )
                result[batch] = vectors
        return result

    def _feeds(self, texts: list[str]) -> dict[str, np.ndarray]:
        """The model inputs for ``texts``: padded to the longest, truncated at ``max_length``, as the transformers
        tokenizer gives them with ``padding=True, truncation=True``.

        One text (a question) is encoded without the batch call, which releases the GIL and must take it back
        afterwards: that costs the request ~1 ms while graph mode's entity linking runs Python on another thread."""
        encodings = [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(texts)
        return {
            name: np.asarray([getattr(e, _ENCODING_FIELDS[name]) for e in encodings], dtype=np.int64)
            for name in self._input_names
        }


@dataclass(frozen=True)
class _ExportManifest:
    """What running a cached export needs besides the ONNX file: written beside it (``<export>.json``) by the
    export, read by every later process instead of loading the model with PyTorch."""

    input_names: tuple[str, ...]
    max_length: int
    dimension: int
    tokenizer_json: str  # the fast tokenizer's state, truncation and padding set as the transformers call sets them

    def tokenizer(self) -> Any:
        """A ``tokenizers.Tokenizer`` that truncates at ``max_length`` and pads a batch to its longest text."""
        from tokenizers import Tokenizer

        return Tokenizer.from_str(self.tokenizer_json)

    @classmethod
    def read(cls, path: Path) -> _ExportManifest | None:
        """The manifest at ``path``, or ``None`` when it is missing, unreadable or of another export format."""
        try:
            data = json.loads(path.read_text("utf-8"))
            if data["format"] != _EXPORT_FORMAT:
                return None
            names = tuple(str(n) for n in data["input_names"])
            if not names or not set(names) <= _ENCODING_FIELDS.keys():
                return None
            return cls(names, int(data["max_length"]), int(data["dimension"]), str(data["tokenizer"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, path: Path) -> None:
        data = {
            "format": _EXPORT_FORMAT,
            "input_names": list(self.input_names),
            "max_length": self.max_length,
            "dimension": self.dimension,
            "tokenizer": self.tokenizer_json,
        }
        with _written_atomically(path) as tmp:
            tmp.write_text(json.dumps(data), "utf-8")


def _export_model(model_path: Path | None, onnx_path: Path, manifest_path: Path) -> _ExportManifest:
    """Load the model with PyTorch, export it to ``onnx_path`` and write its manifest (last: a manifest names a
    complete export)."""
    torch_embedder = SentenceTransformerEmbedder(model_path=model_path, device="cpu")
    model = torch_embedder.model
    pooling_mode, normalize = _exportable_chain(model, torch_embedder.model_path)
    manifest = _tokenizer_manifest(model, torch_embedder)
    _export(model, pooling_mode, normalize, list(manifest.input_names), onnx_path)
    manifest.write(manifest_path)
    return manifest


def _tokenizer_manifest(model: Any, torch_embedder: SentenceTransformerEmbedder) -> _ExportManifest:
    """The model's inputs, token limit and dimension, and its fast tokenizer's state set to truncate at the model's
    ``max_seq_length`` and pad like the transformers wrapper does."""
    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "_tokenizer", None) if getattr(tokenizer, "is_fast", False) else None
    input_names = tuple(tokenizer(["probe"], return_tensors="np").keys())
    if backend is None or not set(input_names) <= _ENCODING_FIELDS.keys():
        raise ConfigurationError(
            f"the embedding model at {torch_embedder.model_path} has no fast tokenizer giving {list(_ENCODING_FIELDS)}"
            f" (inputs: {list(input_names)}); the ONNX backend needs one",
            hint=_TORCH_FIX,
        )
    from tokenizers import Tokenizer

    max_length = int(model.max_seq_length)
    state = Tokenizer.from_str(backend.to_str())  # a copy: the wrapper changes its own truncation and padding per call
    state.enable_truncation(max_length, direction=tokenizer.truncation_side)
    state.enable_padding(
        direction=tokenizer.padding_side,
        pad_id=tokenizer.pad_token_id,
        pad_type_id=tokenizer.pad_token_type_id,
        pad_token=tokenizer.pad_token,
    )
    return _ExportManifest(input_names, max_length, torch_embedder.dimension, state.to_str())


def _exportable_chain(model: Any, path: Path) -> tuple[str, bool]:
    """The pooling mode and whether vectors are normalised, for a ``Transformer -> Pooling -> [Normalize]`` model."""
    names = [type(module).__name__ for module in model]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ConfigurationError(
            f"the embedding model at {path} has modules {names}; the ONNX backend exports only "
            "Transformer -> Pooling -> [Normalize]",
            hint=_TORCH_FIX,
        )
    config = model[1].get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # older sentence-transformers: one boolean per mode
        enabled = [
            m for m in _POOLING_MODES if config.get(f"pooling_mode_{m}_tokens") or config.get(f"pooling_mode_{m}_token")
        ]
        mode = enabled[0] if len(enabled) == 1 else None
    if mode not in _POOLING_MODES:
        raise ConfigurationError(
            f"the embedding model at {path} pools with {mode!r}; the ONNX backend supports {', '.join(_POOLING_MODES)}",
            hint=_TORCH_FIX,
        )
    return str(mode), len(names) == 3


def _export_key(path: Path) -> str:
    """A short hash of the model files (name, size, modification time) and of how the graph is exported, computed
    without loading the model or torch (its version is read from the installed package's metadata)."""
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = None
    digest = hashlib.sha256()
    description = {"format": _EXPORT_FORMAT, "opset": _OPSET, "torch": torch_version, "path": str(path.resolve())}
    digest.update(json.dumps(description, sort_keys=True).encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _export(model: Any, pooling_mode: str, normalize: bool, input_names: list[str], target: Path) -> None:
    """Export transformer + pooling (+ normalisation) to ``target`` atomically (temp file, then rename)."""
    import torch

    transformer = model[0].auto_model.eval()

    class _Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.transformer = transformer

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            named = dict(zip(input_names, inputs, strict=True))
            hidden = self.transformer(**named).last_hidden_state
            mask = named["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            if pooling_mode == "cls":
                pooled = hidden[:, 0]
            elif pooling_mode == "max":
                pooled = (hidden - (1.0 - mask) * 1e9).max(dim=1).values
            else:
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled

    sample = model.tokenizer(["an example sentence", "another"], padding=True, return_tensors="pt")
    args = tuple(sample[name] for name in input_names)
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in input_names}
    axes["sentence_embedding"] = {0: "batch"}
    try:
        with _written_atomically(target) as tmp, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Pooled(),
                args,
                str(tmp),
                input_names=input_names,
                output_names=["sentence_embedding"],
                dynamic_axes=axes,
                opset_version=_OPSET,
                dynamo=False,
            )
    except Exception as exc:
        raise ConfigurationError(
            f"could not export the embedding model to ONNX at {target}: {exc}",
            hint="set KGRAG_EMBEDDING__BACKEND=torch, or check that the cache directory is writable",
        ) from exc


def _quantize(source: Path, target: Path) -> None:
    """Write an int8 (dynamic, per-channel) copy of the ONNX model ``source`` to ``target`` atomically."""
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantizer logs a pre-processing suggestion on the root logger
    try:
        with _written_atomically(target) as tmp:
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
    except Exception as exc:
        raise ConfigurationError(
            f"could not quantize the embedding model {source} into {target}: {exc}",
            hint="set KGRAG_EMBEDDING__QUANTIZE_QUERIES=false, or check that the cache directory is writable",
        ) from exc
    finally:
        root.setLevel(level)


@contextlib.contextmanager
def _written_atomically(target: Path) -> Iterator[Path]:
    """A temporary path beside ``target``: moved over ``target`` when the block succeeds, removed when it fails."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _cached_session(
    path: Path, num_threads: int | None, write: Callable[[Path], None], *, fix: str
) -> tuple[Any, bool]:
    """An ONNX Runtime session for the model file ``path``, and whether it had to be written: a missing or unreadable
    file is written (again) by ``write(path)`` first; one that still cannot be loaded is a ConfigurationError."""
    session = _open_session(path, num_threads) if path.is_file() else None
    if session is not None:
        return session, False
    write(path)
    session = _open_session(path, num_threads)
    if session is None:
        raise ConfigurationError(f"cannot load the ONNX model just written to {path}", hint=fix)
    return session, True


def _open_session(path: Path, num_threads: int | None) -> Any | None:
    """An ONNX Runtime CPU session for ``path``, or ``None`` when the file cannot be loaded."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if num_threads is not None:
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception:
        return None
