"""Write: results leave a local run as files. The locks are written in place (each
atomically: temp file beside the lock, then rename), and so are the reports; a GitHub job
publishes a pull request instead (``bot.pipeline.publish_pr``).

Every write goes through :func:`bot.paths.write_text_inside`: a lock path that leads
outside the repository (through a symlink, ``..`` or an absolute path) is refused, never
followed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot.paths import write_text_inside
from bot.results import LockResult


def write_locks(root: Path, results: tuple[LockResult, ...]) -> tuple[str, ...]:
    """Write every changed, non-failed lock (with its per-platform locks and export); return
    the paths written. A failed environment's files are never touched."""
    return write_files(root, {p: t for r in results for p, t in r.files().items()})


def write_files(root: Path, files: Mapping[str, str]) -> tuple[str, ...]:
    """Write each file atomically inside ``root``; return the paths written, in order."""
    for path, text in files.items():
        write_text_inside(root, path, text, source=path)
    return tuple(files)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` (one the user named, such as a report) with ``text`` so a reader sees
    the old file or the new one, never half; a symlink leading out of its folder is refused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_inside(path.parent, path.name, text, source=str(path))
