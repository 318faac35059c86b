"""LLMExtractor: schema, evidence location, conversion, and real llama.cpp servers (Qwen2.5 1.5B, SmolLM2)."""

from __future__ import annotations

import socket

import jinja2
import jinja2.meta
import pytest
import yaml
from pydantic import ValidationError

from core.errors import ModelUnavailableError
from core.llm import ModelClient
from core.types import Extraction
from kg.llm_extractor import ExtractionOutput, LLMExtractor, find_mentions, locate_evidence
from kg.names import entity_id
from tests.kg.helpers import EXTRACTION_TEMPLATE, load_extraction_template, musique_records, render, single_chunk
from tests.scripted_model import ScriptedChatModel

MARGA = "Marga Faulstich was born in Weimar in 1915. She had two siblings."


def _unused_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _offline_client() -> ModelClient:
    """A real client pointed at a loopback port nothing listens on."""
    return ModelClient(base_url=f"http://127.0.0.1:{_unused_port()}/v1", model="nothing-here", timeout_s=5)


def _assert_well_formed(extraction: Extraction, text: str) -> None:
    ids = {e.id for e in extraction.entities}
    assert len(ids) == len(extraction.entities)
    for entity in extraction.entities:
        assert entity.id == entity_id(entity.name)
    for mention in extraction.mentions:
        assert mention.entity_id in ids
        if mention.start is not None and mention.end is not None:
            assert entity_id(text[mention.start : mention.end]) == mention.entity_id
    for fact in extraction.facts:
        assert {fact.subject_id, fact.object_id} <= ids and fact.predicate.strip()
        if fact.evidence_start is not None:
            assert fact.evidence_end is not None and 0 <= fact.evidence_start < fact.evidence_end <= len(text)


def test_template_file_declares_exactly_the_variables_it_uses() -> None:
    data = yaml.safe_load(EXTRACTION_TEMPLATE.read_text(encoding="utf-8"))
    assert set(data) == {"name", "version", "description", "owner", "inputs", "system", "user"}
    assert (data["name"], data["version"], data["owner"], data["inputs"]) == ("extraction", 1, "kg", ["text"])
    env = jinja2.Environment()
    used = set()
    for part in ("system", "user"):
        used |= jinja2.meta.find_undeclared_variables(env.parse(data[part]))
    assert used == {"text"}
    messages = render(load_extraction_template(), text=MARGA).as_messages()
    assert [m["role"] for m in messages] == ["system", "user"]
    assert MARGA in messages[1]["content"] and "relations" in messages[0]["content"]
    with pytest.raises(jinja2.UndefinedError):
        jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(data["user"]).render()


def test_schema_rejects_unusable_output() -> None:
    good = {
        "entities": [{"name": "Weimar", "type": "place"}],
        "relations": [{"subject": "A", "predicate": " was born in ", "object": "Weimar", "evidence": ""}],
    }
    parsed = ExtractionOutput.model_validate(good)
    assert parsed.relations[0].predicate == "was born in"
    for bad in [
        {"entities": []},  # relations missing
        {"entities": [{"name": "--", "type": "thing"}], "relations": []},
        {"entities": [], "relations": [{"subject": "A", "predicate": "  ", "object": "B", "evidence": ""}]},
        {"entities": [{"type": "place"}], "relations": []},
    ]:
        with pytest.raises(ValidationError):
            ExtractionOutput.model_validate(bad)


def test_locate_evidence() -> None:
    text = "Marga Faulstich was born in Weimar in 1915. She had two siblings."
    assert locate_evidence(text, "Marga Faulstich was born in Weimar in 1915.") == (0, 43)
    assert locate_evidence(text, '"she had two siblings."') == (44, 65)
    start, end = locate_evidence(text, "Marga Faulstich was born in Weimar, 1915") or (0, 0)
    assert start <= 2 and "born in Weimar" in text[start:end] and end <= 43
    assert locate_evidence(text, "The stock market crashed in October.") is None
    assert locate_evidence(text, "   ") is None


def test_find_mentions_whole_words_case_insensitive() -> None:
    text = "Jena is near Weimar. JENA has a university; Jenaer Glas is made there."
    assert find_mentions(text, "Jena") == [(0, 4), (21, 25)]
    assert find_mentions(text, "Schott AG") == []


def test_build_extraction_adds_relation_entities_and_spans() -> None:
    extractor = LLMExtractor(_offline_client(), load_extraction_template(), render)
    chunk = single_chunk("marga#0", MARGA)
    output = ExtractionOutput.model_validate(
        {
            "entities": [
                {"name": "Marga Faulstich", "type": "Person", "description": "glass chemist"},
                {"name": "marga faulstich", "type": "person"},
            ],
            "relations": [
                {"subject": "Marga Faulstich", "predicate": "born in", "object": "Weimar", "evidence": MARGA[:43]},
                {"subject": "Marga Faulstich", "predicate": "born in", "object": "Weimar", "evidence": "dup"},
                {"subject": "Marga", "predicate": "has", "object": "two siblings", "evidence": "unrelated words"},
            ],
        }
    )
    extraction = extractor.build_extraction(chunk, output)
    _assert_well_formed(extraction, MARGA)
    assert extraction.error is None and extraction.extractor == "llm:extraction.v1:nothing-here"
    assert [(e.name, e.type) for e in extraction.entities] == [
        ("Marga Faulstich", "person"),
        ("Weimar", "thing"),
        ("Marga", "thing"),
        ("two siblings", "thing"),
    ]
    born, has = extraction.facts
    assert (born.subject_id, born.predicate, born.object_id) == ("ent:marga faulstich", "born in", "ent:weimar")
    assert (born.evidence_start, born.evidence_end, born.chunk_id) == (0, 43, "marga#0")
    assert (has.evidence_start, has.evidence_end) == (None, None)
    spans = {(m.entity_id, m.start, m.end) for m in extraction.mentions}
    assert spans == {
        ("ent:marga faulstich", 0, 15),
        ("ent:weimar", 28, 34),
        ("ent:marga", 0, 5),
        ("ent:two siblings", 52, 64),
    }


def test_an_extraction_carries_the_tokens_of_every_call_made_for_it() -> None:
    """A repair turn costs tokens too; a failed extraction still carries what it cost (fast: the model is scripted)."""
    valid = {"entities": [{"name": "Marga Faulstich", "type": "person"}], "relations": []}
    repaired = LLMExtractor(
        ScriptedChatModel(["not json", valid], usage=(300, 40)), load_extraction_template(), render, max_retries=1
    ).extract(single_chunk("marga#0", MARGA))
    assert repaired.error is None and (repaired.prompt_tokens, repaired.completion_tokens) == (600, 80)
    failed = LLMExtractor(
        ScriptedChatModel(["no", "still no"], usage=(300, 40)), load_extraction_template(), render, max_retries=1
    ).extract(single_chunk("marga#0", MARGA))
    assert failed.error and (failed.prompt_tokens, failed.completion_tokens) == (600, 80)
    unreported = LLMExtractor(ScriptedChatModel([valid]), load_extraction_template(), render).extract(
        single_chunk("marga#0", MARGA)
    )
    assert (unreported.prompt_tokens, unreported.completion_tokens) == (None, None), "no usage: unknown, not 0"


def test_unreachable_server_is_not_swallowed() -> None:
    extractor = LLMExtractor(_offline_client(), load_extraction_template(), render, max_retries=2)
    with pytest.raises(ModelUnavailableError, match="not reachable"):
        extractor.extract(single_chunk("marga#0", MARGA))


def test_smol_model_output_ends_well_formed(smol_client: ModelClient) -> None:
    """SmolLM2-135M cannot follow the schema within 64 tokens: the result is an error, never an exception."""
    text = musique_records()["musdev-00026"]["text"].split(". ")[0] + "."
    extractor = LLMExtractor(smol_client, load_extraction_template(), render, max_retries=1)
    extraction = extractor.extract(single_chunk("musdev-00026#0", text))
    assert extraction.chunk_id == "musdev-00026#0"
    assert extraction.extractor == "llm:extraction.v1:smollm2-135m"
    assert extraction.prompt_tokens and extraction.completion_tokens, "the server's usage is kept (cost)"
    _assert_well_formed(extraction, text)
    if extraction.error is None:
        assert extraction.entities
    else:
        assert "after 2 attempt(s)" in extraction.error
        assert extraction.entities == [] and extraction.facts == [] and extraction.mentions == []


@pytest.mark.slow
def test_qwen_extracts_entities_and_located_relation(qwen_client: ModelClient) -> None:
    text = musique_records()["musdev-00758"]["text"][:43]
    assert text == "Marga Faulstich was born in Weimar in 1915."
    extractor = LLMExtractor(qwen_client, load_extraction_template(), render, max_retries=1, max_tokens=384)
    extraction = extractor.extract(single_chunk("musdev-00758#0", text))
    assert extraction.error is None, extraction.error
    _assert_well_formed(extraction, text)
    ids = {e.id for e in extraction.entities}
    assert {"ent:marga faulstich", "ent:weimar"} <= ids
    marga = [m for m in extraction.mentions if m.entity_id == "ent:marga faulstich"]
    assert [(m.start, m.end) for m in marga] == [(0, 15)]
    located = [f for f in extraction.facts if f.evidence_start is not None and f.evidence_end is not None]
    assert located, extraction.facts
    start, end = located[0].evidence_start, located[0].evidence_end
    assert start is not None and end is not None
    assert located[0].chunk_id == "musdev-00758#0"
    assert "born" in text[start:end]


def test_ingestion_builds_the_extractor_with_its_own_output_budget(smol_server) -> None:  # type: ignore[no-untyped-def]
    """The answer model's 256 tokens cut extraction JSON off mid-string: extraction has its own budget."""
    from core.settings import load_settings
    from pipelines.compose.ingest import build_extractor

    settings = load_settings(
        llm_base_url=smol_server.base_url, llm_model=smol_server.name, extraction={"extractor": "llm"}
    )
    extractor = build_extractor(settings)
    assert isinstance(extractor, LLMExtractor)
    assert extractor.max_tokens == settings.extraction.max_tokens == 1024 > settings.llm_max_tokens
    custom = build_extractor(
        settings.model_copy(update={"extraction": settings.extraction.model_copy(update={"max_tokens": 2048})})
    )
    assert isinstance(custom, LLMExtractor) and custom.max_tokens == 2048
