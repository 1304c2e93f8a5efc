"""What the release-age quarantine did to one environment's lock, judged from its index pages.

A full refresh under a quarantine holds back the releases uploaded after its cutoff: those
the spec would have allowed are reported (a version ``numpy<2`` rules out was never in
reach, whatever its age). A direct requirement every allowed release of which is too young
is missing from the lock and fails the compile: the failure says so, with the date it
becomes eligible. A targeted refresh is not held to the quarantine, so each package it
moves to a younger release is named. An index without upload times (PEP 503 HTML only)
cannot be held to a quarantine: uv leaves its files out and pip refuses it, and every
output says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from packaging.version import InvalidVersion, Version

from bot.advisories.blocked import SpecRequirement, SpecRequirements
from bot.config import EnvironmentConfig
from bot.results import CompileStageResult, HeldBack, LockResult, SignalsResult
from bot.upstream.index import ProjectPage, display_url
from bot.upstream.quarantine import format_age, quarantine_note

Found = tuple[str, ProjectPage]
"""The index URL a project page came from, and the page."""

# What the resolvers print when an index gives no upload times (uv 0.13, pip 26).
_UV_NO_TIMES = "is missing an upload date"
_PIP_NO_TIMES = re.compile(r"Index (\S+?)/[^/\s]+/ does not provide upload-time metadata")
TARGETED_WHY = "a targeted refresh is not held to min_release_age"


@dataclass(frozen=True)
class PinnedEnv:
    """One environment's lock as the upstream checks see it."""

    env: EnvironmentConfig
    result: LockResult
    pins: Mapping[str, str]
    """The new lock's pins (the old lock's where the compile failed)."""
    indexes: tuple[str, ...]
    age: timedelta | None
    """The environment's ``min_release_age`` (None: none)."""
    held: bool = False
    """Whether the compile was held to the quarantine (a full refresh on pip-tools or uv)."""
    before: Mapping[str, str] | None = None
    """The old lock's pins, for a targeted refresh (None otherwise)."""
    requirements: SpecRequirements | None = None
    direct: frozenset[str] = frozenset()
    """The spec tree's direct requirements (canonical names)."""

    def wanted(self) -> tuple[str, ...]:
        """The packages whose pages the checks need."""
        return (*self.pins, *self.missing())

    def missing(self) -> tuple[str, ...]:
        """Direct requirements a failed, quarantined compile left out of the lock."""
        if not self.held or self.result.status != "failed":
            return ()
        return tuple(sorted(self.direct - set(self.pins)))


def quarantine_signals(
    pinned: PinnedEnv, pages: Mapping[str, Found], now: datetime
) -> SignalsResult:
    """Held-back releases, quarantine-passing moves and index notes of one environment."""
    if pinned.age is None:
        return SignalsResult()
    age = pinned.age
    notes = list(_no_upload_times(pinned, pages))
    if not pinned.held:
        return SignalsResult(quarantine_passed=tuple(_young_moves(pinned, pages, now, age)))
    held = [*_held_back(pinned, pages, now, age), *_missing(pinned, pages, now, age)]
    notes += [failure_reason(h, age) for h in held if h.locked is None]
    return SignalsResult(held_back=tuple(held), notes=tuple(notes))


def _allowed(requirements: Iterable[SpecRequirement], version: Version) -> bool:
    return all(r.specifier.contains(version, prereleases=True) for r in requirements)


def _held_back(
    pinned: PinnedEnv, pages: Mapping[str, Found], now: datetime, age: timedelta
) -> Iterable[HeldBack]:
    """Per package, the newest release newer than the locked one that the quarantine kept
    out and the spec allows (pre-releases only when the lock already has one, yanked ones
    never)."""
    cutoff = now - age
    for name, locked in pinned.pins.items():
        found, current = pages.get(name), _version(locked)
        if found is None or current is None:
            continue
        page, reqs = found[1], (pinned.requirements or {}).get(name, ())
        for text in reversed(page.versions()):
            candidate = Version(text)
            if candidate <= current:
                break
            if candidate.is_prerelease and not current.is_prerelease:
                continue
            uploaded = page.uploaded(text)
            if uploaded is None or uploaded <= cutoff or page.yanked(text) is not None:
                continue
            if _allowed(reqs, candidate):
                yield HeldBack(pinned.env.name, name, locked, text, uploaded, uploaded + age)
                break


def _missing(
    pinned: PinnedEnv, pages: Mapping[str, Found], now: datetime, age: timedelta
) -> Iterable[HeldBack]:
    """Direct requirements left out because every release the spec allows is too young:
    the one that becomes eligible first, with no locked version."""
    for name in pinned.missing():
        found = pages.get(name)
        if found is None:
            continue
        page, reqs = found[1], (pinned.requirements or {}).get(name, ())
        allowed = [
            (uploaded, text)
            for text in page.versions()
            if page.yanked(text) is None
            and (uploaded := page.uploaded(text)) is not None
            and _allowed(reqs, Version(text))
        ]
        if allowed and all(uploaded > now - age for uploaded, _ in allowed):
            uploaded, text = min(allowed)
            yield HeldBack(pinned.env.name, name, None, text, uploaded, uploaded + age)


def failure_reason(held: HeldBack, age: timedelta) -> str:
    """Why a compile failed when the quarantine kept every allowed release out."""
    return (
        f"{held.environment}: the compile failed because of the release-age quarantine: every "
        f"release of {held.package} the spec allows was uploaded less than {format_age(age)} "
        f"ago; the first, {held.version}, is eligible from {held.eligible:%Y-%m-%d %H:%M} UTC. "
        f"Wait until then, or set `min_release_age: 0d` on the environment "
        f"{held.environment} to take it now"
    )


def explain_failures(compiled: CompileStageResult, signals: SignalsResult) -> CompileStageResult:
    """``compiled`` with each failure the quarantine caused saying so in its error."""
    reasons: dict[str, list[str]] = {}
    for note in signals.notes:
        name, _, rest = note.partition(": ")
        if rest.startswith("the compile failed because of the release-age quarantine"):
            reasons.setdefault(name, []).append(rest)
    if not reasons:
        return compiled
    results = tuple(
        replace(r, error="\n".join((r.error or "", *reasons[r.name])).strip())
        if r.status == "failed" and r.name in reasons
        else r
        for r in compiled.results
    )
    return replace(compiled, results=results)


def _young_moves(
    pinned: PinnedEnv, pages: Mapping[str, Found], now: datetime, age: timedelta
) -> Iterable[str]:
    """A line per package a targeted refresh moved to a release younger than ``age``."""
    if pinned.before is None or pinned.result.status == "failed":
        return
    for name, version in pinned.pins.items():
        found = pages.get(name)
        if pinned.before.get(name) == version or found is None:
            continue
        uploaded = found[1].uploaded(version)
        if uploaded is not None and uploaded > now - age:
            line = quarantine_note(name, version, uploaded, age, why=TARGETED_WHY)
            yield f"{pinned.env.name}: {line}"


def _no_upload_times(pinned: PinnedEnv, pages: Mapping[str, Found]) -> Iterable[str]:
    """A note per index of the environment that gives no upload times, found from its
    pages and from what the resolver printed."""
    if not pinned.held:
        return
    found = [pages[n] for n in pinned.wanted() if n in pages]
    bare = {url for url, page in found if _no_times(page)}
    bare |= set(indexes_without_times(pinned.result, pinned.indexes))
    for url in sorted(bare):
        yield no_upload_times_note(pinned.env.name, pinned.env.backend, url)


def indexes_without_times(result: LockResult, indexes: tuple[str, ...]) -> tuple[str, ...]:
    """The indexes a failed compile's resolver said give no upload times: pip names the
    index; uv names only the file, so then each of the environment's indexes."""
    if result.status != "failed":
        return ()
    output = f"{result.tool_output}\n{result.error or ''}"
    named = tuple(dict.fromkeys(m.group(1) for m in _PIP_NO_TIMES.finditer(output)))
    return named or (indexes if _UV_NO_TIMES in output else ())


def _no_times(page: ProjectPage) -> bool:
    return bool(page.files) and all(f.upload_time is None for f in page.files)


_NO_TIMES_EFFECT = {
    "pip-tools": "pip refuses such an index, so the compile fails",
    "uv": "uv leaves out every file without one, so the compile finds none of its releases",
}
"""What each compiler does with an index without upload times under a cutoff (measured)."""


def no_upload_times_note(environment: str, backend: str, url: str) -> str:
    """The quarantine met an index that cannot be held to it."""
    effect = _NO_TIMES_EFFECT.get(backend, _NO_TIMES_EFFECT["uv"])
    return (
        f"{environment}: the quarantine could not be applied to {display_url(url)}: it "
        f"publishes no upload times; {effect}. Use an index that publishes them (PEP 700), "
        f"or set `min_release_age: 0d` on the environment {environment}"
    )


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
