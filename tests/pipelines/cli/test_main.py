"""The real ``kgrag`` command in a subprocess: clear one-line errors, exit codes, and a real answer."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import load_settings
from evals.bench.benchmarks.startup import MODEL, ModelEndpoint
from pipelines.cli.main import COMMANDS, load_command
from pipelines.compose.models import load_embedder
from retrieval.onnx_embedder import OnnxEmbedder
from tests.conftest import DATA_DIR, RunningModelServer, free_port
from tests.pipelines.ingest.pdfmaker import bomb_bytes

KGRAG = str(Path(sys.executable).parent / "kgrag")


def kgrag(*args: str, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "RAGAS_DO_NOT_TRACK": "true",
        "COLUMNS": "200",
        **(env or {}),
    }
    return subprocess.run([KGRAG, *args], capture_output=True, text=True, env=full_env, timeout=timeout)


def assert_clear_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert fragment in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "fix:" in proc.stderr


def test_ask_without_a_store_names_the_fix(tmp_path: Path) -> None:
    proc = kgrag("ask", "Who founded Northwind?", "--store", str(tmp_path / "missing"))
    assert_clear_error(proc, 1, "no kgrag store at")
    assert "kgrag ingest" in proc.stderr


def test_ask_with_an_empty_question_is_bad_input(sample_store: Path) -> None:
    assert_clear_error(kgrag("ask", "  ", "--store", str(sample_store)), 2, "the question is empty")


def test_ask_with_a_question_over_the_one_limit_is_bad_input(sample_store: Path) -> None:
    proc = kgrag("ask", "x" * 51, "--store", str(sample_store), env={"KGRAG_API__MAX_QUESTION_CHARS": "50"})
    assert_clear_error(proc, 2, "the question is 51 characters long; the limit is 50")


def test_ask_with_unreachable_model_names_the_fix(sample_store: Path) -> None:
    proc = kgrag(
        "ask",
        "Who founded Northwind?",
        "--store",
        str(sample_store),
        env={"KGRAG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"},
    )
    assert_clear_error(proc, 1, "is not reachable")
    assert "kgrag model serve" in proc.stderr


def test_model_status_reports_unreachable_endpoint() -> None:
    proc = kgrag("model", "status", env={"KGRAG_LLM_BASE_URL": f"http://127.0.0.1:{free_port()}/v1"})
    assert_clear_error(proc, 1, "is not reachable")
    assert "endpoint" in proc.stdout


def test_ingest_reports_unreadable_files_and_exits_partial(tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_bytes(b"\x00\x01binary")
    proc = kgrag("ingest", str(DATA_DIR), str(tmp_path / "bad.txt"), "--store", str(tmp_path / "store"), "--json")
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert report["documents_added"] == 6
    assert [s["reason"] for s in report["skipped"]] == [
        f"{tmp_path / 'bad.txt'}: binary file (only txt, md, html, pdf and jsonl are ingested)"
    ]
    again = kgrag("ingest", str(DATA_DIR), "--store", str(tmp_path / "store"))
    assert again.returncode == 0, again.stderr
    assert "0 added, 0 changed, 6 unchanged" in again.stdout


def test_ingest_skips_a_pdf_bomb_and_ingests_the_file_beside_it(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "bomb.pdf").write_bytes(bomb_bytes())
    (folder / "good.md").write_text("# Good\n\nThe Zephyr gate opens at nine.\n", "utf-8")
    proc = kgrag("ingest", str(folder), "--store", str(tmp_path / "store"))
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr and "LimitReachedError" not in proc.stdout + proc.stderr
    assert "1 added" in proc.stdout and "decompression bomb" in proc.stdout, proc.stdout
    report = json.loads((tmp_path / "store" / "reports" / "latest.json").read_text("utf-8"))
    assert report["status"] == "partial" and report["documents_added"] == 1
    assert [s["source"] for s in report["skipped"]] == [str(folder / "bomb.pdf")]


def test_ingest_of_nothing_fails(tmp_path: Path) -> None:
    proc = kgrag("ingest", str(tmp_path / "nope"), "--store", str(tmp_path / "store"))
    assert proc.returncode == 1
    assert "does not exist" in proc.stdout


def test_unknown_extractor_is_bad_input(tmp_path: Path) -> None:
    assert_clear_error(
        kgrag("ingest", str(DATA_DIR), "--store", str(tmp_path), "--extractor", "magic"),
        2,
        "unknown extractor",
    )


@pytest.mark.slow
@pytest.mark.integration
def test_ask_json_with_qwen(sample_store: Path, qwen_server: RunningModelServer) -> None:
    proc = kgrag(
        "ask",
        "Who founded Northwind Robotics?",
        "--store",
        str(sample_store),
        "--json",
        env={"KGRAG_LLM_BASE_URL": qwen_server.base_url, "KGRAG_LLM_MODEL": qwen_server.name},
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["provenance"]["gate"]["decision"] == "released", record["provenance"]["gate"]
    assert "Okafor" in record["answer"] and "Brandt" in record["answer"]
    assert any("founded in 2014" in c["text"] for c in record["citations"])
    steps = [t["step"] for t in record["provenance"]["trace"]]
    assert {"retrieve", "graph_context", "assemble", "generate", "gate"} <= set(steps)


# ----- the command table: what `kgrag --help` lists without importing the commands, and what starting one imports


def imported_by_kgrag(*args: str, env: dict[str, str] | None = None, exit_code: int = 0) -> set[str]:
    """Modules a whole ``kgrag ARGS`` process (this checkout's code) has imported when it ends."""
    script = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print('\\nMODULES ' + json.dumps(sorted(sys.modules))))\n"
        "from pipelines.cli.main import app\n"
        "app(sys.argv[1:])\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "HF_HUB_OFFLINE": "1",
        "RAGAS_DO_NOT_TRACK": "true",
        **(env or {}),
    }
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == exit_code, proc.stderr
    return set(json.loads(proc.stdout.rpartition("\nMODULES ")[2]))


def tops(modules: set[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_shows_each_command_s_own_help(name: str) -> None:
    command = load_command(name)
    own = inspect.cleandoc(command.help or "").split("\n\n")[0]
    assert " ".join(COMMANDS[name].help.split()) == " ".join(own.split())
    assert command.name == name


def test_help_lists_every_command_in_table_order_and_imports_none_of_them() -> None:
    proc = kgrag("--help", env={"COLUMNS": "400"})
    assert proc.returncode == 0, proc.stderr
    listed = [line.split()[1] for line in proc.stdout.splitlines() if line.startswith("│ ") and len(line.split()) > 2]
    assert listed[-len(COMMANDS) :] == list(COMMANDS)
    modules = imported_by_kgrag("--help")
    assert not {home.module for home in COMMANDS.values()} & modules
    deferred = {"pydantic_settings", "jinja2", "yaml", "openai", "numpy", "sqlalchemy", "networkx", "faiss", "torch"}
    assert tops(modules).isdisjoint(deferred), sorted(tops(modules) & deferred)


def test_prompts_list_imports_its_command_module_alone() -> None:
    modules = imported_by_kgrag("prompts", "list")
    assert {home.module for home in COMMANDS.values()} & modules == {"pipelines.cli.prompts"}
    heavy = {"openai", "numpy", "sqlalchemy", "networkx", "faiss", "bm25s", "torch", "onnxruntime"}
    assert tops(modules).isdisjoint(heavy), sorted(tops(modules) & heavy)


def test_an_unknown_command_is_bad_input_with_a_suggestion() -> None:
    proc = kgrag("promts", "list")
    assert proc.returncode == 2
    assert "No such command 'promts'" in proc.stderr and "prompts" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_ask_up_to_its_first_model_call_loads_no_torch_ragas_or_transformers(sample_store: Path) -> None:
    # With the ONNX export cached (as after any first run), a question runs on ONNX Runtime and `tokenizers`, and the
    # gate's cheap checks without Ragas: none of torch, transformers, sentence-transformers or Ragas (with its
    # LangChain, datasets and pandas) is imported, before the model call or after it (the endpoint answers 503).
    settings = load_settings()
    embedder = load_embedder(settings)
    if isinstance(embedder, OnnxEmbedder) and settings.embedding.quantize_queries:
        embedder.query_encoder()  # the cached export and its int8 copy, where the command will look for them
    endpoint = ModelEndpoint()
    try:
        modules = imported_by_kgrag(
            "ask",
            "Who founded Northwind Robotics?",
            "--store",
            str(sample_store),
            env={"KGRAG_LLM_BASE_URL": endpoint.url, "KGRAG_LLM_MODEL": MODEL},
            exit_code=1,
        )
    finally:
        endpoint.close()
    assert endpoint.first_request is not None, "the question never reached the model"
    heavy = {"torch", "transformers", "sentence_transformers", "ragas", "langchain_core", "datasets", "pandas"}
    assert tops(modules).isdisjoint(heavy), sorted(tops(modules) & heavy)
    assert {"onnxruntime", "tokenizers", "openai"} <= tops(modules)
