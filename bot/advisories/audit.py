"""The audit of a repository's locks: each environment's pinned versions and their advisories.

Every pinned (``==``) package of every environment's lock is looked up once, whatever the
lock's format (requirements files from pip-tools or uv, ``poetry.lock``). Conda locks are
skipped with a note: conda packages are not PyPI releases, and the advisory services answer
for PyPI names and versions only. Advisories recorded in ``.github/lockwarden-ignore.txt``
are set aside (by id or any alias) until their ``until`` day has passed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bot.advisories.service import Lookup, Package, ServiceConfig, lookup_advisories
from bot.errors import LockwardenError
from bot.locks.formats import format_for
from bot.locks.ignore import AdvisoryIgnore, read_advisory_ignores
from bot.paths import read_text_inside
from bot.results import Advisory, IgnoredAdvisory

if TYPE_CHECKING:
    from bot.config import RepoConfig
    from bot.locks.lockfile import Lockfile

CONDA_SKIPPED = (
    "conda packages are not PyPI releases, so the advisory services cannot answer for them; "
    "advisories were not looked up for this environment"
)


@dataclass(frozen=True)
class EnvironmentAudit:
    """One environment's lock and the advisories of its pinned versions."""

    environment: str
    lock: str
    advisories: tuple[Advisory, ...] = ()
    ignored: tuple[IgnoredAdvisory, ...] = ()
    note: str | None = None
    """Why the lock was not audited (a conda lock, a lock missing or unreadable)."""
    packages: int = 0
    """Pinned packages looked up."""


@dataclass(frozen=True)
class Audit:
    """The advisories of every audited environment, and what could not be checked."""

    environments: tuple[EnvironmentAudit, ...]
    service: str
    """The service as notes name it: ``PyPI (https://pypi.org)``."""
    notes: tuple[str, ...] = ()
    checked: bool = True
    """False when the service could not be asked: then no environment lists advisories."""

    @property
    def found(self) -> int:
        return sum(len(e.advisories) for e in self.environments)

    @property
    def exit_status(self) -> Literal[0, 1, 2]:
        """0: nothing found; 1: advisories found; 2: advisories could not be checked."""
        if not self.checked:
            return 2
        return 1 if self.found else 0


def pinned_packages(lock: Lockfile) -> tuple[Package, ...]:
    """The lock's exact pins as (canonical name, version); URL and unpinned entries have no
    release to look up."""
    return tuple(
        (r.name, r.version) for r in lock.requirements if r.version is not None and not r.url
    )


def read_lock(root: Path, backend: str, path: str) -> Lockfile | str:
    """The parsed lock, or why it cannot be read (a message that says what to do)."""
    try:
        text = read_text_inside(root, path, source=path)
    except FileNotFoundError:
        return f"{path} does not exist yet; create it with a refresh, then audit again"
    except (OSError, UnicodeDecodeError, LockwardenError) as exc:
        return f"{path} cannot be read ({exc}); fix the file, then audit again"
    try:
        return format_for(backend).parse_lock(text, path)
    except (LockwardenError, ValueError) as exc:
        return f"{path} cannot be parsed ({exc}); fix the lock, then audit again"


def split_ignored(
    advisories: Iterable[Advisory], ignores: Sequence[AdvisoryIgnore], today: date
) -> tuple[tuple[Advisory, ...], tuple[IgnoredAdvisory, ...]]:
    """``advisories`` split into those still open and those an active ignore rule sets aside
    (matched by the advisory's id or any alias; an expired rule hides nothing)."""
    active = [rule for rule in ignores if rule.active(today)]
    open_: list[Advisory] = []
    ignored: list[IgnoredAdvisory] = []
    for advisory in advisories:
        rule = next((r for r in active if r.id.upper() in _upper(advisory.ids)), None)
        if rule is None:
            open_.append(advisory)
        else:
            until = rule.until.isoformat() if rule.until is not None else None
            ignored.append(IgnoredAdvisory(advisory, rule.reason, until))
    return tuple(open_), tuple(ignored)


def _upper(ids: Iterable[str]) -> frozenset[str]:
    return frozenset(i.upper() for i in ids)


def advisories_of(lock: Lockfile, lookup: Lookup) -> tuple[Advisory, ...]:
    """Every advisory of the lock's pins, in package then id order, each once."""
    seen: dict[tuple[str, str, str], Advisory] = {}
    for name, version in sorted(set(pinned_packages(lock))):
        for advisory in lookup.advisories(name, version):
            seen.setdefault((advisory.package, advisory.version, advisory.id), advisory)
    return tuple(seen.values())


def audit_locks(
    root: Path,
    config: RepoConfig,
    service: ServiceConfig,
    *,
    environments: Sequence[str] = (),
    today: date | None = None,
) -> Audit:
    """The advisories of the locks of ``config``'s environments (``environments``: only those)
    in the repository at ``root``. Ignore rules are read from ``root``'s ignore file. Never
    raises for the service: an unreachable one gives an unchecked audit with a note."""
    day = today or date.today()
    selected = [e for e in config.environments if not environments or e.name in environments]
    locks: dict[str, Lockfile | str] = {}
    for env in selected:
        if not env.format.pypi_releases:
            locks[env.name] = CONDA_SKIPPED
        else:
            locks[env.name] = read_lock(root, env.backend, env.lock_path)
    parsed = [lock for lock in locks.values() if not isinstance(lock, str)]
    lookup = lookup_advisories((p for lock in parsed for p in pinned_packages(lock)), service)
    ignores = read_advisory_ignores(root)
    results: list[EnvironmentAudit] = []
    for env in selected:
        lock = locks[env.name]
        if isinstance(lock, str):
            results.append(EnvironmentAudit(env.name, env.lock_path, note=lock))
            continue
        found, ignored = split_ignored(advisories_of(lock, lookup), ignores, day)
        results.append(
            EnvironmentAudit(env.name, env.lock_path, found, ignored, None, len(lock.requirements))
        )
    return Audit(
        tuple(results),
        service.describe() if service.service != "off" else "off",
        notes=lookup_notes(lookup),
        checked=lookup.checked,
    )


def lookup_notes(lookup: Lookup) -> tuple[str, ...]:
    """What a report says about the lookup itself: why nothing was checked, or which packages
    the service does not know."""
    if lookup.error is not None:
        return (f"advisories were not checked: {lookup.error}",)
    if lookup.unknown:
        names = ", ".join(f"{n} {v}" for n, v in lookup.unknown[:10])
        more = f" and {len(lookup.unknown) - 10} more" if len(lookup.unknown) > 10 else ""
        return (
            f"the advisory service does not know {names}{more} (private packages, or versions "
            "it has no page for); their advisories were not checked",
        )
    return ()
