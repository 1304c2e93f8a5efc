"""Images: build an environment's image from its lock, inspect it, run its tests in it.

One ``Builder`` protocol with two implementations, buildah (daemonless, the default) and
docker. Like the lock layer, this package knows nothing of GitHub; failures are values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

BuilderName = Literal["buildah", "docker"]
Severity = Literal["error", "warning", "info", "style"]
TestStatus = Literal["passed", "failed", "errored", "timed-out", "skipped"]


@dataclass(frozen=True)
class Finding:
    """One Dockerfile check result, located at ``file:line``."""

    rule: str
    """``LW001``... for Lockwarden's lock rules, ``DL3008``/``SC2086``... for hadolint's."""
    severity: Severity
    file: str
    line: int
    message: str
    source: Literal["lockwarden", "hadolint"] = "lockwarden"


@dataclass(frozen=True)
class ImageInfo:
    """What a builder knows about a built image."""

    reference: str
    """The local tag, e.g. ``localhost/lockwarden/ml-service-serve:after``."""
    image_id: str
    """``sha256:...`` of the image config: equal ids mean identical images."""
    size: int
    """Uncompressed size in bytes."""
    layers: tuple[str, ...]
    """Layer diff ids (``sha256:...``), base first."""
    repo_digest: str | None = None
    """``name@sha256:...`` of the pushed manifest, when pushed to a registry."""


@dataclass(frozen=True)
class BuildSpec:
    context: Path
    dockerfile: Path
    tag: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    timestamp: int | None = None
    """Fixed creation time (``SOURCE_DATE_EPOCH``) for reproducible builds."""
    no_cache: bool = False
    network: Literal["proxied", "none"] = "proxied"
    """``proxied``: ``RUN`` steps reach package indexes through the egress proxy only, from a
    network of their own (``bot.images.network``); never the worker's network."""
    timeout_s: float = 1800.0


@dataclass(frozen=True)
class BuildOutcome:
    ok: bool
    image: ImageInfo | None
    duration_s: float
    error: str | None = None
    log_tail: str = ""
    """The builder's last output lines (failing ``RUN`` step included)."""
    refused: tuple[str, ...] = ()
    """Connections the egress proxy refused, e.g. ``10.0.0.5 (10.0.0.5) is a private address``."""
    stages: tuple[str, ...] = ()
    """Ids of the images of the Dockerfile's earlier stages, first stage first: buildah keeps
    each as the layer cache of its steps, under no name."""


@dataclass(frozen=True)
class Mount:
    source: Path
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class RunSpec:
    """A command in a container of an image: untrusted code, so locked down by default."""

    image: str
    command: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """Added to the image's own environment; nothing is inherited from the bot's process."""
    network: bool = False
    """False: no network at all. True: a private network whose only way out is the egress
    proxy (``HTTP(S)_PROXY`` are set); never the worker's network."""
    memory: str = "2g"
    cpus: float = 1.0
    pids_limit: int = 512
    timeout_s: float = 600.0
    workdir: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    status: TestStatus
    exit_code: int | None
    duration_s: float
    log_tail: str = ""
    refused: tuple[str, ...] = ()
    """Connections the egress proxy refused while the command ran."""


class Builder(Protocol):
    name: BuilderName

    def available(self) -> bool:
        """True when this builder can build here (binary present, daemon reachable)."""
        ...

    def build(self, spec: BuildSpec) -> BuildOutcome: ...

    def inspect(self, reference: str) -> ImageInfo | None:
        """The image's facts, or None when no such image exists locally."""
        ...

    def run(self, spec: RunSpec) -> RunOutcome: ...

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        """Push ``reference`` to ``destination`` (``registry/repo:tag``); return the
        manifest digest (``sha256:...``)."""
        ...

    def remove(self, reference: str) -> None:
        """Remove the image ``reference`` names, forcibly: for images only this run uses."""
        ...

    def tag(self, reference: str, name: str) -> bool:
        """Name the image ``reference`` also ``name`` (taken from any image it named before);
        whether that worked."""
        ...

    def names(self, reference: str) -> tuple[str, ...] | None:
        """Every name of the image ``reference`` (a name or an id); none when it is gone;
        None when the store could not be read (another build changing it): whoever asked
        then keeps the image, since removing by id would take a name it could not see."""
        ...

    def untag(self, reference: str) -> bool:
        """Drop the name ``reference``, or the nameless image of that id: the image goes
        with its last name, unless a container still uses it (never forced); whether it
        worked."""
        ...

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        """Write the image's layers under ``directory`` (created); their tar files, base
        first. Raises ``LockwardenError`` when the image cannot be exported."""
        ...
