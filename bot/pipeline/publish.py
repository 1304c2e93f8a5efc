"""Publish: results leave the pipeline. For a local run, that is the locks written in place
(each atomically: temp file beside the lock, then rename) and the reports; for a GitHub job,
the pull request (``bot.pipeline.publish_pr``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bot.errors import LockwardenError
from bot.pipeline.compile import LockResult


def write_locks(root: Path, results: tuple[LockResult, ...]) -> tuple[str, ...]:
    """Write every changed, non-failed lock (with its per-platform locks and export); return
    the paths written. A failed environment's files are never touched."""
    return write_files(root, {p: t for r in results for p, t in r.files().items()})


def write_files(root: Path, files: Mapping[str, str]) -> tuple[str, ...]:
    """Write each file atomically; return the paths written, in order."""
    for path, text in files.items():
        write_atomic(root / path, text)
    return tuple(files)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so a reader sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise LockwardenError(f"{path}: could not write: {exc.strerror or exc}") from exc
