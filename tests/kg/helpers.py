"""Real documents, chunks and the extraction prompt for the knowledge-graph tests."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from core.text import split_sentences
from core.types import Chunk, Document, sha256_text
from prompts.base import PromptTemplate, RenderedPrompt

REPO = Path(__file__).resolve().parents[2]
MUSIQUE_CORPUS = Path("/work/shared/eval/musique/corpus.jsonl")
EXTRACTION_TEMPLATE = REPO / "prompts" / "templates" / "extraction.v1.yaml"

CURIE_TEXT = (
    "Marie Curie was born in Warsaw. She moved to Paris in 1891. "
    "The University of Chicago was founded by John D. Rockefeller in 1890. "
    "Pierre Curie married Marie Curie in 1895."
)


@cache
def musique_records() -> dict[str, dict[str, str]]:
    """The MuSiQue passages by id (skips the calling test when the shared corpus is absent)."""
    if not MUSIQUE_CORPUS.exists():
        pytest.skip(f"{MUSIQUE_CORPUS} not available")
    records: dict[str, dict[str, str]] = {}
    with MUSIQUE_CORPUS.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            records[record["id"]] = record
    return records


def make_document(doc_id: str, text: str, title: str = "") -> Document:
    return Document(id=doc_id, source=f"test.jsonl#{doc_id}", title=title, text=text, sha256=sha256_text(text))


def chunk_document(document: Document, sentences_per_chunk: int = 2) -> list[Chunk]:
    """Sentence-aligned chunks with ``document.text[start:end] == chunk.text``."""
    sentences = split_sentences(document.text)
    chunks: list[Chunk] = []
    for ordinal, i in enumerate(range(0, len(sentences), sentences_per_chunk)):
        group = sentences[i : i + sentences_per_chunk]
        start, end = group[0][0], group[-1][1]
        text = document.text[start:end]
        chunks.append(
            Chunk(
                id=f"{document.id}#{ordinal}",
                document_id=document.id,
                source=document.source,
                title=document.title,
                text=text,
                start=start,
                end=end,
                ordinal=ordinal,
                sha256=sha256_text(text),
            )
        )
    return chunks


def single_chunk(chunk_id: str, text: str) -> Chunk:
    return Chunk(
        id=chunk_id,
        document_id=chunk_id.split("#")[0],
        source="test",
        text=text,
        start=0,
        end=len(text),
        ordinal=0,
        sha256=sha256_text(text),
    )


def musique_document(record_id: str) -> Document:
    record = musique_records()[record_id]
    return make_document(record["id"], record["text"], record["title"])


def load_extraction_template() -> PromptTemplate:
    """The extraction prompt read straight from its YAML file (as the registry would load it)."""
    raw = EXTRACTION_TEMPLATE.read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(raw)
    return PromptTemplate(
        name=data["name"],
        version=data["version"],
        description=data["description"],
        owner=data["owner"],
        inputs=tuple(data["inputs"]),
        system=data["system"],
        user=data["user"],
        sha256=sha256_text(raw),
    )


_JINJA = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)


def render(template: PromptTemplate, **inputs: Any) -> RenderedPrompt:
    """Render system and user messages with StrictUndefined (a missing input raises)."""
    if set(inputs) != set(template.inputs):
        raise ValueError(f"inputs {sorted(inputs)} != declared {sorted(template.inputs)}")
    messages = (
        {"role": "system", "content": _JINJA.from_string(template.system).render(**inputs)},
        {"role": "user", "content": _JINJA.from_string(template.user).render(**inputs)},
    )
    return RenderedPrompt(
        template=template.ref(),
        messages=messages,
        rendered_sha256=sha256_text(json.dumps(messages, sort_keys=True)),
    )
