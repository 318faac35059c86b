"""Turn source files into documents: txt, md, html, pdf, and JSONL records with id/title/text.

A file that cannot be read becomes a :class:`SkippedSource` with its reason; parsing never raises for bad input.
A reason is our own words (it reaches API clients); a parser library's exception text goes to the log only.

Limits: every file is under ``KGRAG_INGEST__MAX_FILE_BYTES`` before it gets here (discovery, uploads). A PDF is read
under explicit pypdf limits (:data:`PDF_MAX_STREAM_BYTES` per decoded stream, instead of pypdf's 75 MB defaults) and
yields at most :data:`PDF_MAX_TEXT_CHARS` characters, so a small file that inflates to gigabytes (a decompression
bomb) is skipped, not parsed. html.parser and the markdown/text readers have no size limits of their own; they are
linear in the file size.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import DocumentParseError
from core.types import Document, sha256_text

log = logging.getLogger("kgrag.ingest")

TEXT_SUFFIXES = {".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}
HTML_SUFFIXES = {".html", ".htm"}
SUPPORTED_SUFFIXES = set(TEXT_SUFFIXES) | HTML_SUFFIXES | {".pdf", ".jsonl"}

#: Most bytes one PDF stream may decode to (every filter: Flate, LZW, run-length, Brotli, JBIG2; array-based
#: content and declared /Length too). A text PDF's page and font streams are far smaller.
PDF_MAX_STREAM_BYTES = 32 * 1024 * 1024
#: Most operands and operators one PDF content stream may hold (pypdf's default is 2,000,000; a dense text page
#: has a few thousand).
PDF_MAX_STREAM_TOKENS = 500_000
#: Most characters of text one PDF may yield (pages that all draw one large stream add up).
PDF_MAX_TEXT_CHARS = 64 * 1024 * 1024


def pdf_limits() -> dict[str, Any]:
    """The pypdf :class:`~pypdf.Configuration` overrides every PDF is read under."""
    return {
        "maximum_declared_stream_length": PDF_MAX_STREAM_BYTES,
        "array_based_stream_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "zlib_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "lzw_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "run_length_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "brotli_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "jbig2_maximum_output_length": PDF_MAX_STREAM_BYTES,
        "image_maximum_buffer_size": PDF_MAX_STREAM_BYTES,
        "stream_decoding_work_maximum_length": 4 * PDF_MAX_STREAM_BYTES,
        "xfa_decoding_work_maximum_length": 4 * PDF_MAX_STREAM_BYTES,
        "stream_parsing_work_maximum_count": PDF_MAX_STREAM_TOKENS,
        "jbig2dec_binary": None,  # never run an external decoder on an untrusted file
    }


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
    if b"\x00" in data:
        raise DocumentParseError(f"{path}: binary file", hint="only txt, md, html, pdf and jsonl are ingested")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DocumentParseError(
            f"{path}: not valid UTF-8 (byte {exc.start})",
            hint="convert the file to UTF-8 and ingest it again",
        ) from exc


def _markdown_title(text: str) -> str:
    match = re.search(r"^#[ \t]+(.+)$", text, flags=re.MULTILINE)
    return match.group(1).strip() if match else ""


def _unreadable(path: Path, what: str, exc: BaseException, hint: str) -> DocumentParseError:
    """Our error for a file a parser library failed on; its exception text is logged, not shown."""
    log.info("%s: %s: %s: %s", path, what, type(exc).__name__, str(exc)[:500])
    return DocumentParseError(f"{path}: {what}", hint=hint)


def _html_text(path: Path, raw: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    try:
        soup = BeautifulSoup(raw, "html.parser")
        for tag in soup(["script", "style", "noscript", "template"]):
            tag.decompose()
        title = soup.title.get_text(strip=True) if soup.title else ""
        if soup.title:
            soup.title.decompose()
        body = soup.get_text("\n")
    except Exception as exc:  # html.parser and bs4 fail in many ways on hostile markup (e.g. nesting depth)
        raise _unreadable(path, "unreadable HTML", exc, "check that the file is valid HTML") from exc
    lines = [re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in body.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    return title, text


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    pages: list[str] = []
    total = 0
    try:
        with apply_configuration(**pdf_limits()):
            reader = PdfReader(str(path))
            for page in reader.pages:
                text = (page.extract_text() or "").strip()
                total += len(text)
                if total > PDF_MAX_TEXT_CHARS:
                    raise DocumentParseError(
                        f"{path}: the PDF's text is over {PDF_MAX_TEXT_CHARS:,} characters",
                        hint="split the document into smaller files",
                    )
                pages.append(text)
    except DocumentParseError:
        raise
    except OSError as exc:
        raise DocumentParseError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except LimitReachedError as exc:
        raise _unreadable(
            path,
            f"the PDF exceeds a safety limit (a stream inflating past {PDF_MAX_STREAM_BYTES // 2**20} MiB, or "
            f"over {PDF_MAX_STREAM_TOKENS:,} operators); it may be a decompression bomb",
            exc,
            "re-save the PDF with a PDF tool, or split it into smaller files",
        ) from exc
    except FileNotDecryptedError as exc:
        raise _unreadable(path, "the PDF is encrypted", exc, "upload an unencrypted copy") from exc
    except Exception as exc:  # pypdf raises many kinds of errors on malformed files; none may end the run
        raise _unreadable(path, "unreadable PDF", exc, "check that the file is a valid PDF") from exc
    return "\n\n".join(p for p in pages if p)


def _clean(value: str) -> str:
    """``value`` without NUL characters and with lone surrogates (from JSON escapes) replaced, so it can be stored."""
    value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _document(doc_id: str, source: str, title: str, text: str, media_type: str) -> Document:
    doc_id, source, title, text = _clean(doc_id), _clean(source), _clean(title), _clean(text)
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
        except ValueError:  # e.g. an integer over Python's 4,300-digit conversion limit
            parsed.skipped.append(SkippedSource(where, "invalid JSON (a number is too long)"))
            continue
        except RecursionError:
            parsed.skipped.append(SkippedSource(where, "invalid JSON (nested too deeply)"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            parsed.skipped.append(SkippedSource(where, "record needs a string field 'text'"))
            continue
        text = _clean(record["text"]).strip()
        if not text:
            parsed.skipped.append(SkippedSource(where, "empty text"))
            continue
        record_id = _clean(str(record.get("id") or f"{doc_id_prefix}:{number}"))
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
                    title, text = _html_text(path, raw)
                    title, media = title or path.stem, "text/html"
                else:
                    text, media = raw.strip(), TEXT_SUFFIXES[suffix]
                    title = _markdown_title(text) or path.stem
        except OSError as exc:
            raise DocumentParseError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        text = _clean(text)
        if not text.strip():
            raise DocumentParseError(f"{path}: empty document")
    except DocumentParseError as exc:
        return ParsedSource(skipped=[SkippedSource(str(path), str(exc))])
    except Exception as exc:  # a parser bug must not end a run: the file is skipped, and logged
        log.warning("%s: parsing failed: %s: %s", path, type(exc).__name__, str(exc)[:500])
        return ParsedSource(skipped=[SkippedSource(str(path), f"{path}: could not be parsed (see the log)")])
    return ParsedSource(documents=[_document(doc_id, str(path), title, text, media)])
