"""What the release watch does for repositories on ``watch: security``: advisories only.

Each pass looks up the advisories of every pin of every such repository, each (package,
version) once for all of them, through ``bot.advisories``' lookup (its file cache and
conditional requests make an unchanged answer a 304). A repository gets its ``security`` job
when one of its pins has a **fixable** advisory (a fixed version newer than the pinned one)
that it was not asked about before, or when a package it locks got a new release (a fix may
just have been published): once per repository per pass, whatever the number of reasons.

The watch has no checkout, so it cannot read a repository's ignore file: the security job
audits the default branch with it, so an ignored advisory moves nothing, and the watch asks
about each advisory once only. Whether the spec allows a fix is also the job's to decide.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from packaging.version import InvalidVersion, Version

from bot.advisories.service import Lookup, ServiceConfig, lookup_advisories
from bot.results import Advisory
from bot.watch.store import SecurityPending, SecurityPin

MAX_REASONS = 10
"""Reasons a security job's payload quotes at most (the job audits everything anyway)."""


@dataclass(frozen=True)
class NewRelease:
    """A repository on ``watch: security`` that locks a package with new releases."""

    repo: str
    installation_id: int
    index_url: str
    package: str
    locked: str
    versions: tuple[str, ...]


@dataclass(frozen=True)
class SecurityDecision:
    """The security jobs a pass asks for, and the advisories that asks about."""

    wanted: tuple[SecurityPending, ...] = ()
    acted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """repository -> the advisory ids its job is asked for now (remembered, never again)."""


def lookup_pins(pins: Sequence[SecurityPin], service: ServiceConfig | None) -> Lookup:
    """The advisories of every distinct (package, version) of ``pins``; an unchecked lookup
    when advisories are off (``service`` None or ``off``) or the service cannot be reached."""
    if service is None:
        return Lookup(error="advisories are off for the release watch")
    return lookup_advisories(((pin.package, pin.version) for pin in pins), service)


def decide(
    pins: Sequence[SecurityPin],
    lookup: Lookup,
    acted: Mapping[str, frozenset[str]],
    releases: Sequence[NewRelease],
    now: datetime,
) -> SecurityDecision:
    """One security job per repository with a fixable advisory not in ``acted``, or with a
    locked package that got new releases."""
    reasons: dict[str, _Reasons] = {}
    for pin in pins if lookup.checked else ():
        before = acted.get(pin.repo, frozenset())
        for advisory in fixable(lookup.advisories(pin.package, pin.version)):
            entry = reasons.setdefault(pin.repo, _Reasons(pin.installation_id))
            if advisory.id not in before and advisory.id not in entry.advisories:
                entry.advisories.append(advisory.id)
                entry.add(pin.package, advisory_reason(advisory))
    for release in releases:
        entry = reasons.setdefault(release.repo, _Reasons(release.installation_id))
        entry.add(release.package, release_reason(release))
    wanted = tuple(
        SecurityPending(repo, e.installation_id, tuple(e.packages), tuple(e.reasons), now)
        for repo, e in sorted(reasons.items())
        if e.reasons
    )
    return SecurityDecision(
        wanted, {repo: tuple(e.advisories) for repo, e in reasons.items() if e.advisories}
    )


@dataclass
class _Reasons:
    installation_id: int
    packages: dict[str, None] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    advisories: list[str] = field(default_factory=list)

    def add(self, package: str, reason: str) -> None:
        self.packages.setdefault(package)
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(reason)


def fixable(advisories: Iterable[Advisory]) -> tuple[Advisory, ...]:
    """Those of ``advisories`` with a fixed version newer than the affected one."""
    return tuple(a for a in advisories if _has_newer(a.fixed_versions, a.version))


def _has_newer(versions: Iterable[str], locked: str) -> bool:
    try:
        pinned = Version(locked)
    except InvalidVersion:
        return False  # no order: no version can be said to fix it
    for raw in versions:
        with contextlib.suppress(InvalidVersion):
            if Version(raw) > pinned:
                return True
    return False


def advisory_reason(advisory: Advisory) -> str:
    return (
        f"advisory {advisory.id} affects {advisory.package} {advisory.version} "
        f"(fixed in {', '.join(advisory.fixed_versions)})"
    )


def release_reason(release: NewRelease) -> str:
    return (
        f"{release.package} {', '.join(release.versions)} released "
        f"(locked: {release.locked}); it may fix an advisory"
    )
