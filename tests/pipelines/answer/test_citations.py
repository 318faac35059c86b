"""Citation alignment: markers end up pointing at passages that support the sentence."""

from __future__ import annotations

from core.types import Chunk, RetrievedChunk, sha256_text
from pipelines.answer.citations import align_citations, support

TEXTS = [
    "Parental leave is 16 weeks at full pay for every parent.",
    "Every full-time employee receives 28 days of paid annual leave.",
    "Passwords must be at least 14 characters long.",
]


def hits() -> list[RetrievedChunk]:
    out = []
    offset = 0
    for i, text in enumerate(TEXTS):
        chunk = Chunk(
            id=f"c{i}",
            document_id="d",
            source="d.md",
            text=text,
            start=offset,
            end=offset + len(text),
            ordinal=i,
            sha256=sha256_text(text),
        )
        out.append(RetrievedChunk(chunk=chunk, score=1.0 - i / 10, method="hybrid"))
        offset += len(text) + 1
    return out


def test_correct_marker_is_kept_and_renumbered() -> None:
    text, citations = align_citations("Employees get 28 days of paid annual leave [2].", hits())
    assert [c.chunk_id for c in citations] == ["c1"]
    assert text == "Employees get 28 days of paid annual leave. [1]"


def test_wrong_marker_is_replaced_by_the_supporting_passage() -> None:
    text, citations = align_citations("Every full-time employee receives 28 days of paid annual leave. [3]", hits())
    assert [c.chunk_id for c in citations] == ["c1"]
    assert text.endswith("[1]")


def test_missing_marker_gets_the_best_passage_and_unsupported_sentence_gets_none() -> None:
    text, citations = align_citations("Passwords need 14 characters. The moon is made of cheese.", hits())
    assert [c.chunk_id for c in citations] == ["c2"]
    assert text == "Passwords need 14 characters. [1] The moon is made of cheese."


def test_two_sentences_two_passages_in_order_of_use() -> None:
    text, citations = align_citations(
        "Passwords must be 14 characters long [3]. Parental leave is 16 weeks [1].", hits()
    )
    assert [c.chunk_id for c in citations] == ["c2", "c0"]
    assert text == "Passwords must be 14 characters long. [1] Parental leave is 16 weeks. [2]"


def test_support_is_a_share_of_content_words() -> None:
    assert support("28 days annual leave", TEXTS[1]) == 1.0
    assert support("28 days annual leave", TEXTS[2]) == 0.0


def test_must_cite_guardrail_judges_aligned_citations() -> None:
    """An unmarked sentence that a passage supports is cited; an answer no passage supports is held for review."""
    from evals.gate.disabled import DisabledGate
    from pipelines.answer.steps import GateStep
    from prompts.registry import FilePromptRegistry

    registry = FilePromptRegistry()
    step = GateStep(DisabledGate(), registry.guardrails("answer"))
    template = registry.get("answer", 2)  # v2: free text whose [n] markers the step aligns
    passages = hits()
    prompt = registry.render(template, question="q", passages=[{"n": 1, "title": "", "text": TEXTS[1]}], facts=[])
    supported = step.run("How much leave?", "Employees receive 28 days of paid annual leave.", passages, prompt, [], [])
    assert supported.record.decision == "released", supported.record
    unsupported = step.run("How much leave?", "The moon is made of green cheese.", passages, prompt, [], [])
    assert unsupported.record.decision == "review"
    assert any(v.check == "must_cite" for v in unsupported.violations)
