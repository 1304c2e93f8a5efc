"""``FROM`` lines: the build stages of a Dockerfile, the registry images they start from, and
pinning those images to a digest in place.

A tag such as ``python:3.12-slim`` moves whenever its publisher pushes a new build; pinning
the tag's manifest digest (``python:3.12-slim@sha256:...``) makes the base an input that only
changes on purpose. :func:`rewrite_base_images` writes a digest into its ``FROM`` line and
leaves every other byte alone; ``bot.images.base_images`` asks the registry for it.

References are normalised like Docker does: no registry means ``docker.io``, a single-name
Docker Hub image lives under ``library/``, and the first path component is a registry when
it is ``localhost``, has a port, or contains a dot.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bot.errors import LockwardenError
from bot.images.dockerfile.syntax import Instruction, dockerfile_instructions, replace_spans

DOCKER_HUB = "docker.io"
_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
"""A manifest digest: ``algorithm:hex`` (``sha256:...``)."""


def is_digest(text: str) -> bool:
    """Whether ``text`` has the shape of a manifest digest (``sha256:...``)."""
    return _DIGEST_RE.match(text) is not None


# --------------------------------------------------------------------------- FROM lines


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` instruction: a build stage."""

    index: int
    line: int
    image: str
    """As written (``python:3.12-slim``, ``${BASE}``, ``build``, ``scratch``)."""
    alias: str | None
    """The ``AS`` name, lower case."""
    parent: int | None
    """The earlier stage this one is built ``FROM``, when ``image`` names one."""
    base: str
    """The image this stage starts from in the end: ``image``, or the ``base`` of
    ``parent``."""
    image_span: tuple[int, int] | None
    """Where ``image`` sits in the text, when it is one contiguous word."""


@dataclass(frozen=True)
class BaseImageRef:
    """A ``FROM`` line that names an image in a registry."""

    file: str
    line: int
    stage: int
    image: str
    """As written, e.g. ``python:3.12-slim`` or ``ghcr.io/org/img:1@sha256:...``."""
    registry: str
    """``docker.io``, ``ghcr.io``, ``127.0.0.1:5000``..."""
    repository: str
    """``library/python``, ``org/img``..."""
    tag: str | None
    digest: str | None
    alias: str | None

    @property
    def name(self) -> str:
        """The image as written, without its digest: what a pin follows."""
        return self.image.partition("@")[0]

    @property
    def canonical(self) -> str:
        """``registry/repository:tag`` (``latest`` when no tag is written), for messages."""
        return f"{self.registry}/{self.repository}:{self.tag or 'latest'}"

    def pinned(self, digest: str) -> str:
        """The reference as written with ``digest`` in place of its own. A reference without
        a tag gets ``:latest``, so a later refresh still knows which tag it follows."""
        name = self.name
        if self.tag is None and self.digest is None:
            name += ":latest"
        return f"{name}@{digest}"


def find_stages(text: str) -> tuple[Stage, ...]:
    """Every ``FROM`` of the Dockerfile, in order."""
    return stages_of(dockerfile_instructions(text))


def stages_of(instructions: Iterable[Instruction]) -> tuple[Stage, ...]:
    """Every ``FROM`` among ``instructions``, in order."""
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = [w for w in instruction.words() if not w.text.startswith("--")]
        if not words:
            continue
        image = words[0].text
        alias = None
        if len(words) >= 3 and words[1].text.lower() == "as":
            alias = words[2].text.lower()
        parent = next((s for s in stages if s.alias and s.alias == image.lower()), None)
        offsets = [offset for _, offset in words[0].chars]
        contiguous = bool(offsets) and offsets == list(range(offsets[0], offsets[0] + len(offsets)))
        stages.append(
            Stage(
                index=len(stages),
                line=instruction.line,
                image=image,
                alias=alias,
                parent=parent.index if parent else None,
                base=parent.base if parent else image,
                image_span=(offsets[0], offsets[-1] + 1) if contiguous else None,
            )
        )
    return tuple(stages)


def _pinnable(stage: Stage) -> bool:
    return stage.parent is None and stage.image.lower() != "scratch" and "$" not in stage.image


def find_base_images(text: str, path: str) -> tuple[BaseImageRef, ...]:
    """The ``FROM`` lines that name a registry image; ``scratch``, earlier stages and images
    set by build arguments (see :func:`find_unpinnable_images`) are left out."""
    return tuple(_ref(stage, path) for stage in find_stages(text) if _pinnable(stage))


def _ref(stage: Stage, path: str) -> BaseImageRef:
    registry, repository, tag, digest = parse_reference(stage.image)
    return BaseImageRef(
        file=path,
        line=stage.line,
        stage=stage.index,
        image=stage.image,
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        alias=stage.alias,
    )


def find_unpinnable_images(text: str) -> tuple[str, ...]:
    """Base images set by build arguments (``FROM ${BASE}``), as written, each once: their
    value is only known at build time, so no digest can be written for them."""
    seen: dict[str, None] = {}
    for stage in find_stages(text):
        if stage.parent is None and "$" in stage.image:
            seen.setdefault(stage.image, None)
    return tuple(seen)


def parse_reference(image: str) -> tuple[str, str, str | None, str | None]:
    """``(registry, repository, tag, digest)`` of an image reference, normalised like
    Docker: ``python:3.12`` is ``("docker.io", "library/python", "3.12", None)``."""
    name, _, digest = image.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    return registry, repository, tag or None, digest or None


def rewrite_base_images(text: str, updates: Mapping[int, str]) -> str:
    """``text`` with the digest of the ``FROM`` on each line of ``updates`` set to the new
    digest: ``FROM image:tag`` becomes ``FROM image:tag@sha256:...``, an existing digest is
    replaced, ``--platform`` and ``AS`` stay, and nothing else changes."""
    by_line = {stage.line: stage for stage in find_stages(text)}
    edits: dict[tuple[int, int], str] = {}
    for line, digest in updates.items():
        stage = by_line.get(line)
        if stage is None or not _pinnable(stage):
            raise LockwardenError(f"line {line} has no FROM of a registry image to pin")
        if stage.image_span is None:
            raise LockwardenError(f"line {line}: the image of this FROM is split; join it")
        if not is_digest(digest):
            raise LockwardenError(f"line {line}: '{digest}' is not an image digest")
        edits[stage.image_span] = _ref(stage, "").pinned(digest)
    return replace_spans(text, edits)
