"""The upload area: document ids from file names, all-or-nothing staging, and removal on delete (no server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InputError, UnsupportedMediaTypeError
from pipelines.jobs.documents import UploadArea, UploadedFile, check_name


def test_names_become_safe_document_ids() -> None:
    assert check_name(" hr\\leave policy.md ") == "hr/leave policy.md"
    assert check_name("Überblick.md") == "Überblick.md"
    for bad in ("../x.md", ".env.md", "a/./b.md", "x/a\n/b.md", "a//b.md", "x.md.", "/" * 3, "a" * 300 + ".md"):
        with pytest.raises(InputError, match="cannot be used as a document id"):
            check_name(bad)
    with pytest.raises(UnsupportedMediaTypeError, match="'.docx'"):
        check_name("report.docx")
    assert check_name("faq/parking", what="document id", need_suffix=False) == "faq/parking"


def test_accept_is_all_or_nothing_and_forget_removes_or_rewrites(tmp_path: Path) -> None:
    area = UploadArea(tmp_path)
    with pytest.raises(InputError, match="'b.jsonl': 1 record"):
        area.accept(
            [UploadedFile("a.md", b"# A\n\nText."), UploadedFile("b.jsonl", b'{"id": "x", "text": "t"}\nnope\n')]
        )
    assert not (tmp_path / "uploads" / "a.md").exists() and not list((tmp_path / "uploads" / ".staging").iterdir())
    lines = [json.dumps({"id": i, "text": f"text {i}"}) for i in ("r1", "r2")]
    ids = area.accept([UploadedFile("a.md", b"# A\n\nText."), UploadedFile("set.jsonl", "\n".join(lines).encode())])
    assert ids == ["a.md", "r1", "r2"]
    assert area.accept_texts([("notes/n1", "Note", "Hello.")]) == ["notes/n1"]
    assert (tmp_path / "uploads" / "notes" / "n1.jsonl").is_file()
    touched = area.forget(
        {"a.md": ["a.md"], "set.jsonl": ["r1", "r2"], "other.md": ["other.md"], "notes/n1.jsonl": ["notes/n1"]},
        {"a.md", "r1", "notes/n1"},
    )
    assert sorted(touched) == ["a.md", "notes/n1.jsonl", "set.jsonl"]
    assert not (tmp_path / "uploads" / "a.md").exists() and not (tmp_path / "uploads" / "notes" / "n1.jsonl").exists()
    kept = (tmp_path / "uploads" / "set.jsonl").read_text("utf-8").splitlines()
    assert [json.loads(line)["id"] for line in kept] == ["r2"]
