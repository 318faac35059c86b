"""Writes small PDFs with real text (no PDF library needed), for parser tests: valid ones, and hostile ones."""

from __future__ import annotations

import zlib
from pathlib import Path


def _text_stream(lines: list[str]) -> bytes:
    text_ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
    for line in lines:
        escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        text_ops.append(f"({escaped}) Tj T*")
    text_ops.append("ET")
    return "\n".join(text_ops).encode("latin-1")


def pdf_bytes(stream: bytes, *, flate: bool = False, pages: int = 1) -> bytes:
    """A PDF whose ``pages`` pages all draw one content stream (stored Flate-compressed with ``flate``)."""
    data = zlib.compress(stream, 9) if flate else stream
    filters = b" /Filter /FlateDecode" if flate else b""
    page_ids = range(6, 6 + pages)
    kids = b" ".join(f"{n} 0 R".encode() for n in page_ids)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length " + str(len(data)).encode() + filters + b" >>\nstream\n" + data + b"\nendstream",
        b"<< /Font << /F1 3 0 R >> >>",
    ]
    objects += [
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources 5 0 R >>" for _ in page_ids
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def write_pdf(path: Path, lines: list[str]) -> None:
    path.write_bytes(pdf_bytes(_text_stream(lines)))


def bomb_bytes(inflated: int = 60_000_000) -> bytes:
    """A decompression bomb: a PDF of about 60 KB whose one content stream inflates to ``inflated`` bytes."""
    head, tail = b"BT /F1 12 Tf 72 720 Td (", b") Tj ET"
    return pdf_bytes(head + b"A" * (inflated - len(head) - len(tail)) + tail, flate=True)


def token_bomb_bytes(operators: int = 600_000) -> bytes:
    """A PDF whose content stream (4 MB inflated, a few KB stored) holds more operators than the parser allows."""
    return pdf_bytes(b"BT " + b"(a) Tj " * operators + b"ET", flate=True)
