"""What each stage of the pipeline leaves behind, and what a whole run produced.

These frozen values are the currency between the rooms: the stages in ``bot.pipeline``
make them, and ``bot.report``, ``bot.worker`` and the jobs read them. Keeping them here
lets the reports read results without importing the stages that make them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from bot.config import LoadedConfig
from bot.images import Finding, ImageInfo, TestStatus
from bot.images.os_packages import Manager
from bot.ledger import LedgerEntry
from bot.locks.diff import LockDiff
from bot.locks.modes import CompileMode, FailureKind
from bot.locks.options import Tool

if TYPE_CHECKING:
    from bot.locks.wheels import WheelGap


Status = Literal["changed", "unchanged", "failed"]


@dataclass(frozen=True)
class OutputFile:
    """A file an environment's compile writes besides its main lock: another platform's lock,
    or the requirements file exported from a Poetry lock."""

    path: str
    kind: Literal["platform-lock", "export"]
    platform: str | None
    old_text: str | None
    new_text: str | None
    diff: LockDiff | None = None

    @property
    def changed(self) -> bool:
        return self.new_text is not None and self.new_text != self.old_text


@dataclass(frozen=True)
class LockResult:
    name: str
    spec: str
    lock: str
    backend: Tool
    status: Status
    constrained_by: tuple[str, ...] = ()
    error: str | None = None
    failure: FailureKind | Literal["spec", "consistency", "upstream", "wheels"] | None = None
    tool_output: str = ""
    diff: LockDiff | None = None
    old_text: str | None = None
    new_text: str | None = None
    command: tuple[str, ...] = ()
    header_command: str = ""
    compile_s: float = 0.0
    notes: tuple[str, ...] = ()
    platform: str | None = None
    """The platform the main lock is for, when each platform has its own."""
    outputs: tuple[OutputFile, ...] = ()
    wheel_gaps: tuple[WheelGap, ...] = ()
    """Pinned packages with no wheel for a target platform (``platforms``)."""
    wheels_unchecked: tuple[str, ...] = ()
    """Why some packages' files could not be listed for the wheel check."""

    def files(self) -> dict[str, str]:
        """Every file this result writes: lock path -> new text (changed ones only)."""
        out: dict[str, str] = {}
        if self.status == "changed" and self.new_text is not None:
            if self.new_text != self.old_text:
                out[self.lock] = self.new_text
            out.update({o.path: o.new_text for o in self.outputs if o.changed and o.new_text})
        return out


@dataclass(frozen=True)
class ConsistencyIssue:
    """A package pinned at different versions in different environments."""

    package: str
    versions: tuple[tuple[str, str], ...]
    """(environment, version) pairs, in compile order."""
    required: bool
    """True when the package is listed in ``consistent``: then it is an error."""


@dataclass(frozen=True)
class CompileStageResult:
    results: tuple[LockResult, ...]
    consistency: tuple[ConsistencyIssue, ...]
    order: tuple[str, ...]


@dataclass(frozen=True)
class ImageResult:
    name: str
    status: Literal["built", "failed", "skipped"]
    reason: str | None = None
    """Why the image was skipped, or why the build failed."""
    dockerfile: str | None = None
    before: ImageInfo | None = None
    after: ImageInfo | None = None
    before_cached: bool = False
    reproducible: bool | None = None
    """None: not checked."""
    differences: tuple[str, ...] = ()
    """What differed between the build and its rebuild without cache."""
    findings: tuple[Finding, ...] = ()
    lint_failed: bool = False
    build_s: float = 0.0
    log_tail: str = ""


@dataclass(frozen=True)
class CheckResult:
    status: TestStatus
    log_tail: str = ""


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # a result, not a test case for pytest to collect

    name: str
    status: TestStatus
    duration_s: float = 0.0
    log_tail: str = ""
    reason: str | None = None
    """Why the tests were skipped."""
    install_check: CheckResult = field(default_factory=lambda: CheckResult("skipped"))
    pip_check: CheckResult = field(default_factory=lambda: CheckResult("skipped"))

    @property
    def ok(self) -> bool:
        return all(
            s in ("passed", "skipped")
            for s in (self.status, self.install_check.status, self.pip_check.status)
        )


@dataclass(frozen=True)
class PinChange:
    """One pin that moved."""

    kind: Literal["os-package", "base-image"]
    file: str
    line: int
    name: str
    """The package name, or the image as written without its digest."""
    before: str | None
    """The version or digest before; None for a base image that had no digest."""
    after: str | None
    manager: Manager | None = None
    image: str | None = None
    """For OS packages: the image the candidate was looked up in."""
    downgrade: bool = False
    """For OS packages: the candidate is older than the pin (the mirror dropped the pinned
    version, or the pin was ahead of it), so the image gets an older package."""


@dataclass(frozen=True)
class UnpinnedPackage:
    file: str
    line: int
    manager: Manager
    name: str


@dataclass(frozen=True)
class DockerfilePins:
    """The refresh of one Dockerfile."""

    dockerfile: str
    """Repository-relative path."""
    environments: tuple[str, ...]
    """The environments built from it."""
    changes: tuple[PinChange, ...]
    """In line order."""
    unpinned: tuple[UnpinnedPackage, ...]
    unpinnable_images: tuple[str, ...]
    """Base images set by build arguments (``${BASE}``), as written."""
    errors: tuple[str, ...]
    old_text: str
    new_text: str
    notes: tuple[str, ...] = ()
    """What was not refreshed and why, when that is no failure (no image builder ran)."""

    @property
    def changed(self) -> bool:
        return self.new_text != self.old_text


@dataclass(frozen=True)
class Advisory:
    """One published advisory that affects one locked version of one package."""

    id: str
    """The service's id (``GHSA-...``, ``PYSEC-...``)."""
    package: str
    """Canonical name."""
    version: str
    """The locked version it affects."""
    aliases: tuple[str, ...] = ()
    """Other ids of the same advisory (``CVE-...``), sorted."""
    fixed_versions: tuple[str, ...] = ()
    """The versions that fix it, lowest first; empty when none is published."""
    summary: str = ""
    link: str = ""

    @property
    def ids(self) -> frozenset[str]:
        return frozenset((self.id, *self.aliases))


@dataclass(frozen=True)
class BlockedFix:
    """An advisory whose every fixed version the environment's spec rules out."""

    advisory: Advisory
    spec: str
    """The file (and line) whose requirement rules the fixes out: ``requirements/serve.in:4``."""
    requirement: str
    """That requirement as written (``hcore<2``)."""


@dataclass(frozen=True)
class IgnoredAdvisory:
    advisory: Advisory
    reason: str
    until: str | None
    """ISO date after which the advisory counts again; None: no expiry."""


@dataclass(frozen=True)
class EnvironmentAdvisories:
    """One environment's advisories, before and after the run's compile."""

    environment: str
    lock: str
    fixed: tuple[Advisory, ...] = ()
    """Affected the lock before the run, not after."""
    left: tuple[Advisory, ...] = ()
    """Affect the lock before and after."""
    introduced: tuple[Advisory, ...] = ()
    """Affect only the new lock."""
    blocked: tuple[BlockedFix, ...] = ()
    """Those of ``left`` and ``introduced`` that no version the spec allows fixes."""
    ignored: tuple[IgnoredAdvisory, ...] = ()
    """Advisories recorded as ignored (not counted above)."""


@dataclass(frozen=True)
class YankedPin:
    """A locked version its index marks as yanked (PEP 592)."""

    environment: str
    lock: str
    package: str
    version: str
    reason: str
    """The index's reason, as given ("" when it gives none)."""


@dataclass(frozen=True)
class HeldBack:
    """A newer version a release-age quarantine kept out of the lock."""

    environment: str
    package: str
    locked: str | None
    """The version the lock has (None when the package is not in it)."""
    version: str
    """The newest version held back."""
    uploaded: datetime
    eligible: datetime
    """When it becomes old enough to be picked."""


@dataclass(frozen=True)
class SignalsResult:
    """What the upstream indexes and advisory services say about the run's locks."""

    advisories: tuple[EnvironmentAdvisories, ...] = ()
    yanked: tuple[YankedPin, ...] = ()
    """In the new locks (the old ones where a compile failed)."""
    held_back: tuple[HeldBack, ...] = ()
    quarantine_passed: tuple[str, ...] = ()
    """Security fixes taken although they are younger than the quarantine, one line each."""
    notes: tuple[str, ...] = ()
    """What could not be checked and why, with what to do."""


@dataclass(frozen=True)
class RunResult:
    repo: str
    config: LoadedConfig
    mode: CompileMode
    compiled: CompileStageResult
    images: tuple[ImageResult, ...] = ()
    tests: tuple[TestResult, ...] = ()
    builder: str | None = None
    written: tuple[str, ...] = ()
    dry_run: bool = False
    duration_s: float = 0.0
    image_pins: tuple[DockerfilePins, ...] = ()
    """Base-image digests and OS package pins refreshed in the Dockerfiles."""
    known_good: LedgerEntry | None = None
    """The newest known-good set of the default branch's history the run saw (what
    ``rollback --to known-good`` returns to); None when there is none there, or when the
    run did not look (a local run)."""
    signals: SignalsResult = field(default_factory=SignalsResult)
    """Advisories, yanked versions and versions held back by a quarantine."""

    def changed_files(self) -> dict[str, str]:
        """Every file this run changes: path -> new text (locks, exports, Dockerfiles)."""
        out: dict[str, str] = {}
        for result in self.compiled.results:
            out.update(result.files())
        for pins in self.image_pins:
            if pins.changed:
                out[pins.dockerfile] = pins.new_text
        return out

    @property
    def failed(self) -> bool:
        return (
            any(r.status == "failed" for r in self.compiled.results)
            or any(i.status == "failed" or i.lint_failed for i in self.images)
            or any(not t.ok for t in self.tests)
            or any(p.errors for p in self.image_pins)
        )


@dataclass(frozen=True)
class PublishResult:
    action: Literal["opened", "updated", "closed", "unchanged", "blocked", "failed"]
    pull_number: int | None = None
    pull_url: str | None = None
    commit_sha: str | None = None
    check_run_id: int | None = None
    note: str | None = None
