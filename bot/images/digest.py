"""Content keys for images, and a cache of images already built from a given input.

The key is a hash of everything a build reads (the Dockerfile, every file of the context,
the build arguments, the builder), so the "before" image of a refresh can come from an
earlier build of the same inputs instead of a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path

from bot.images import ImageInfo

_SKIP_DIRS = frozenset({".git", ".hg", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache"})


def input_key(
    context: Path,
    dockerfile: Path,
    build_args: Mapping[str, str],
    builder: str,
    timestamp: int | None,
) -> str:
    digest = hashlib.sha256()
    digest.update(f"builder={builder}\ntimestamp={timestamp}\n".encode())
    for key, value in sorted(build_args.items()):
        digest.update(f"arg {key}={value}\n".encode())
    digest.update(b"dockerfile\n" + dockerfile.read_bytes())
    for path in _context_files(context):
        relative = path.relative_to(context).as_posix()
        if path.is_symlink():  # a build copies the link itself, which may dangle
            digest.update(f"\nlink {relative}\n".encode() + os.readlink(path).encode())
            continue
        digest.update(f"\nfile {relative} {path.stat().st_mode & 0o777:o}\n".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _context_files(context: Path) -> list[Path]:
    files: list[Path] = []
    for directory, dirnames, filenames in os.walk(context):
        # os.walk lists a link to a directory with the directories but never enters it
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        links = [d for d in dirnames if (Path(directory) / d).is_symlink()]
        dirnames[:] = [d for d in dirnames if d not in links]
        files.extend(Path(directory) / name for name in sorted([*filenames, *links]))
    return files


class ImageCache:
    """``key -> ImageInfo`` records on disk; a record is only trusted while the builder
    still has that image."""

    def __init__(self, root: Path | None) -> None:
        self._root = root / "images" if root is not None else None

    def get(self, key: str) -> ImageInfo | None:
        if self._root is None:
            return None
        path = self._root / f"{key}.json"
        try:
            data = json.loads(path.read_text("utf-8"))
            data["layers"] = tuple(data["layers"])
            return ImageInfo(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def put(self, key: str, image: ImageInfo) -> None:
        if self._root is None:
            return
        self._root.mkdir(parents=True, exist_ok=True)
        tmp = self._root / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(image)), "utf-8")
        os.replace(tmp, self._root / f"{key}.json")
