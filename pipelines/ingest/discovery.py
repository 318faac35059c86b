"""Find the files an ingestion run reads, reporting (never following) what it must not read.

Hidden files and folders are ignored. A symbolic link is ingested only when it resolves to a regular file inside
the source root; links out of the root, loops and broken links are reported. Links to folders are not followed
(their content is reached through the root itself, or is outside it); a link to a folder that contains it is
reported as a loop. Files larger than the size limit are reported without being read.
"""

from __future__ import annotations

import os
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


def _check(path: Path, real_root: Path, limit: int | None) -> str | None:
    """Why ``path`` must not be read, or None."""
    if path.is_symlink():
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
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read ({exc.strerror or exc})"
    if not os.path.isfile(path):
        return "not a regular file"
    return _size_reason(info.st_size, limit)


def discover(paths: Sequence[Path], *, max_file_bytes: int | None = None) -> Discovery:
    """Files to ingest with their ids: a file named directly is its name; files under a folder, their relative path."""
    found = Discovery()
    for root in paths:
        if not root.exists() and not root.is_symlink():
            found.skipped.append(SkippedSource(str(root), "does not exist"))
            found.missing_roots.append(str(root))
        elif root.is_dir():
            real_root = Path(os.path.realpath(root))
            for folder, dirnames, filenames in os.walk(root):
                here = Path(folder)
                kept = []
                for name in sorted(dirnames):
                    if name.startswith("."):
                        continue
                    sub = here / name
                    if sub.is_symlink():
                        target = Path(os.path.realpath(sub))
                        if real_root.is_relative_to(target) or Path(os.path.realpath(here)).is_relative_to(target):
                            found.skipped.append(SkippedSource(str(sub), "symbolic link loop (not followed)"))
                        elif not target.is_relative_to(real_root):
                            found.skipped.append(
                                SkippedSource(str(sub), f"symbolic link to {target}, outside the source root")
                            )
                        continue
                    kept.append(name)
                dirnames[:] = kept
                for name in sorted(filenames):
                    if name.startswith("."):
                        continue
                    path = here / name
                    file_id = path.relative_to(root).as_posix()
                    reason = _check(path, real_root, max_file_bytes)
                    if reason is None:
                        found.files.append((path, file_id))
                    else:
                        found.skipped.append(SkippedSource(str(path), reason))
                        found.skipped_ids.add(file_id)
        else:
            reason = _check(root, Path(os.path.realpath(root)), max_file_bytes)
            if reason is None:
                found.files.append((root, root.name))
            else:
                found.skipped.append(SkippedSource(str(root), reason))
                found.skipped_ids.add(root.name)
    return found
