"""The release-age quarantine: a full refresh picks only releases uploaded at least
``min_release_age`` ago, so a compromised or broken release has time to be noticed and
yanked before it reaches a lock.

Only full refreshes (the scheduled ones) are held back: a minimal or targeted refresh, such as
a security fix, asked for its versions and gets them, with a note when one is younger.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from bot.locks.modes import CompileMode

if TYPE_CHECKING:  # the config reads ages from here; the index client is loaded on use
    from bot.upstream.index import ProjectPage

AGE_FIELD = "min_release_age"
_AGE = re.compile(r"^(?P<count>[0-9]{1,4})(?P<unit>[mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """``90m``, ``12h``, ``3d`` or ``2w`` as a duration (``0d``: no quarantine); ValueError
    with what to write otherwise."""
    found = _AGE.match(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, m (minutes), "
            "h (hours), d (days) or w (weeks), e.g. 3d"
        )
    return timedelta(**{_UNITS[found["unit"]]: int(found["count"])})


def release_age(environment_age: str | None, repository_age: str | None) -> timedelta | None:
    """The environment's quarantine (its own setting over the repository's); None: none."""
    text = environment_age if environment_age is not None else repository_age
    if text is None:
        return None
    age = parse_age(text)
    return age if age > timedelta(0) else None


def upload_cutoff(
    age: timedelta | None, mode: CompileMode, holds_back: bool, now: datetime
) -> datetime | None:
    """The upload time a compile must not pick releases after: for full refreshes with a
    quarantine, by a compiler that ``holds_back`` by upload time; None otherwise."""
    if age is None or mode.kind != "full" or not holds_back:
        return None
    return (now - age).astimezone(UTC).replace(microsecond=0)


def rfc3339(moment: datetime) -> str:
    """``2024-05-01T12:00:00Z``: the form both uv and pip accept."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_quarantined(page: ProjectPage, version: str, now: datetime, age: timedelta) -> bool:
    """Whether ``version`` was uploaded less than ``age`` before ``now`` (unknown upload
    times are not: an index without them cannot be held to a quarantine)."""
    uploaded = page.uploaded(version)
    return uploaded is not None and uploaded > now - age


def eligible_at(page: ProjectPage, version: str, age: timedelta) -> datetime | None:
    """When ``version`` becomes old enough to be picked (None: upload time unknown)."""
    uploaded = page.uploaded(version)
    return None if uploaded is None else uploaded + age


def quarantine_note(
    package: str,
    version: str,
    uploaded: datetime,
    age: timedelta,
    *,
    why: str,
) -> str:
    """One line for a release taken although it is younger than the quarantine."""
    return (
        f"{package} {version} was uploaded {uploaded:%Y-%m-%d %H:%M} UTC, less than "
        f"{format_age(age)} ago: {why}; review the release before merging"
    )


def not_applied_note(environment: str, backend: str, age: timedelta) -> str:
    """Why an environment's lock was not held to its quarantine."""
    return (
        f"{environment}: min_release_age ({format_age(age)}) is not applied to the {backend} "
        f"backend, whose resolver cannot leave out releases by upload time; review new "
        "releases in its lock yourself, or move the environment to pip-tools or uv"
    )


def format_age(age: timedelta) -> str:
    minutes = int(age.total_seconds() // 60)
    for unit, size in (("w", 7 * 24 * 60), ("d", 24 * 60), ("h", 60)):
        if minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"
