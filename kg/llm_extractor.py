"""Entity and relation extraction by a chat model in JSON mode, validated by pydantic, repaired on failure."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError
from rapidfuzz import fuzz

from core.base import ChatModel
from core.errors import ModelOutputError
from core.types import Chunk, Entity, Extraction, Fact, Mention
from kg.names import entity_id, normalize_name
from prompts.base import PromptTemplate, RenderedPrompt

#: Minimum rapidfuzz ``partial_ratio`` for a paraphrased evidence string to be located in the chunk.
EVIDENCE_MIN_SCORE = 80.0

_MAX_ECHO_CHARS = 3000
_WHITESPACE = re.compile(r"\s+")


def _clean(value: str) -> str:
    return _WHITESPACE.sub(" ", value).strip()


def _name(value: str) -> str:
    value = _clean(value)
    if not normalize_name(value):
        raise ValueError("must contain a letter or digit")
    return value


def _predicate(value: str) -> str:
    value = _clean(value)
    if not value:
        raise ValueError("must not be empty")
    return value


Name = Annotated[str, AfterValidator(_name)]
Predicate = Annotated[str, AfterValidator(_predicate)]


class ExtractedEntity(BaseModel):
    """An entity as the model reports it."""

    name: Name = Field(description="The name exactly as written in the passage.")
    type: str = Field(description="person, organization, place, work, event, date or thing.")
    description: str = ""


class ExtractedRelation(BaseModel):
    """A relation as the model reports it, with the sentence that states it."""

    subject: Name
    predicate: Predicate
    object: Name
    evidence: str = Field(description="The sentence of the passage stating the relation, copied verbatim.")


class ExtractionOutput(BaseModel):
    """The JSON object the extraction prompt asks for."""

    entities: list[ExtractedEntity]
    relations: list[ExtractedRelation]


def locate_evidence(text: str, evidence: str) -> tuple[int, int] | None:
    """Span of ``evidence`` in ``text``: exact, then case-insensitive, then fuzzy (partial ratio >= 80)."""
    needle = evidence.strip().strip("\"'\u201c\u201d")
    if not needle:
        return None
    start = text.find(needle)
    if start >= 0:
        return start, start + len(needle)
    lowered = text.lower()
    if len(lowered) == len(text):
        start = lowered.find(needle.lower())
        if start >= 0:
            return start, start + len(needle)
    alignment = fuzz.partial_ratio_alignment(needle, text, score_cutoff=EVIDENCE_MIN_SCORE)
    if alignment is None or alignment.dest_end <= alignment.dest_start:
        return None
    return alignment.dest_start, alignment.dest_end


def find_mentions(text: str, name: str) -> list[tuple[int, int]]:
    """Every occurrence of ``name`` in ``text`` (case-insensitive, not inside a longer word)."""
    pattern = re.escape(name).replace(r"\ ", r"\s+")
    if name[:1].isalnum() or name[:1] == "_":
        pattern = r"(?<!\w)" + pattern
    if name[-1:].isalnum() or name[-1:] == "_":
        pattern += r"(?!\w)"
    return [(m.start(), m.end()) for m in re.finditer(pattern, text, flags=re.IGNORECASE)]


def _error_summary(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()[:8]]
        more = f" (and {exc.error_count() - 8} more)" if exc.error_count() > 8 else ""
        return f"the JSON does not match the schema: {'; '.join(parts)}{more}"
    if isinstance(exc, json.JSONDecodeError):
        return f"the reply is not valid JSON: {exc.msg} at char {exc.pos}"
    return str(exc)


@dataclass
class _Usage:
    """Tokens of one chunk's model calls; None while the server reported none."""

    prompt: int | None = None
    completion: int | None = None

    def add(self, prompt: int | None, completion: int | None) -> None:
        if prompt is not None:
            self.prompt = (self.prompt or 0) + prompt
        if completion is not None:
            self.completion = (self.completion or 0) + completion

    def stamp(self, extraction: Extraction) -> Extraction:
        return extraction.model_copy(update={"prompt_tokens": self.prompt, "completion_tokens": self.completion})


class LLMExtractor:
    """Extracts entities and relations with a chat model asked for JSON matching :class:`ExtractionOutput`.

    Invalid JSON or a schema violation is sent back to the model with the error (a repair turn), up to
    ``max_retries`` times; if it still fails the :class:`Extraction` carries ``error`` and no content.
    :class:`core.errors.ModelUnavailableError` propagates: an unreachable server must stop ingestion.
    """

    def __init__(
        self,
        client: ChatModel,
        template: PromptTemplate,
        render: Callable[..., RenderedPrompt],
        max_retries: int = 1,
        max_tokens: int | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.client = client
        self.template = template
        self.render = render
        self.max_retries = max_retries
        self.max_tokens = max_tokens
        self.name = f"llm:{template.name}.v{template.version}:{client.model}"
        self.schema: dict[str, Any] = ExtractionOutput.model_json_schema()

    def _ask(self, messages: list[dict[str, str]], usage: _Usage) -> tuple[str, ExtractionOutput | None, str]:
        """One model call: ``(raw reply, parsed output or None, error or "")``; its tokens are added to ``usage``."""
        # The same request as ``ChatModel.chat_json`` (JSON mode constrained by the schema), but keeping
        # the raw reply so that a repair turn can show the model what it wrote.
        result = self.client.chat(messages, json_schema=self.schema, json_mode=True, max_tokens=self.max_tokens)
        usage.add(result.prompt_tokens, result.completion_tokens)
        try:
            value = json.loads(result.text)
            if not isinstance(value, dict):
                raise ModelOutputError("the reply is JSON but not an object")
            return result.text, ExtractionOutput.model_validate(value), ""
        except (json.JSONDecodeError, ValidationError, ModelOutputError) as exc:
            return result.text, None, _error_summary(exc)

    def extract(self, chunk: Chunk) -> Extraction:
        """Entities, mentions and facts of one chunk, or an Extraction with ``error`` after failed repairs; either
        carries the tokens of every call made for it (repair turns included) when the server reported them."""
        messages = self.render(self.template, text=chunk.text).as_messages()
        attempts = self.max_retries + 1
        last_error = ""
        usage = _Usage()
        for _attempt in range(attempts):
            raw, output, last_error = self._ask(messages, usage)
            if output is not None:
                return usage.stamp(self.build_extraction(chunk, output))
            messages = [
                *messages,
                {"role": "assistant", "content": raw[:_MAX_ECHO_CHARS]},
                {
                    "role": "user",
                    "content": f"That reply cannot be used: {last_error}. Reply again with only one JSON "
                    'object with the keys "entities" and "relations" as described, fixing the problem.',
                },
            ]
        return usage.stamp(
            Extraction(
                chunk_id=chunk.id,
                extractor=self.name,
                error=f"{self.name}: no valid extraction after {attempts} attempt(s): {last_error}",
            )
        )

    def build_extraction(self, chunk: Chunk, output: ExtractionOutput) -> Extraction:
        """Turn validated model output into an Extraction: ids, evidence spans and mentions in the chunk text."""
        entities: dict[str, Entity] = {}

        def add(name: str, type_: str = "thing", description: str = "") -> str:
            ent_id = entity_id(name)
            if ent_id not in entities:
                type_ = _clean(type_).lower() or "thing"
                entities[ent_id] = Entity(id=ent_id, name=name, type=type_, description=_clean(description))
            return ent_id

        for item in output.entities:
            add(item.name, item.type, item.description)
        facts: dict[tuple[str, str, str], Fact] = {}
        for rel in output.relations:
            subject_id, object_id = add(rel.subject), add(rel.object)
            key = (subject_id, rel.predicate, object_id)
            if key in facts:
                continue
            span = locate_evidence(chunk.text, rel.evidence)
            facts[key] = Fact(
                subject=entities[subject_id].name,
                predicate=rel.predicate,
                object=entities[object_id].name,
                chunk_id=chunk.id,
                subject_id=subject_id,
                object_id=object_id,
                evidence_start=span[0] if span else None,
                evidence_end=span[1] if span else None,
            )
        mentions: list[Mention] = []
        for ent_id, entity in entities.items():
            spans = find_mentions(chunk.text, entity.name)
            if not spans:  # named by the model but not written verbatim: still mentioned, without a span
                mentions.append(Mention(entity_id=ent_id, chunk_id=chunk.id))
            for start, end in spans:
                mentions.append(Mention(entity_id=ent_id, chunk_id=chunk.id, start=start, end=end))
        return Extraction(
            chunk_id=chunk.id,
            entities=list(entities.values()),
            mentions=mentions,
            facts=list(facts.values()),
            extractor=self.name,
        )
