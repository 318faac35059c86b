"""The answer gate: cheap checks without a model, an unreachable judge, and the real Qwen judge (slow)."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import ConfigurationError
from core.llm import ModelClient
from core.settings import GateSettings
from evals.gate.checks.claims import strip_citations
from evals.gate.disabled import DisabledGate
from evals.gate.factory import build_gate
from evals.gate.ragas_gate import RagasGate
from prompts.abstention import is_abstention
from prompts.constants import ABSTENTION_TEXT

REPO_ROOT = Path(__file__).resolve().parents[3]

CURIE_CONTEXT = (
    "Marie Curie was a physicist and chemist. She was born in Warsaw, Poland, in 1867. "
    "She won the Nobel Prize in Physics in 1903 and the Nobel Prize in Chemistry in 1911."
)
CURIE_QUESTION = "Where was Marie Curie born?"


@pytest.fixture()
def listening_port() -> Iterator[socket.socket]:
    """A loopback port that accepts TCP connections but never answers: any judge call would be queued here."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        yield server


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def client_at(port: int, timeout_s: float = 5.0) -> ModelClient:
    return ModelClient(base_url=f"http://127.0.0.1:{port}/v1", model="judge", timeout_s=timeout_s)


def assert_never_connected(server: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        connection, _ = server.accept()
        connection.close()


# ----- pure helpers -----


def test_strip_citations() -> None:
    assert strip_citations("Curie was born in Warsaw [1].") == "Curie was born in Warsaw."
    assert strip_citations("A [1][2] and B [1, 3], C [2-4].") == "A and B, C."
    assert strip_citations("No markers here.") == "No markers here."
    assert strip_citations("Curie [1] won [2] twice [ 3 ]") == "Curie won twice"
    assert strip_citations("See [a] and [1a].") == "See [a] and [1a]."


def test_is_abstention_normalises_case_quotes_and_citations() -> None:
    assert is_abstention(ABSTENTION_TEXT)
    assert is_abstention("  the documents do not answer this question [1]  ")
    assert is_abstention('"The documents do not answer this question"')
    assert not is_abstention("The documents do not answer this question, but Curie was born in Warsaw.")
    assert not is_abstention("Curie was born in Warsaw.")


def test_building_a_gate_without_a_ragas_judge_does_not_import_ragas() -> None:
    # The default cascade (no judge stage) and its checks, quoted spans included, run without Ragas: it is imported
    # only by building a Ragas judge (through the composition root's judge factory, lazy.RagasGate).
    code = (
        "import sys; from core.llm import ModelClient; from core.settings import GateSettings; "
        "from evals.gate.factory import build_gate; import evals.gate.disabled, pipelines.compose.answer; "
        "from evals.gate.checks.claims import check_input; "
        "gate = build_gate(GateSettings(), ModelClient(base_url='http://127.0.0.1:9/v1', model='m'), None, "
        "judge_factory=pipelines.compose.answer.ragas_judge); "
        "item = check_input('Q?', 'It says \"born in  WARSAW, Poland\" [1].', ['Born in Warsaw,\\nPoland.']); "
        "print([c.check(item).outcome for c in gate.checks if c.name == 'quoted_spans'], 'ragas' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "['pass'] False"


# ----- configuration -----


def test_disabled_gate_releases_unscored() -> None:
    record = DisabledGate().evaluate("Q?", "Anything at all.", [])
    assert record.decision == "released"
    assert record.reason == "gate disabled by settings"
    assert record.scores.faithfulness is None and record.scores.answer_relevancy is None


def test_build_gate_follows_settings(embedder) -> None:  # type: ignore[no-untyped-def]
    client = client_at(closed_port())
    assert isinstance(build_gate(GateSettings(enabled=False), client, embedder), DisabledGate)
    settings = GateSettings(backend="ragas", faithfulness_threshold=0.7, retries=0)
    gate = build_gate(settings, client, embedder, judge_factory=RagasGate.from_settings)
    assert isinstance(gate, RagasGate)
    assert gate.faithfulness_threshold == 0.7 and gate.retries == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"faithfulness_threshold": 1.5},
        {"answer_relevancy_threshold": -0.1},
        {"answer_relevancy_strictness": 0},
        {"timeout_s": 0},
        {"retries": -1},
    ],
)
def test_invalid_gate_settings_are_rejected(embedder, kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError):
        RagasGate(client_at(closed_port()), embedder, **kwargs)


# ----- cheap checks: no judge call -----


@pytest.mark.parametrize(
    ("answer", "contexts", "reason"),
    [
        (ABSTENTION_TEXT, [CURIE_CONTEXT], "model abstained"),
        ("the documents do not answer this question [2]", [CURIE_CONTEXT], "model abstained"),
        ("", [CURIE_CONTEXT], "empty answer"),
        ("   \n", [CURIE_CONTEXT], "empty answer"),
        ("[1] [2]", [CURIE_CONTEXT], "answer holds only citation markers"),
        ("Marie Curie was born in Warsaw [1].", [], "no contexts to check the answer against"),
        ("Marie Curie was born in Warsaw [1].", ["  ", ""], "no contexts to check the answer against"),
    ],
)
def test_cheap_checks_abstain_without_calling_the_judge(  # type: ignore[no-untyped-def]
    embedder, listening_port: socket.socket, answer: str, contexts: list[str], reason: str
) -> None:
    client = client_at(listening_port.getsockname()[1], timeout_s=2.0)
    gate = RagasGate(client, embedder, retries=0, timeout_s=2.0)
    record = gate.evaluate(CURIE_QUESTION, answer, contexts)
    assert record.decision == "abstained"
    assert record.reason == reason
    assert record.scores.faithfulness is None and record.scores.answer_relevancy is None
    assert 0 <= record.duration_ms < 500
    assert_never_connected(listening_port)


def test_evaluate_works_inside_a_running_event_loop(embedder, listening_port: socket.socket) -> None:  # type: ignore[no-untyped-def]
    gate = RagasGate(client_at(listening_port.getsockname()[1]), embedder)

    async def inside_loop() -> str:
        return gate.evaluate(CURIE_QUESTION, ABSTENTION_TEXT, [CURIE_CONTEXT]).decision

    assert asyncio.run(inside_loop()) == "abstained"
    assert_never_connected(listening_port)


# ----- unreachable judge -----


def test_unreachable_judge_sends_answer_to_review(embedder) -> None:  # type: ignore[no-untyped-def]
    port = closed_port()
    gate = RagasGate(client_at(port), embedder, retries=1, timeout_s=10)
    record = gate.evaluate(CURIE_QUESTION, "Marie Curie was born in Warsaw [1].", [CURIE_CONTEXT])
    assert record.decision == "review"
    assert record.reason.startswith("gate_error: ")
    assert f"127.0.0.1:{port}" in record.reason and "not reachable" in record.reason
    assert record.scores.faithfulness is None and record.scores.answer_relevancy is None
    assert record.duration_ms > 0


def test_judge_that_never_answers_times_out_into_review(embedder, listening_port: socket.socket) -> None:  # type: ignore[no-untyped-def]
    gate = RagasGate(client_at(listening_port.getsockname()[1], timeout_s=30), embedder, retries=1, timeout_s=0.5)
    record = gate.evaluate(CURIE_QUESTION, "Marie Curie was born in Warsaw [1].", [CURIE_CONTEXT])
    assert record.decision == "review"
    assert "gate_error" in record.reason
    assert "faithfulness: timed out after 0.5s (2 attempt(s))" in record.reason
    assert "answer_relevancy: timed out" in record.reason
    assert record.scores.faithfulness is None
    assert 2000 <= record.duration_ms < 20000  # 2 metrics x 2 attempts x 0.5 s


# ----- the real judge -----


def record_timing(artifacts_dir: Path, name: str, record_json: str) -> None:
    with (artifacts_dir / "gate-timings.jsonl").open("a", encoding="utf-8") as out:
        out.write(json.dumps({"test": name, "record": json.loads(record_json)}) + "\n")


@pytest.mark.slow
def test_faithful_answer_is_released(qwen_client: ModelClient, embedder, artifacts_dir: Path) -> None:  # type: ignore[no-untyped-def]
    gate = RagasGate(qwen_client, embedder)
    record = gate.evaluate(CURIE_QUESTION, "Marie Curie was born in Warsaw, Poland [1].", [CURIE_CONTEXT])
    record_timing(artifacts_dir, "faithful", record.model_dump_json())
    assert record.scores.faithfulness is not None
    assert record.scores.faithfulness >= gate.faithfulness_threshold, record.reason
    assert record.scores.answer_relevancy is not None
    assert record.scores.answer_relevancy >= gate.answer_relevancy_threshold, record.reason
    assert record.decision == "released", record.reason
    assert record.duration_ms > 0


@pytest.mark.slow
def test_hallucinated_answer_is_not_released(qwen_client: ModelClient, embedder, artifacts_dir: Path) -> None:  # type: ignore[no-untyped-def]
    gate = RagasGate(qwen_client, embedder)
    record = gate.evaluate(
        CURIE_QUESTION, "Marie Curie was born in Berlin in 1921 and won an Oscar for acting [1].", [CURIE_CONTEXT]
    )
    record_timing(artifacts_dir, "hallucinated", record.model_dump_json())
    assert record.scores.faithfulness is not None, record.reason
    assert record.scores.faithfulness < gate.faithfulness_threshold
    assert record.decision == "abstained"
    assert "faithfulness" in record.reason and "< threshold 0.50" in record.reason
