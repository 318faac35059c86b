"""Structured answers: a reply that follows the answer prompt's ``output_schema`` (evidence ids, short answer).

The answer prompt (v3) shows the passages' evidence sentences with ids (``2.3``) and asks for a JSON object: the
ids of the sentences that state the answer, then the short answer. The draft the gate judges is the short answer
followed by a marker for each passage its evidence ids name (``Hank Williams Jr. [2][1]``); the ids themselves
give the released citations their sentence-level spans.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.types import Citation
from prompts.constants import ABSTENTION_TEXT
from retrieval.sentences import ShownSentence

_ID = re.compile(r"^\s*\[?(\d{1,3})\.(\d{1,3})\]?\s*$")
#: Short answers that say the passages do not answer (the prompt asks for ``unknown``).
_UNKNOWN = {"", "unknown", "none", "n/a", "not stated", "not given", "not mentioned"}


@dataclass(frozen=True)
class StructuredReply:
    """The model's short answer and the sentence ids it gave as evidence (as written, deduplicated)."""

    answer: str
    evidence: tuple[str, ...]

    @property
    def unknown(self) -> bool:
        return self.answer.strip().strip(".").casefold() in _UNKNOWN

    def passages(self) -> list[int]:
        """The passage numbers the evidence ids name, in order of first mention."""
        numbers = [int(m.group(1)) for e in self.evidence if (m := _ID.match(e))]
        return list(dict.fromkeys(numbers))

    def draft(self) -> str:
        """The text the gate judges: the short answer with a marker per evidence passage, or the abstention."""
        if self.unknown:
            return ABSTENTION_TEXT
        answer = " ".join(self.answer.split())
        return answer + ("" if not self.passages() else " " + "".join(f"[{n}]" for n in self.passages()))


def parse_reply(text: str) -> StructuredReply | None:
    """The reply as a :class:`StructuredReply`; None when it is not a JSON object with a string ``answer``."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("answer"), str):
        return None
    raw = data.get("evidence")
    ids = [m for e in raw if isinstance(e, str) and (m := _ID.match(e))] if isinstance(raw, list) else []
    evidence = [f"{int(m.group(1))}.{int(m.group(2))}" for m in ids]
    return StructuredReply(answer=data["answer"].strip(), evidence=tuple(dict.fromkeys(evidence)))


def sentence_citations(
    citations: Sequence[Citation],
    pointed: Sequence[ShownSentence],
    chunk_of: dict[int, str],
    fallback: dict[str, list[tuple[int, int]]] | None = None,
) -> list[Citation]:
    """Each citation narrowed from its chunk to the sentences that support the answer: those the model pointed at
    in that chunk (``pointed``; ``chunk_of`` maps their passage numbers to chunk ids), else ``fallback`` (chunk
    offsets by chunk id, e.g. the gate's evidence sentences); a citation with neither keeps its chunk span.
    The span runs from the first such sentence to the last, so ``text == document.text[start:end]`` holds."""
    by_chunk: dict[str, list[tuple[int, int]]] = {}
    for sentence in pointed:
        chunk_id = chunk_of.get(sentence.passage)
        if chunk_id is not None:
            by_chunk.setdefault(chunk_id, []).append((sentence.start, sentence.end))
    out = []
    for cited in citations:
        spans = by_chunk.get(cited.chunk_id) or (fallback or {}).get(cited.chunk_id)
        if not spans:
            out.append(cited)
            continue
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        if not 0 <= start < end <= len(cited.text):
            out.append(cited)
            continue
        out.append(
            cited.model_copy(
                update={"start": cited.start + start, "end": cited.start + end, "text": cited.text[start:end]}
            )
        )
    return out
