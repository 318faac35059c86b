"""Find the files an ingestion run reads, reporting (never following) what it must not read.

Hidden files and folders are ignored. A symbolic link is ingested only when it resolves to a regular file inside
the source root; links out of the root, loops and broken links are reported. Links to folders are not followed
(their content is reached through the root itself, or is outside it); a link to a folder that contains it is
reported as a loop. Files larger than the size limit are reported without being read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.ingest.parsers import SkippedSource

MB = 1024 * 1024


@dataclass
class Discovery:
    """The files to read with their file ids, what was skipped, and the ids of files present but skipped."""

    files: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    skipped_ids: set[str] = field(default_factory=set)
    missing_roots: list[str] = field(default_factory=list)


def _size_reason(size: int, limit: int | None) -> str | None:
    if limit is not None and size > limit:
        return (
            f"file is {size / MB:.1f} MB, over the {limit / MB:.1f} MB limit "
            "(raise KGRAG_INGEST__MAX_FILE_BYTES to ingest it)"
        )
    return None


def _link_reason(path: Path, real_root: Path) -> str | None:
    """Why the symbolic link ``path`` must not be read, or None (it resolves to a file inside ``real_root``)."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:
        return "symbolic link loop"
    except FileNotFoundError:
        return "broken symbolic link"
    except OSError as exc:
        return "symbolic link loop" if "loop" in str(exc).lower() else f"unresolvable symbolic link ({exc})"
    if not target.is_relative_to(real_root):
        return f"symbolic link to {target}, outside the source root {real_root}"
    return None


def _stat_reason(info: os.stat_result, limit: int | None) -> str | None:
    """Why a file of this (followed) ``stat`` must not be read, or None."""
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    return _size_reason(info.st_size, limit)


def _check(path: Path, real_root: Path, limit: int | None) -> str | None:
    """Why ``path`` must not be read, or None."""
    if path.is_symlink():
        reason = _link_reason(path, real_root)
        if reason is not None:
            return reason
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    return _stat_reason(info, limit)


def _walk(found: Discovery, root: Path, real_root: Path, limit: int | None) -> None:
    """Every file under ``root``, top-down, each folder's entries by name (what ``os.walk`` with sorted names
    yields), from one ``scandir`` per folder and one ``stat`` per file."""
    pending: list[tuple[str, str]] = [(str(root), "")]  # (folder, its id prefix), a stack: the next folder last
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError:  # an unreadable folder is passed over, as os.walk does
            continue
        here = Path(folder)
        subfolders: list[tuple[str, str]] = []
        files = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if not is_dir:
                files.append(entry)
            elif entry.is_symlink():
                target = Path(os.path.realpath(entry.path))
                if real_root.is_relative_to(target) or Path(os.path.realpath(here)).is_relative_to(target):
                    found.skipped.append(SkippedSource(entry.path, "symbolic link loop (not followed)"))
                elif not target.is_relative_to(real_root):
                    found.skipped.append(
                        SkippedSource(entry.path, f"symbolic link to {target}, outside the source root")
                    )
            else:
                subfolders.append((entry.path, f"{prefix}{entry.name}/"))
        for entry in files:
            path, file_id = here / entry.name, prefix + entry.name
            reason = _link_reason(path, real_root) if entry.is_symlink() else None
            if reason is None:
                try:
                    reason = _stat_reason(entry.stat(), limit)
                except OSError as exc:
                    reason = f"cannot read ({exc.strerror or exc})"
            if reason is None:
                found.files.append((path, file_id))
            else:
                found.skipped.append(SkippedSource(str(path), reason))
                found.skipped_ids.add(file_id)
        pending.extend(reversed(subfolders))


def discover(paths: Sequence[Path], *, max_file_bytes: int | None = None) -> Discovery:
    """Files to ingest with their ids: a file named directly is its name; files under a folder, their relative path."""
    found = Discovery()
    for root in paths:
        if not root.exists() and not root.is_symlink():
            found.skipped.append(SkippedSource(str(root), "does not exist"))
            found.missing_roots.append(str(root))
        elif root.is_dir():
            _walk(found, root, Path(os.path.realpath(root)), max_file_bytes)
        else:
            reason = _check(root, Path(os.path.realpath(root)), max_file_bytes)
            if reason is None:
                found.files.append((root, root.name))
            else:
                found.skipped.append(SkippedSource(str(root), reason))
                found.skipped_ids.add(root.name)
    return found
