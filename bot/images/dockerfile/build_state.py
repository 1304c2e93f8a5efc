"""What a Dockerfile's stages hold as the lock rules walk it: the files copied in (from the
build context, another stage or an image), bind mounts, variables, build tools and caches.

The rules ask it where a file at a path in the image came from (:func:`resolve_source`): a
path of the build context, a file of another stage followed back to its own copy, or nothing
known (the base image, another image, never copied).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.images.dockerfile.shell import join_path


@dataclass(frozen=True)
class Copy:
    """Files put into the image by ``COPY``/``ADD`` or seen through a ``RUN`` bind mount."""

    line: int
    sources: tuple[str, ...]
    dest: str
    """Absolute path in the image."""
    dest_is_dir: bool
    origin: Stage | str | None
    """None: the build context; a stage; or an image reference (contents unknown)."""


@dataclass(frozen=True)
class ContextCopy:
    """A ``COPY``/``ADD`` from the build context, for the layer-order rule (LW002)."""

    line: int
    keyword: str
    sources: tuple[str, ...]


@dataclass
class Stage:
    """One ``FROM`` stage as the rules walk it; a child stage starts from its parent's."""

    index: int
    name: str | None
    line: int
    parent: Stage | None
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[Copy] = field(default_factory=list)
    context_copies: list[ContextCopy] = field(default_factory=list)
    tools: dict[str, int] = field(default_factory=dict)
    """Build tool -> line of the instruction that put it in this stage's file system."""
    apk_groups: dict[str, set[str]] = field(default_factory=dict)
    cache_findings: list[tuple[int, str]] = field(default_factory=list)
    """LW007 candidates: reported only if this stage's files reach the final image."""
    deps_installed: bool = False
    """A dependency install already ran: the layer LW002 protects exists; later installs
    (``uv sync`` for the project itself, say) may follow the source."""

    def inherit(self) -> None:
        parent = self.parent
        if parent is None:
            return
        self.workdir = parent.workdir
        self.env = dict(parent.env)
        self.copies = list(parent.copies)
        self.context_copies = list(parent.context_copies)
        self.tools = dict(parent.tools)
        self.apk_groups = {k: set(v) for k, v in parent.apk_groups.items()}
        self.deps_installed = parent.deps_installed

    def ancestry(self) -> list[Stage]:
        chain: list[Stage] = []
        stage: Stage | None = self
        while stage is not None and stage not in chain:
            chain.append(stage)
            stage = stage.parent
        return chain


@dataclass(frozen=True)
class Run:
    """What one ``RUN`` instruction brings to every command in it."""

    line: int
    stage: Stage
    cache_mount: bool
    mounts: tuple[Copy, ...]
    purges_pip_cache: bool
    purges_uv_cache: bool


def resolve_source(stage: Stage, path: str, mounts: Sequence[Copy], depth: int = 0) -> list[str]:
    """Where the file at ``path`` in ``stage`` came from, as context-relative candidate
    paths (globs possible); empty when it is not from the build context as far as this
    Dockerfile tells (base image, another image, never copied)."""
    for copy in (*mounts, *reversed(stage.copies)):
        candidates = copy_candidates(copy, path)
        if not candidates:
            continue
        if copy.origin is None:
            return candidates
        if isinstance(copy.origin, Stage) and depth < 5:
            origin = copy.origin
            return [
                found
                for candidate in candidates
                for found in resolve_source(origin, join_path("/", candidate), (), depth + 1)
            ]
        return []
    return []


def clean_path(path: str, *, keep_slash: bool = False) -> str:
    """A context-relative path without ``./`` or a leading ``/``; ``.`` for the root."""
    trailing = keep_slash and path.endswith("/") and path.strip("./") != ""
    cleaned = posixpath.normpath(path.lstrip("/") or ".")
    return cleaned + "/" if trailing else cleaned


def is_glob(path: str) -> bool:
    return any(c in path for c in "*?[")


def dir_like(source: str) -> bool:
    return source in (".", "") or source.endswith("/") or "." not in posixpath.basename(source)


def copy_candidates(copy: Copy, path: str) -> list[str]:
    candidates: list[str] = []
    for source in copy.sources:
        src = source.rstrip("/") or "."
        if copy.dest_is_dir:
            if dir_like(source):
                if path.startswith(copy.dest.rstrip("/") + "/") or copy.dest == "/":
                    rest = posixpath.relpath(path, copy.dest)
                    candidates.append(posixpath.normpath(posixpath.join(src, rest)))
            elif posixpath.dirname(path) == (copy.dest.rstrip("/") or "/") and fnmatch.fnmatchcase(
                posixpath.basename(path), posixpath.basename(src)
            ):
                candidates.append(posixpath.join(posixpath.dirname(src), posixpath.basename(path)))
        elif path == copy.dest:
            candidates.append(src)
        elif path.startswith(copy.dest.rstrip("/") + "/") and dir_like(source):
            rest = posixpath.relpath(path, copy.dest)
            candidates.append(posixpath.normpath(posixpath.join(src, rest)))
    return candidates


def same_file(candidate: str, lock: str) -> bool:
    """True when the context-relative ``candidate`` (maybe a glob) names ``lock``: one path
    ends with the other (the build context may be a subdirectory of the repository)."""
    left = [p for p in clean_path(candidate).split("/") if p != "."]
    right = [p for p in clean_path(lock).split("/") if p != "."]
    if not left or not right:
        return False
    size = min(len(left), len(right))
    return all(fnmatch.fnmatchcase(r, c) for c, r in zip(left[-size:], right[-size:], strict=True))
