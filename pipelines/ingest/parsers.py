"""Turn source files into documents: txt, md, html, pdf, and JSONL records with id/title/text.

A file that cannot be read becomes a :class:`SkippedSource` with its reason; parsing never raises for bad input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DocumentParseError
from core.types import Document, sha256_text

TEXT_SUFFIXES = {".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = set(TEXT_SUFFIXES) | HTML_SUFFIXES | {".pdf", ".jsonl"}


@dataclass(frozen=True)
class SkippedSource:
    """A file (or a JSONL line) that was not ingested, and why."""

    source: str
    reason: str


@dataclass
class ParsedSource:
    """The documents one file yielded, and the parts of it that were skipped."""

    documents: list[Document] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)


def _decode(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentParseError(f"{path}: binary file", hint="only txt, md, html, pdf and jsonl are ingested")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentParseError(
            f"{path}: not valid UTF-8 (byte {exc.start})",
            hint="convert the file to UTF-8 and ingest it again",
        ) from exc


def _markdown_title(text: str) -> str:
    match = re.search(r"^#\s+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def _html_text(raw: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(raw, "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    title = soup.title.get_text(strip=True) if soup.title else ""
    if soup.title:
        soup.title.decompose()
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in soup.get_text("\n").splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise DocumentParseError(f"{path}: unreadable PDF ({exc})", hint="check that the file is a valid PDF") from exc
    return "\n\n".join(p for p in pages if p)


def _document(doc_id: str, source: str, title: str, text: str, media_type: str) -> Document:
    return Document(
        id=doc_id,
        source=source,
        title=title,
        text=text,
        sha256=sha256_text(title + "\x00" + text),
        media_type=media_type,
    )


def _parse_jsonl(path: Path, raw: str, doc_id_prefix: str) -> ParsedSource:
    parsed = ParsedSource()
    seen: set[str] = set()
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            parsed.skipped.append(SkippedSource(where, f"invalid JSON ({exc.msg})"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            parsed.skipped.append(SkippedSource(where, "record needs a string field 'text'"))
            continue
        text = record["text"].strip()
        if not text:
            parsed.skipped.append(SkippedSource(where, "empty text"))
            continue
        record_id = str(record.get("id") or f"{doc_id_prefix}:{number}")
        if record_id in seen:
            parsed.skipped.append(SkippedSource(where, f"duplicate id {record_id!r} in this file"))
            continue
        seen.add(record_id)
        title = str(record.get("title") or "")
        parsed.documents.append(_document(record_id, f"{path}#{record_id}", title, text, "text/plain"))
    return parsed


def parse_file(path: Path, doc_id: str) -> ParsedSource:
    """Parse one file into documents. ``doc_id`` is used for single-document files."""
    suffix = path.suffix.lower()
    try:
        if suffix not in SUPPORTED_SUFFIXES:
            raise DocumentParseError(
                f"{path}: unsupported file type {suffix or '(none)'!r}",
                hint=f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}",
            )
        try:
            if suffix == ".pdf":
                text, title, media = _pdf_text(path), path.stem, "application/pdf"
            else:
                raw = _decode(path, path.read_bytes())
                if suffix == ".jsonl":
                    return _parse_jsonl(path, raw, doc_id)
                if suffix in HTML_SUFFIXES:
                    title, text = _html_text(raw)
                    title, media = title or path.stem, "text/html"
                else:
                    text, media = raw.strip(), TEXT_SUFFIXES[suffix]
                    title = _markdown_title(text) or path.stem
        except OSError as exc:
            raise DocumentParseError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if not text.strip():
            raise DocumentParseError(f"{path}: empty document")
    except DocumentParseError as exc:
        return ParsedSource(skipped=[SkippedSource(str(path), str(exc))])
    return ParsedSource(documents=[_document(doc_id, str(path), title, text, media)])
