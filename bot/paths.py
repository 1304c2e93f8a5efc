"""Containment of repository paths: every path a repository names (in its config, specs, locks,
Dockerfiles or a command) is resolved here and must stay inside the repository.

Reads resolve symlinks first and refuse anything that lands outside the root. Writes walk the
directory chain with ``O_NOFOLLOW`` file descriptors, so a symlink swapped in between the check
and the write is refused rather than followed, and replace the file atomically.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import stat
from pathlib import Path, PurePosixPath

from bot.errors import LockwardenError

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class PathEscapeError(LockwardenError):
    """A path from the repository leads outside it (absolute, ``..`` or a symlink)."""

    code = "path-escape"

    def __init__(
        self,
        source: str,
        path: str,
        reason: str,
        *,
        link: str | None = None,
        target: str | None = None,
    ) -> None:
        via = f" (symlink '{link}' -> '{target}')" if link is not None else ""
        super().__init__(
            f"{source}: path '{path}' {reason}{via}; Lockwarden only reads and writes files "
            "inside the repository: use a relative path to a real file in the repository"
        )
        self.source = source
        self.path = path
        self.link = link
        self.target = target


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix() if _inside(path, root) else str(path)


def resolve_inside(root: Path, relative: str | Path, *, source: str) -> Path:
    """The real path of ``relative`` under ``root`` after every symlink is followed.

    Refuses absolute paths, ``..`` that climbs above ``root`` and symlinks whose target is
    outside ``root``, naming ``source`` (the file and field that gave the path). The path need
    not exist; its existing prefix is what is checked.
    """
    text = str(relative)
    if not text or "\0" in text:
        raise PathEscapeError(source, text, "is not a valid path")
    if PurePosixPath(text).is_absolute() or Path(text).is_absolute():
        raise PathEscapeError(source, text, "is absolute")
    real_root = root.resolve()
    current = real_root
    for part in PurePosixPath(text).parts:
        if part in (".", ""):
            continue
        if part == "..":
            if current == real_root:
                raise PathEscapeError(source, text, "leaves the repository through '..'")
            current = current.parent
            continue
        candidate = current / part
        if candidate.is_symlink():
            current = _follow(candidate, real_root, source, text)
        else:
            current = candidate
    return current


def _follow(link: Path, root: Path, source: str, text: str) -> Path:
    """Resolve one symlink met on the way; it and every link it chains to stay inside."""
    target = os.readlink(link)
    try:
        resolved = link.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise PathEscapeError(
            source, text, "goes through a symlink loop", link=_rel(link, root), target=target
        ) from exc
    if not _inside(resolved, root):
        raise PathEscapeError(
            source,
            text,
            "leads outside the repository",
            link=_rel(link, root),
            target=target,
        )
    return resolved


def is_file_inside(root: Path, relative: str | Path, *, source: str) -> bool:
    """True when ``relative`` is a regular file inside ``root``; escapes still raise."""
    return resolve_inside(root, relative, source=source).is_file()


def read_text_if_present(root: Path, relative: str | Path, *, source: str) -> str | None:
    """The text of a file inside ``root``, ``None`` when there is none; escapes still raise."""
    if not is_file_inside(root, relative, source=source):
        return None
    return read_text_inside(root, relative, source=source)


def read_text_inside(
    root: Path,
    relative: str | Path,
    *,
    source: str,
    max_bytes: int | None = None,
    newline: str | None = None,
) -> str:
    """Read a UTF-8 file that must resolve inside ``root``; ``newline`` as for ``open``
    (None, like ``Path.read_text``, turns CRLF and CR into LF; "" keeps them).

    Raises ``PathEscapeError`` for an escape, ``FileNotFoundError`` when the file is absent
    (callers decide whether that is an error) and ``LockwardenError`` when it is not a regular
    file, is larger than ``max_bytes`` or is not UTF-8. Messages never quote the content.
    """
    path = resolve_inside(root, relative, source=source)
    name = str(relative)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise LockwardenError(
            f"{source}: could not read '{name}': {exc.strerror or exc}; check the path"
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise LockwardenError(f"{source}: '{name}' is not a regular file; point at a file")
    with os.fdopen(fd, "rb") as handle:
        limit = -1 if max_bytes is None else max_bytes + 1
        data = handle.read(limit)
    if max_bytes is not None and len(data) > max_bytes:
        raise LockwardenError(
            f"{source}: '{name}' is larger than {max_bytes} bytes; make it smaller"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LockwardenError(
            f"{source}: '{name}' is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from exc
    if newline is None:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def write_text_inside(root: Path, relative: str | Path, text: str, *, source: str) -> Path:
    """Atomically replace ``relative`` under ``root`` with ``text``; return the real path.

    The path is resolved first (in-tree symlinks are fine, escapes are refused); the write then
    opens every directory of the resolved path with ``O_NOFOLLOW`` from the root down,
    creating missing ones, so nothing outside ``root`` is ever created or changed.
    """
    real_root = root.resolve()
    real = resolve_inside(real_root, relative, source=source)
    if real == real_root:
        raise PathEscapeError(source, str(relative), "names the repository itself, not a file")
    parts = real.relative_to(real_root).parts
    fd = os.open(real_root, _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            child = _enter_dir(fd, part, source, str(relative))
            os.close(fd)
            fd = child
        _replace_in_dir(fd, parts[-1], text, source, str(relative))
    finally:
        os.close(fd)
    return real


def _enter_dir(parent_fd: int, name: str, source: str, path: str) -> int:
    """Open (creating if needed) directory ``name`` under ``parent_fd``."""
    try:
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            os.mkdir(name, 0o755, dir_fd=parent_fd)
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        _refuse_link(parent_fd, name, source, path)
        raise LockwardenError(
            f"{source}: could not create the directory for '{path}': {exc.strerror or exc}"
        ) from exc
    return fd


def _refuse_link(dir_fd: int, name: str, source: str, path: str) -> None:
    """Raise ``PathEscapeError`` when ``name`` in ``dir_fd`` is a symlink."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return
    if stat.S_ISLNK(info.st_mode):
        target = os.readlink(name, dir_fd=dir_fd)
        raise PathEscapeError(
            source, path, "was replaced by a symlink while writing", link=name, target=target
        )


def _replace_in_dir(dir_fd: int, name: str, text: str, source: str, path: str) -> None:
    _refuse_link(dir_fd, name, source, path)
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISREG(info.st_mode):
            raise LockwardenError(f"{source}: '{path}' exists and is not a regular file")
        mode = info.st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    temp = f".{name}.{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
                handle.flush()
                os.fchmod(handle.fileno(), mode)
                os.fsync(handle.fileno())
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(temp, dir_fd=dir_fd)
            raise
    except OSError as exc:
        raise LockwardenError(f"{source}: could not write: {exc.strerror or exc}") from exc


def normalise(relative: str, *, source: str) -> str:
    """``relative`` as a clean POSIX path inside the repository, checked lexically only."""
    if PurePosixPath(relative).is_absolute():
        raise PathEscapeError(source, relative, "is absolute")
    clean = posixpath.normpath(relative)
    if clean == ".." or clean.startswith("../"):
        raise PathEscapeError(source, relative, "leaves the repository through '..'")
    return clean
