"""The context assembler in the answer workflow: the token budget cuts passages after whole sentences, facts carry
the citation number of their source passage, and provenance records exactly the spans shown to the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.settings import Settings, load_settings
from core.types import Chunk, Fact, GraphContext, RetrievedChunk, sha256_text
from pipelines.answer.steps import AssembleContextStep
from pipelines.compose.answer import build_answer_service
from pipelines.compose.ingest import build_ingestor
from pipelines.compose.stores import open_store
from prompts.registry import FilePromptRegistry
from retrieval.context import ContextAssembler
from tests.conftest import RunningModelServer
from tests.prompt_copies import answer_prompts_at

LONG = (
    "Varnholm adopted the euro in 2002. Before that Varnholm paid in the krenna. "
    "The krenna was minted in Oslath from 1871. Its coins showed the old royal seal. "
    "Collectors still trade the last silver krenna struck in 2001."
)
SHORT = "Zorbalt Quimby is a rapper who was born in Varnholm."


def _hit(chunk_id: str, text: str, start: int = 10) -> RetrievedChunk:
    chunk = Chunk(
        id=chunk_id, document_id=chunk_id.split("#")[0], source="x", title=chunk_id, text=text, start=start,
        end=start + len(text), ordinal=0, sha256=sha256_text(text),
    )  # fmt: skip
    return RetrievedChunk(chunk=chunk, score=0.5, method="graph")


FACTS = [
    Fact(subject="Varnholm", predicate="paid in", object="krenna", chunk_id="varnholm#0"),
    Fact(subject="krenna", predicate="was minted in", object="Oslath", chunk_id="elsewhere#3"),
]


def _user(step: AssembleContextStep, passages: list[RetrievedChunk], facts: list[Fact]) -> tuple[str, object]:
    out = step.run("Which currency?", "req-1", passages, GraphContext(facts=facts), [])
    user = next(m["content"] for m in out.prompt.messages if m["role"] == "user")
    return user, out


def _v2_registry(tmp_path: Path) -> FilePromptRegistry:
    """The context assembler cuts passages for answer v2's view (whole passages with [n] markers)."""
    return FilePromptRegistry(answer_prompts_at(tmp_path, 2))


def test_assembler_cuts_after_whole_sentences_and_keeps_citation_numbers(tmp_path: Path) -> None:
    registry = _v2_registry(tmp_path)
    passages = [_hit("quimby#0", SHORT), _hit("varnholm#0", LONG)]
    step = AssembleContextStep(registry, "production", 2, 10, assembler=ContextAssembler(60, fact_share=0.3))
    user, out = _user(step, passages, FACTS)
    shown = out.passages  # type: ignore[attr-defined]
    assert [p.chunk.id for p in shown] == ["quimby#0", "varnholm#0"]
    assert shown[0].chunk == passages[0].chunk  # whole
    cut = shown[1].chunk
    assert LONG.startswith(cut.text) and len(cut.text) < len(LONG) and cut.text.endswith(".")
    assert cut.end == cut.start + len(cut.text)  # the recorded span is what the model saw
    assert cut.text in user and LONG not in user
    # the fact from a shown passage carries its number; the fact whose source is not shown has none
    assert "- Varnholm paid in krenna [2]" in user
    assert [f.chunk_id for f in out.facts][0] == "varnholm#0"  # type: ignore[attr-defined]


def test_without_the_assembler_passages_are_shown_whole(tmp_path: Path) -> None:
    step = AssembleContextStep(_v2_registry(tmp_path), "production", 2, 10)
    user, out = _user(step, [_hit("varnholm#0", LONG)], FACTS)
    assert LONG in user and out.passages[0].chunk.text == LONG  # type: ignore[attr-defined]


def test_budget_and_hops_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRAG_RETRIEVAL__CONTEXT_BUDGET_TOKENS", "321")
    monkeypatch.setenv("KGRAG_RETRIEVAL__FACT_HOPS", "3")
    settings = load_settings()
    assert settings.retrieval.context_budget_tokens == 321 and settings.retrieval.fact_hops == 3


@pytest.mark.integration
def test_answer_provenance_lists_the_shown_spans_and_facts(
    tmp_path: Path,
    embedder,  # type: ignore[no-untyped-def]
    smol_server: RunningModelServer,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "varnholm.txt").write_text(LONG, encoding="utf-8")
    (docs / "quimby.txt").write_text(SHORT, encoding="utf-8")
    settings = Settings(
        store_dir=tmp_path / "store",
        llm_base_url=smol_server.base_url,
        llm_model=smol_server.name,
        llm_max_tokens=16,
        gate={"enabled": False},  # type: ignore[arg-type]
        retrieval={"context_budget_tokens": 70, "fact_hops": 2},  # type: ignore[arg-type]
        prompts={"directory": answer_prompts_at(tmp_path / "prompts", 2)},  # type: ignore[arg-type]
    )
    store = open_store(settings, embedder, create=True)
    build_ingestor(settings, store, embedder).ingest([docs])
    service = build_answer_service(settings, store, embedder)
    record = service.answer("Which currency did Varnholm use before the euro?")
    refs = record.provenance.retrieval
    assert refs and all(r.start is not None and r.end is not None for r in refs)
    for ref in refs:
        chunk = store.chunks.get_chunk(ref.chunk_id)
        assert chunk is not None and chunk.start == ref.start and ref.end is not None and ref.end <= chunk.end
        document = store.chunks.get_document(chunk.document_id)
        assert document is not None
        shown = document.text[ref.start : ref.end]
        assert chunk.text.startswith(shown) and shown.rstrip().endswith((".", "!", "?"))
    assert any(ref.end < store.chunks.get_chunk(ref.chunk_id).end for ref in refs)  # type: ignore[union-attr,operator]
    shown_ids = {r.chunk_id for r in refs}
    assert record.facts, "facts about Varnholm are given to the model"
    assert all(store.graph.has_chunk(f.chunk_id) for f in record.facts)
    assert any(f.chunk_id in shown_ids for f in record.facts)
    for citation in record.citations:
        ref = next(r for r in refs if r.chunk_id == citation.chunk_id)
        assert ref.start is not None and ref.end is not None
        assert ref.start <= citation.start and citation.end <= ref.end
    store.close()
