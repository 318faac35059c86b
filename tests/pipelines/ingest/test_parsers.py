"""Every supported format parses; bad files become skip reasons, never exceptions."""

from __future__ import annotations

from pathlib import Path

from pipelines.ingest.parsers import parse_file
from tests.pipelines.ingest.pdfmaker import write_pdf

DATA = Path(__file__).resolve().parents[3] / "data"


def test_markdown_title_and_text() -> None:
    parsed = parse_file(DATA / "employee-handbook.md", "employee-handbook.md")
    assert not parsed.skipped
    (doc,) = parsed.documents
    assert doc.title == "Northwind Robotics Employee Handbook"
    assert "28 days of paid annual leave" in doc.text
    assert doc.media_type == "text/markdown"


def test_html_drops_scripts_and_keeps_title() -> None:
    (doc,) = parse_file(DATA / "onboarding.html", "onboarding.html").documents
    assert doc.title == "Onboarding at Northwind Robotics"
    assert "Mei Lin Tan" in doc.text
    assert "console.log" not in doc.text and "font-family" not in doc.text


def test_jsonl_records_become_documents_and_bad_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        '{"id": "a", "title": "A", "text": "Alpha text."}\n'
        "not json at all\n"
        '{"id": "b", "text": ""}\n'
        '{"title": "no text"}\n'
        '{"id": "a", "text": "duplicate id"}\n'
        '{"id": "c", "text": "Gamma text."}\n',
        "utf-8",
    )
    parsed = parse_file(path, "mixed.jsonl")
    assert [d.id for d in parsed.documents] == ["a", "c"]
    assert parsed.documents[0].source == f"{path}#a"
    reasons = {s.source.rsplit(":", 1)[1]: s.reason for s in parsed.skipped}
    assert reasons["2"].startswith("invalid JSON")
    assert reasons["3"] == "empty text"
    assert "text" in reasons["4"]
    assert "duplicate id" in reasons["5"]


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    path = tmp_path / "memo.pdf"
    write_pdf(path, ["Quarterly memo.", "Revenue grew by 12 percent in Lisbon."])
    (doc,) = parse_file(path, "memo.pdf").documents
    assert "Revenue grew by 12 percent in Lisbon." in doc.text
    assert doc.media_type == "application/pdf"


def test_bad_files_are_skipped_with_reasons(tmp_path: Path) -> None:
    cases = {
        "binary.txt": b"\x00\x01\x02binary",
        "latin1.txt": "caf\xe9".encode("latin-1"),
        "empty.md": b"   \n",
        "broken.pdf": b"%PDF-1.4 this is not really a pdf",
        "image.png": b"\x89PNG\r\n",
    }
    expected = {
        "binary.txt": "binary file",
        "latin1.txt": "not valid UTF-8",
        "empty.md": "empty document",
        "broken.pdf": "PDF",
        "image.png": "unsupported file type",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        parsed = parse_file(tmp_path / name, name)
        assert parsed.documents == [], name
        (skip,) = parsed.skipped
        assert expected[name] in skip.reason, (name, skip.reason)


def test_unreadable_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "folder.txt"
    path.mkdir()
    (skip,) = parse_file(path, "folder.txt").skipped
    assert "cannot read" in skip.reason
