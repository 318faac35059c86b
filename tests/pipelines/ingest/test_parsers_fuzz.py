"""Fuzzing the parsers with malformed and hostile files: each one parses or becomes a clear skip reason of our own
(a DocumentParseError inside ``parse_file``); no other exception, no parser library's message, no NUL or lone
surrogate in what is stored. A seeded generator, so a failure reproduces."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.ingest import parsers
from pipelines.ingest.parsers import parse_file
from tests.pipelines.ingest.pdfmaker import bomb_bytes, pdf_bytes, token_bomb_bytes

SEED = 20
HTML = (
    b"<!doctype html><html><head><title>Leave policy</title><style>p{}</style></head>"
    b"<body><h1>Leave</h1><p>Staff get 28 days of leave.</p><script>x()</script></body></html>"
)
MARKDOWN = b"# Leave policy\n\nStaff get 28 days of paid leave. Carry-over is 5 days.\n"
JSONL = b'{"id": "a", "title": "A", "text": "Alpha text."}\n{"id": "b", "text": "Beta text."}\n'
PDF = pdf_bytes(b"BT /F1 12 Tf 72 720 Td (Staff get 28 days of leave.) Tj ET", flate=True, pages=2)
VALID = {".html": HTML, ".md": MARKDOWN, ".txt": MARKDOWN, ".jsonl": JSONL, ".pdf": PDF}


def _common(rng: random.Random) -> Iterator[tuple[str, bytes]]:
    """Hostile bytes that any format may receive."""
    yield "empty", b""
    yield "blank", b" \n\t\r\n"
    yield "nul", b"\x00" * 1000
    yield "nul-late", b"Some text. " * 1000 + b"\x00tail"
    yield "bom-only", b"\xef\xbb\xbf"
    yield "invalid-utf8", b"caf\xe9 \xff\xfe \xc3\x28 \xed\xa0\x80"
    yield "garbage", rng.randbytes(4096)
    yield "huge-line", b"word " * 400_000
    yield "huge-spaces", b"#" + b" " * 2_000_000 + b"x"
    yield "hash-newlines", b"#" + b"\n" * 200_000 + b"#\t\n" * 10_000


def _mutations(rng: random.Random, data: bytes, count: int) -> Iterator[tuple[str, bytes]]:
    """Truncations, byte flips, NULs and spliced garbage of a valid file."""
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield f"truncated-{i}", data[: rng.randrange(len(data))]
        elif kind == 1:
            flipped = bytearray(data)
            for _ in range(rng.randint(1, 8)):
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
            yield f"flipped-{i}", bytes(flipped)
        elif kind == 2:
            at = rng.randrange(len(data))
            yield f"nul-{i}", data[:at] + b"\x00" + data[at:]
        else:
            at = rng.randrange(len(data))
            yield f"spliced-{i}", data[:at] + rng.randbytes(rng.randint(1, 64)) + data[at:]


def _specific(suffix: str) -> Iterator[tuple[str, bytes]]:
    if suffix == ".pdf":
        yield "bomb", bomb_bytes()
        yield "token-bomb", token_bomb_bytes()
        yield "header-only", b"%PDF-1.7\n"
        yield "no-xref", PDF[: PDF.index(b"xref")]
        yield "nested-arrays", PDF.replace(b"/MediaBox [0 0 612 792]", b"/MediaBox " + b"[" * 50_000 + b"]" * 50_000)
        yield "huge-length", PDF.replace(b"/Length ", b"/Length 99999999999", 1)
        yield "self-parent", PDF.replace(b"/Parent 2 0 R", b"/Parent 6 0 R")
        yield "cyclic-pages", PDF.replace(b"/Kids [6 0 R", b"/Kids [2 0 R 6 0 R")
        yield "nul-text", pdf_bytes(b"BT /F1 12 Tf 72 720 Td (a\\000b\x00c) Tj ET")
        yield "encrypted", PDF.replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt << /Filter /Standard /V 9 >>")
    elif suffix == ".html":
        yield "deep-nesting", b"<div>" * 100_000 + b"deep" + b"</div>" * 100_000
        yield "unclosed", b"<html><body><p><b><i>" * 5_000 + b"text"
        yield "bad-declarations", b"<!DOCTYPE<!ELEMENT <![CDATA[x<![if !IE]><!-- -- --!><?php ?><p>text</p>"
        yield "marked-section", b"<![ x"
        yield "script-unterminated", b"<p>text</p><script>" + b"x" * 100_000
        yield "entities", b"<p>&#0; &#x110000; &#xD800; &#99999999999; &amp &nbsp;text</p>"
        yield "huge-attribute", b'<p title="' + b"a" * 1_000_000 + b'">text</p>'
    elif suffix == ".jsonl":
        yield "deep-json", b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n"
        yield "surrogates", b'{"id": "\\ud800", "title": "\\udfff", "text": "lone \\ud800 surrogate"}\n'
        yield "nul-escapes", b'{"id": "x\\u0000y", "text": "\\u0000\\u0000"}\n{"id": "z", "text": "a\\u0000b"}\n'
        yield "not-objects", b'[1, 2]\n"text"\nnull\n1e999999\n{"text": 5}\n{"text": {"a": 1}}\n'
        yield "huge-number", b'{"id": ' + b"9" * 5000 + b', "text": "digits"}\n'
        yield "huge-record", b'{"text": "' + b"a" * 5_000_000 + b'"}\n'
    else:
        yield "deep-markdown", b"> " * 100_000 + b"quote\n" + b"- " * 100_000 + b"item\n"
        yield "title-only-hashes", b"#\n##\n###\n" * 50_000


def _cases() -> Iterator[tuple[str, str, bytes]]:
    rng = random.Random(SEED)
    for suffix, valid in VALID.items():
        for name, data in _common(rng):
            yield suffix, name, data
        for name, data in _mutations(rng, valid, 40):
            yield suffix, name, data
        for name, data in _specific(suffix):
            yield suffix, name, data


@pytest.mark.parametrize("suffix", sorted(VALID))
def test_hostile_files_parse_or_are_skipped_with_our_reason(
    suffix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="kgrag.ingest")
    outcomes = {"parsed": 0, "skipped": 0}
    for case_suffix, name, data in _cases():
        if case_suffix != suffix:
            continue
        path = tmp_path / f"{name}{suffix}"
        path.write_bytes(data)
        parsed = parse_file(path, path.name)  # must not raise
        for doc in parsed.documents:
            for value in (doc.id, doc.title, doc.text, doc.source):
                assert "\x00" not in value, (name, value[:80])
                value.encode("utf-8")  # no lone surrogates: the stores could not write it
            assert doc.text.strip(), name
        for skip in parsed.skipped:
            assert skip.reason.strip() and "Traceback" not in skip.reason, (name, skip.reason)
            assert "see the log" not in skip.reason, f"{name}: an error escaped the parser's own handling"
            assert len(skip.reason) < 400, (name, skip.reason)
        outcomes["parsed" if parsed.documents else "skipped"] += 1
        path.unlink()
    # the fuzzing reached both outcomes, and no parser failure fell through to parse_file's last-resort net
    assert outcomes["parsed"] > 0 and outcomes["skipped"] > 0, outcomes
    assert not [r for r in caplog.records if "parsing failed" in r.getMessage()]


def test_hostile_pdfs_are_skipped_with_a_clear_reason(tmp_path: Path) -> None:
    reasons = {}
    for name, data in [("bomb", bomb_bytes()), ("tokens", token_bomb_bytes()), ("truncated", PDF[:300])]:
        path = tmp_path / f"{name}.pdf"
        path.write_bytes(data)
        parsed = parse_file(path, path.name)
        assert parsed.documents == [], name
        (skip,) = parsed.skipped
        reasons[name] = skip.reason
    assert len(bomb_bytes()) < 100_000
    assert "decompression bomb" in reasons["bomb"] and "32 MiB" in reasons["bomb"]
    assert "decompression bomb" in reasons["tokens"]
    assert reasons["truncated"] == f"{tmp_path / 'truncated.pdf'}: unreadable PDF (check that the file is a valid PDF)"


def test_pdf_text_over_the_limit_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "many-pages.pdf"
    path.write_bytes(pdf_bytes(b"BT /F1 12 Tf 72 720 Td (" + b"word " * 200 + b") Tj ET", pages=5))
    (doc,) = parse_file(path, path.name).documents
    monkeypatch.setattr(parsers, "PDF_MAX_TEXT_CHARS", len(doc.text) // 2)  # two and a half of five pages
    (skip,) = parse_file(path, path.name).skipped
    assert "text is over" in skip.reason


def test_nul_and_surrogates_are_cleaned_from_jsonl_records(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b'{"id": "a\\u0000b", "title": "T\\ud800", "text": "x\\u0000y \\udfff"}\n{"text": "\\u0000"}\n')
    parsed = parse_file(path, "odd.jsonl")
    (doc,) = parsed.documents
    assert (doc.id, doc.title, doc.text) == ("ab", "T?", "xy ?")
    assert [s.reason for s in parsed.skipped] == ["empty text"]
