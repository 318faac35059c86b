"""Split a document into sentence-aligned chunks whose character spans index into the document text."""

from __future__ import annotations

from collections.abc import Iterator

from core.text import sentence_spans, trimmed_spans
from core.types import Chunk, Document, sha256_text


def _split_long(text: str, start: int, end: int, max_chars: int) -> Iterator[tuple[int, int]]:
    """Cut a span longer than ``max_chars`` at whitespace (or hard, if it has none)."""
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        cut = cut if cut > start else start + max_chars
        yield from trimmed_spans(text, start, cut)
        start = cut
    yield from trimmed_spans(text, start, end)


def chunk_document(document: Document, *, max_chars: int = 1000, min_chars: int = 200) -> list[Chunk]:
    """Greedily pack whole sentences into chunks of at most ``max_chars``; never cut a sentence unless it alone is
    longer than ``max_chars``. A trailing chunk shorter than ``min_chars`` is merged into the previous one when the
    result still fits."""
    text = document.text
    pieces = [p for s, e in sentence_spans(text) for p in _split_long(text, s, e, max_chars)]
    spans: list[tuple[int, int]] = []
    for start, end in pieces:
        if spans and end - spans[-1][0] <= max_chars:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    if len(spans) > 1 and spans[-1][1] - spans[-1][0] < min_chars and spans[-1][1] - spans[-2][0] <= max_chars:
        spans[-2:] = [(spans[-2][0], spans[-1][1])]
    chunks: list[Chunk] = []
    seen: dict[str, int] = {}
    for ordinal, (start, end) in enumerate(spans):
        piece = text[start:end]
        digest = sha256_text(piece)
        base = sha256_text(f"{document.id}\x00{digest}")[:16]
        repeat = seen.get(base, 0)
        seen[base] = repeat + 1
        chunks.append(
            Chunk(
                id=base if repeat == 0 else f"{base}-{repeat}",
                document_id=document.id,
                source=document.source,
                title=document.title,
                text=piece,
                start=start,
                end=end,
                ordinal=ordinal,
                sha256=digest,
            )
        )
    return chunks
