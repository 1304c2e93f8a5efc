"""The interface every lock format implements, and what it is given.

A format is one kind of lock and the spec it is compiled from: requirements files (pip-tools,
uv), Poetry's ``poetry.lock``, conda's ``@EXPLICIT`` locks. It answers every question whose
answer depends on the format, so configuration, the compile stage and the review commands
ask the registry (``bot.locks.formats``) instead of branching on a backend's name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Protocol

from packaging.requirements import Requirement

from bot.errors import ConfigError, LockwardenError
from bot.paths import PathEscapeError, read_text_inside

if TYPE_CHECKING:
    from bot.locks.compiler import ExportRequest, ExtraOutput, LockBackend
    from bot.locks.interpreters import Provisioner
    from bot.locks.lockfile import Lockfile
    from bot.locks.options import Tool
    from bot.locks.spec import SpecTree
    from bot.sandbox import EgressPolicy, Sandbox


class EnvironmentFields(Protocol):
    """The environment settings a format reads (``bot.config.EnvironmentConfig`` has them)."""

    @property
    def name(self) -> str: ...
    @property
    def backend(self) -> str: ...
    @property
    def spec(self) -> str: ...
    @property
    def lock(self) -> str | None: ...
    @property
    def python(self) -> str | None: ...
    @property
    def platforms(self) -> tuple[str, ...]: ...
    @property
    def resolution(self) -> Literal["universal", "per-platform"]: ...
    @property
    def dockerfile(self) -> str | None: ...
    @property
    def export(self) -> str | None: ...
    @property
    def export_groups(self) -> tuple[str, ...]: ...
    @property
    def export_extras(self) -> tuple[str, ...]: ...
    @property
    def export_hashes(self) -> bool: ...
    @property
    def model_fields_set(self) -> Set[str]: ...


def read_spec_text(root: Path, spec: str) -> str:
    """The text of the spec file ``spec`` (relative to ``root``), read only inside ``root``.

    Raises ``PathEscapeError`` when it leads outside, ``ConfigError`` naming the file when it
    is missing or unreadable.
    """
    try:
        return read_text_inside(root, spec, source=spec)
    except FileNotFoundError as exc:
        raise ConfigError(
            spec, "file not found; create it or point the environment's 'spec' at it"
        ) from exc
    except PathEscapeError:
        raise
    except LockwardenError as exc:
        reason = exc.user_message.removeprefix(f"{spec}: ")
        raise ConfigError(spec, f"cannot read the file: {reason}") from exc


class FieldProblem(ValueError):
    """A config field a format refuses; ``loc`` is the field's path in the environment."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


@dataclass(frozen=True)
class Toolchain:
    """What the formats' compilers are built from: the operator's settings, read once."""

    env: Mapping[str, str]
    """The compilers' environment (``bot.locks.compiler.tool_environment``)."""
    sandbox: Sandbox
    cache_dir: Path | None
    uv_bin: str
    poetry_bin: str | None
    conda_channel_alias: str
    provisioner: Provisioner


@dataclass(frozen=True)
class FollowUpTarget:
    """A file a format writes after the lock: where it goes, and what is there now."""

    output: ExtraOutput
    text: str | None
    """The file's current text; None when it does not exist yet."""
    lock: Lockfile | None
    """The environment's current lock."""


@dataclass(frozen=True)
class SpecEntry:
    """How a spec lists one package."""

    written: str
    """The entry as the person wrote it, its comment included: what an unpin puts back."""
    comment: str | None
    """The entry's comment, without ``#``; a pin note when Lockwarden pinned it."""
    pinned_version: str | None
    """The version when the entry is an exact pin (``name==version``); None otherwise."""


PinEdit = Callable[[str, str, str, str, str], str]
"""``(text, spec, package, requirement, note)`` -> the edited spec."""


@dataclass(frozen=True)
class SpecEditor:
    """The edits of a spec that takes exact pins only (``pyproject.toml``, ``environment.yml``):
    each function takes the text, the spec's path (for errors) and the package's name."""

    entry: Callable[[str, str, str], SpecEntry | None]
    pin: PinEdit
    unpin: Callable[[str, str, str], str]


def exact_pin(pin_version: PinEdit) -> PinEdit:
    """A pin edit for a spec that takes versions only: ``name==version`` -> ``version``
    (``exact_pins_only`` formats; their callers refuse any other requirement first)."""

    def pin(text: str, spec: str, package: str, requirement: str, note: str) -> str:
        (exact,) = Requirement(requirement).specifier
        return pin_version(text, spec, package, exact.version, note)

    return pin


class LockFormat(ABC):
    """One lock format: its files, its parser, its spec editor, its config rules and its
    compiler. Implementations live in ``bot/locks/formats/<name>/``; the defaults here are
    what most formats answer alike."""

    name: str
    """The format's name in reports (``requirements``, ``poetry``, ``conda``)."""
    backends: tuple[str, ...]
    """The ``backend:`` values of the config this format serves."""
    own_fields: frozenset[str] = frozenset()
    """Config fields only this format takes; another format's environment refuses them."""
    takes_ignore_rules = False
    """Ignore rules reach the compiler as a constraints file, which only pip takes."""
    replays_lock_command = False
    """The lock's header records the command (and its directory) a refresh replays."""
    installs_with_pip = True
    """The image installs a requirements file with pip, so pip's checks (``pip check``, the
    wheel check of each platform) speak for it."""
    exact_pins_only = False
    """``/lockwarden pin`` takes ``name==version`` only (the spec has no other form)."""
    pypi_releases = True
    """The lock pins PyPI-style releases, which advisory services and index pages speak for
    (a conda lock pins channel builds: neither knows them)."""
    holds_back_by_upload_time = False
    """Its compiler can leave out releases uploaded after a time (``min_release_age``)."""
    moves_to_chosen_versions = True
    """A targeted refresh can move a package to a version it names (``pkg==1.2``), not only
    to the newest its spec allows."""

    # -- files ----------------------------------------------------------------------------

    @abstractmethod
    def owns_lock(self, path: str, text: str | None) -> bool:
        """Whether the lock at ``path`` (with ``text`` when it is read) is of this format."""

    @abstractmethod
    def lock_path(self, env: EnvironmentFields) -> str:
        """The main lock (with one lock per platform: the first platform's)."""

    def lock_platforms(self, env: EnvironmentFields) -> tuple[str, ...]:
        """Platforms with a lock of their own, main lock first; empty: one lock for all."""
        return ()

    def platform_lock(self, env: EnvironmentFields, platform: str) -> str:
        """The lock path of one platform."""
        return self.lock_path(env)

    @abstractmethod
    def installed_lock(self, env: EnvironmentFields) -> str | None:
        """The requirements file the image installs with pip; None when pip installs none."""

    @abstractmethod
    def first_lock_hint(self, env: EnvironmentFields) -> str:
        """The command a person runs to make an environment's first lock."""

    # -- reading --------------------------------------------------------------------------

    @abstractmethod
    def parse_lock(self, text: str, path: str) -> Lockfile:
        """The lock's pins; errors name the file and the line."""

    @abstractmethod
    def read_spec(self, root: Path, spec: str) -> SpecTree:
        """The spec's direct requirements and the files it includes."""

    # -- editing the spec ----------------------------------------------------------------

    @abstractmethod
    def editor(self) -> SpecEditor:
        """How the spec is edited by ``/lockwarden pin`` and ``unpin``."""

    def spec_entry(self, text: str, spec: str, package: str) -> SpecEntry | None:
        """How the spec lists ``package``, None when it does not."""
        return self.editor().entry(text, spec, package)

    def pin(self, text: str, spec: str, package: str, requirement: str, note: str) -> str:
        """The spec with ``package`` pinned to ``requirement`` and ``note`` beside it."""
        return self.editor().pin(text, spec, package, requirement, note)

    def unpin(self, text: str, spec: str, package: str) -> str:
        """The spec with Lockwarden's pin of ``package`` replaced by what it pinned."""
        return self.editor().unpin(text, spec, package)

    # -- configuration --------------------------------------------------------------------

    @abstractmethod
    def check_fields(self, env: EnvironmentFields) -> None:
        """Raise ``FieldProblem`` for a setting this format cannot honour."""

    def leftover_outputs(self, root: Path, env: EnvironmentFields) -> tuple[str, ...]:
        """Files this format would have written for the environment under an earlier setting
        (a platform dropped, per-platform resolution turned off) that it no longer writes."""
        return ()

    def inferred_settings(
        self, root: Path, env: EnvironmentFields, taken: frozenset[str]
    ) -> dict[str, str]:
        """Settings read from the repository where the config leaves them out (the tool a
        lock's header names, the export a Dockerfile installs); ``taken``: files another
        environment already owns."""
        return {}

    # -- compiling ------------------------------------------------------------------------

    @abstractmethod
    def compilers(self, tools: Toolchain, policy: EgressPolicy) -> dict[Tool, LockBackend]:
        """The compiler of each backend this format serves."""

    def follow_up(
        self, root: Path, env: EnvironmentFields, target: FollowUpTarget
    ) -> ExportRequest | None:
        """What the compiler writes after the lock into ``target`` (Poetry: the export the
        image installs), in the form the existing file has; None: nothing."""
        return None


def beside_spec(spec: str, name: str) -> str:
    """A file next to the spec (``poetry.lock`` beside ``pyproject.toml``)."""
    return str(PurePosixPath(spec).with_name(name))
