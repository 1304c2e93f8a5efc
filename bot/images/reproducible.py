"""Reproducible layers: what makes two builds of the same inputs write the same files, and
which files differ when they do not.

With a fixed ``--timestamp`` buildah gives every file of a new layer the same mtime, but a
``RUN`` step can still write different bytes. The usual culprit is Python bytecode: ``pip``
compiles what it installs, and a ``.pyc`` records the mtime its source had at install time.
With ``SOURCE_DATE_EPOCH`` in its environment ``py_compile`` writes hash-based ``.pyc``
files instead, identical from build to build. A build argument reaches ``RUN`` steps only
where a stage declares it, so builds use :func:`declaring_source_date_epoch`: a copy of the
Dockerfile with ``ARG SOURCE_DATE_EPOCH`` after each ``FROM``. The person's file is never
changed, and an ``ARG`` adds nothing to the image's files or environment (only the history
shows it).

When a rebuild still differs, :func:`layer_file_differences` exports both images and names
the first files that differ in each differing layer, by content, size, mode, owner or mtime.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bot.errors import LockwardenError
from bot.images import Builder, ImageInfo
from bot.images.dockerfile.syntax import dockerfile_instructions

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
PATHS_PER_LAYER = 5
# Files buildah and docker read next to a Dockerfile: they must follow it to its copy.
_IGNORE_SUFFIXES = (".dockerignore", ".containerignore")


def declare_build_arg(text: str, name: str) -> str:
    """``text`` with ``ARG name`` after every ``FROM`` instruction (after its last
    continuation line); every other byte stays."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    ends = sorted(
        (i.end_line or i.line for i in dockerfile_instructions(text) if i.keyword == "FROM"),
        reverse=True,
    )
    for end in ends:
        lines.insert(end, f"ARG {name}\n")
    return "".join(lines)


@contextmanager
def declaring_source_date_epoch(dockerfile: Path) -> Iterator[Path]:
    """A temporary copy of ``dockerfile`` whose stages declare ``SOURCE_DATE_EPOCH``, with the
    ignore files that belong to it; ``dockerfile`` itself when it cannot be read as text (the
    builder then reports why)."""
    try:
        text = dockerfile.read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        yield dockerfile
        return
    with tempfile.TemporaryDirectory(prefix="lockwarden-dockerfile-") as tmp:
        copy = Path(tmp) / dockerfile.name
        copy.write_text(declare_build_arg(text, SOURCE_DATE_EPOCH), encoding="utf-8")
        for suffix in _IGNORE_SUFFIXES:
            ignore = dockerfile.with_name(dockerfile.name + suffix)
            if ignore.is_file():
                shutil.copyfile(ignore, copy.with_name(copy.name + suffix))
        yield copy


# --------------------------------------------------------------------------- comparing layers


@dataclass(frozen=True)
class _Member:
    kind: bytes
    size: int
    mode: int
    owner: tuple[int, int]
    mtime: int
    content: str
    """sha256 of a file's bytes, a link's target, empty otherwise."""


_ASPECTS = ("content", "size", "mode", "owner", "mtime", "kind")


def layer_file_differences(
    builder: Builder, first: ImageInfo, second: ImageInfo, *, limit: int = PATHS_PER_LAYER
) -> tuple[str, ...]:
    """For each layer whose digest differs between the images: the first ``limit`` paths
    that differ and how (``layer 3: /stamp: content``). Exports both images, so it takes
    disk space about the size of both; failures are one line saying so."""
    differing = [
        index
        for index, (a, b) in enumerate(zip(first.layers, second.layers, strict=False))
        if a != b
    ]
    if not differing:
        return ()
    with tempfile.TemporaryDirectory(prefix="lockwarden-layers-") as tmp:
        try:
            a_layers = builder.export_layers(first.reference, Path(tmp) / "first")
            b_layers = builder.export_layers(second.reference, Path(tmp) / "second")
        except LockwardenError as exc:
            return (f"the layers' files could not be compared: {exc.user_message}",)
        out: list[str] = []
        for index in differing:
            if index >= len(a_layers) or index >= len(b_layers):
                continue
            paths = differing_paths(a_layers[index], b_layers[index])
            out += [f"layer {index + 1}: {path}" for path in paths[:limit]]
            if len(paths) > limit:
                out.append(f"layer {index + 1}: and {len(paths) - limit} more paths")
        return tuple(out)


def differing_paths(first: Path, second: Path) -> list[str]:
    """The paths that differ between two layer tarballs, in path order, each with what
    differs (``/stamp: content``, ``/new: only in the second``)."""
    a, b = _members(first), _members(second)
    out: list[str] = []
    for name in sorted(a.keys() | b.keys()):
        if name not in b:
            out.append(f"/{name}: only in the first build")
        elif name not in a:
            out.append(f"/{name}: only in the second build")
        elif a[name] != b[name]:
            aspects = [x for x in _ASPECTS if getattr(a[name], x) != getattr(b[name], x)]
            out.append(f"/{name}: {', '.join(aspects)}")
    return out


def _members(layer: Path) -> dict[str, _Member]:
    try:
        with tarfile.open(layer, "r:*") as tar:
            return {member.name.removeprefix("./"): _member(tar, member) for member in tar}
    except (OSError, tarfile.TarError) as exc:
        raise LockwardenError(f"{layer.name} is not a readable layer: {exc}") from exc


def _member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> _Member:
    content = member.linkname
    if member.isfile():
        digest = hashlib.sha256()
        stream = tar.extractfile(member)
        if stream is not None:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        content = digest.hexdigest()
    return _Member(
        member.type,
        member.size,
        member.mode,
        (member.uid, member.gid),
        int(member.mtime),
        content,
    )


def oci_layers(directory: Path) -> tuple[Path, ...]:
    """The layer blobs, base first, of the one image in an OCI layout (``buildah push
    oci:``) or an extracted ``docker save`` archive."""
    try:
        saved = directory / "manifest.json"
        if saved.is_file():  # docker save: its own manifest lists the layer files
            entries = json.loads(saved.read_text("utf-8"))
            return tuple(directory / str(layer) for layer in entries[0]["Layers"])
        index = json.loads((directory / "index.json").read_text("utf-8"))
        manifest = json.loads(_blob(directory, index["manifests"][0]["digest"]).read_text())
        return tuple(_blob(directory, layer["digest"]) for layer in manifest["layers"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise LockwardenError(f"the exported image in {directory} cannot be read: {exc}") from exc


def _blob(directory: Path, digest: str) -> Path:
    algorithm, _, value = digest.partition(":")
    return directory / "blobs" / algorithm / value
