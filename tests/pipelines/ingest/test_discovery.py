"""What discovery finds in a tree: file order and ids, hidden entries, symbolic links, sizes, special files."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.ingest.discovery import discover


def make_tree(tmp_path: Path) -> tuple[Path, Path]:
    src, outside = tmp_path / "src", tmp_path / "outside"
    (src / "b" / "deep").mkdir(parents=True)
    (src / "a").mkdir()
    (src / ".hidden").mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("outside", "utf-8")
    (outside / "folder").mkdir()
    for rel in ("z.txt", "m.md", "a/one.txt", "b/two.txt", "b/deep/three.txt", ".hidden/no.txt", "a/.dot.txt"):
        (src / rel).write_text(rel, "utf-8")
    (src / "big.txt").write_bytes(b"x" * 2048)
    os.symlink(src / "z.txt", src / "a" / "alias.txt")  # inside the root: read
    os.symlink(outside / "secret.txt", src / "escape.txt")
    os.symlink(src / "loop-b.txt", src / "loop-a.txt")
    os.symlink(src / "loop-a.txt", src / "loop-b.txt")
    os.symlink(src / "gone.txt", src / "broken.txt")
    os.symlink(src, src / "b" / "again")  # a folder link to a folder that contains it
    os.symlink(outside / "folder", src / "elsewhere")
    os.symlink(src / "a", src / "b" / "sideways")  # inside the root: not followed, not reported
    os.mkfifo(src / "pipe.txt")
    return src, outside


def test_a_tree_is_walked_in_order_with_every_reason(tmp_path: Path) -> None:
    src, outside = make_tree(tmp_path)
    found = discover([src], max_file_bytes=1024)
    assert found.files == [
        (src / "m.md", "m.md"),
        (src / "z.txt", "z.txt"),
        (src / "a" / "alias.txt", "a/alias.txt"),
        (src / "a" / "one.txt", "a/one.txt"),
        (src / "b" / "two.txt", "b/two.txt"),
        (src / "b" / "deep" / "three.txt", "b/deep/three.txt"),
    ]
    assert [(Path(s.source).relative_to(src).as_posix(), s.reason) for s in found.skipped] == [
        ("elsewhere", f"symbolic link to {outside / 'folder'}, outside the source root"),
        ("big.txt", "file is 0.0 MB, over the 0.0 MB limit (raise KGRAG_INGEST__MAX_FILE_BYTES to ingest it)"),
        ("broken.txt", "broken symbolic link"),
        ("escape.txt", f"symbolic link to {outside / 'secret.txt'}, outside the source root {src}"),
        ("loop-a.txt", "symbolic link loop"),
        ("loop-b.txt", "symbolic link loop"),
        ("pipe.txt", "not a regular file"),
        ("b/again", "symbolic link loop (not followed)"),
    ]
    assert found.skipped_ids == {"big.txt", "broken.txt", "escape.txt", "loop-a.txt", "loop-b.txt", "pipe.txt"}
    assert found.missing_roots == []


def test_files_named_directly_and_missing_roots(tmp_path: Path) -> None:
    src, _ = make_tree(tmp_path)
    found = discover(
        [src / "a" / "one.txt", src / "escape.txt", src / "broken.txt", tmp_path / "nope"], max_file_bytes=None
    )
    # a link named directly is read wherever it points; its id is its own name
    assert found.files == [(src / "a" / "one.txt", "one.txt"), (src / "escape.txt", "escape.txt")]
    assert [(s.source, s.reason) for s in found.skipped] == [
        (str(src / "broken.txt"), "broken symbolic link"),
        (str(tmp_path / "nope"), "does not exist"),
    ]
    assert found.skipped_ids == {"broken.txt"}
    assert found.missing_roots == [str(tmp_path / "nope")]


def test_an_unreadable_folder_is_passed_over(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "locked").mkdir(parents=True)
    (src / "locked" / "x.txt").write_text("x", "utf-8")
    (src / "ok.txt").write_text("ok", "utf-8")
    (src / "locked").chmod(0)
    try:
        found = discover([src])
    finally:
        (src / "locked").chmod(0o755)
    if os.geteuid() == 0:  # root reads it anyway
        assert [i for _, i in found.files] == ["ok.txt", "locked/x.txt"]
    else:
        assert [i for _, i in found.files] == ["ok.txt"]
    assert found.skipped == []
