"""What changed between two versions of a lock, in the terms a reviewer needs.

Entries are matched by ``(name, marker)`` because uv may pin one name twice under different
markers. Every change is classified (upgraded, downgraded, hash-only, ...) and version
jumps carry their size (major, minor, patch, pre-release, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar, get_args

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.locks.lockfile import Lockfile, RequirementEntry

ChangeType = Literal[
    "added", "removed", "upgraded", "downgraded", "hash-only", "source", "rebuilt", "group"
]
"""``rebuilt``: same version, another conda build or channel; ``group``: same pin, other
Poetry dependency groups (a dev tool moving into ``main`` reaches production)."""
ChangeKind = Literal["major", "minor", "patch", "pre-release", "post", "local"]

_K = TypeVar("_K")

CHANGE_TYPES: tuple[ChangeType, ...] = get_args(ChangeType)

# pip-compile and uv annotate a requirement that comes from a project file rather than a
# ``.in`` spec as ``name (pyproject.toml)``; that is a direct requirement too.
_PROJECT_SOURCE_RE = re.compile(r"\((?:pyproject\.toml|setup\.py|setup\.cfg)\)$")


@dataclass(frozen=True)
class PackageChange:
    """One package whose pin, source or hashes differ between two locks."""

    name: str
    """Canonical name."""
    before: str | None
    """Version (or URL / specifier for entries without a pin); None when added."""
    after: str | None
    """Version (or URL / specifier for entries without a pin); None when removed."""
    change: ChangeType
    kind: ChangeKind | None
    """Size of the jump for upgraded/downgraded; None otherwise."""
    direct: bool
    marker: str | None = None
    hashes_added: tuple[str, ...] = ()
    hashes_removed: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    """Poetry groups of the package (after the change; before it when removed)."""
    groups_before: tuple[str, ...] | None = None
    """The groups before, when they changed."""
    build_before: str | None = None
    """Conda build string (and channel, when it changed) before and after."""
    build_after: str | None = None


@dataclass(frozen=True)
class LockDiff:
    """All changes between two locks, sorted by ``(name, marker or "")``."""

    changes: tuple[PackageChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def hash_only(self) -> tuple[PackageChange, ...]:
        """Same version, different hashes: a re-upload or tampering, to be looked at."""
        return tuple(c for c in self.changes if c.change == "hash-only")

    def counts(self) -> dict[str, int]:
        """Number of changes per change type; every type is present, zero included."""
        out: dict[str, int] = dict.fromkeys(CHANGE_TYPES, 0)
        for change in self.changes:
            out[change.change] += 1
        return out


def classify_version_change(
    before: str, after: str
) -> tuple[Literal["upgraded", "downgraded", "same"], ChangeKind | None]:
    """Direction and size of a version change.

    The size is the most significant differing release part (major, minor, patch), else
    the pre/dev, post or local segment. A move onto a pre-release is always reported as
    ``pre-release``: that is what a reviewer must notice. Invalid versions are compared as
    strings and get no size.
    """
    try:
        old, new = Version(before), Version(after)
    except InvalidVersion:
        if before == after:
            return "same", None
        return ("upgraded" if after > before else "downgraded"), None
    if old == new:
        return "same", None
    direction: Literal["upgraded", "downgraded"] = "upgraded" if new > old else "downgraded"
    if old.epoch != new.epoch:
        # A new epoch restarts the numbering: at least as disruptive as a major release.
        return direction, "pre-release" if new.is_prerelease else "major"
    width = max(len(old.release), len(new.release))
    # Pad so that 1.0 and 1.0.0 compare equal, as packaging itself does.
    old_release = old.release + (0,) * (width - len(old.release))
    new_release = new.release + (0,) * (width - len(new.release))
    if old_release != new_release:
        if new.is_prerelease:
            return direction, "pre-release"
        first = next(
            i for i, (a, b) in enumerate(zip(old_release, new_release, strict=True)) if a != b
        )
        return direction, ("major" if first == 0 else "minor" if first == 1 else "patch")
    if (old.pre, old.dev) != (new.pre, new.dev):
        return direction, "pre-release"
    if old.post != new.post:
        return direction, "post"
    return direction, "local"


def diff_locks(
    before: Lockfile | None,
    after: Lockfile,
    *,
    direct_names: frozenset[str] = frozenset(),
) -> LockDiff:
    """Changes from ``before`` to ``after``; ``before=None`` is a new lock (all added).

    ``direct_names`` marks requirements as direct in addition to what the annotations say
    (``# via -r spec.in`` or ``# via project (pyproject.toml)``).
    """
    direct = frozenset(canonicalize_name(n) for n in direct_names)
    old_entries = before.requirements if before is not None else ()
    changes: list[PackageChange] = []
    for old, new in _pair(old_entries, after.requirements):
        change = _compare(old, new, direct)
        if change is not None:
            changes.append(change)
    # sorted() is stable: duplicates of one (name, marker) keep their file order.
    changes.sort(key=lambda c: (c.name, c.marker or ""))
    return LockDiff(changes=tuple(changes))


def _pair(
    old_entries: Iterable[RequirementEntry], new_entries: Iterable[RequirementEntry]
) -> list[tuple[RequirementEntry | None, RequirementEntry | None]]:
    """Match entries of the two locks; unmatched entries pair with None."""
    old_by_name = _group(old_entries, lambda e: e.name)
    new_by_name = _group(new_entries, lambda e: e.name)
    pairs: list[tuple[RequirementEntry | None, RequirementEntry | None]] = []
    for name in _union(old_by_name, new_by_name):
        olds, news = old_by_name.get(name, []), new_by_name.get(name, [])
        if len(olds) == 1 and len(news) == 1:
            # One entry each side: the same package even if its marker was rewritten.
            pairs.append((olds[0], news[0]))
            continue
        old_by_marker = _group(olds, lambda e: e.marker)
        new_by_marker = _group(news, lambda e: e.marker)
        for marker in _union(old_by_marker, new_by_marker):
            pairs.extend(
                _pair_same_key(old_by_marker.get(marker, []), new_by_marker.get(marker, []))
            )
    return pairs


def _pair_same_key(
    olds: list[RequirementEntry], news: list[RequirementEntry]
) -> list[tuple[RequirementEntry | None, RequirementEntry | None]]:
    """Pair entries sharing name and marker (pybuild-deps pins one name at several versions).

    Identical pins pair first, the rest in file order; leftovers are added or removed.
    """
    pairs: list[tuple[RequirementEntry | None, RequirementEntry | None]] = []
    remaining = list(news)
    unmatched_old: list[RequirementEntry] = []
    for old in olds:
        same = next((n for n in remaining if _identity(n) == _identity(old)), None)
        if same is None:
            unmatched_old.append(old)
        else:
            remaining.remove(same)
            pairs.append((old, same))
    for i in range(max(len(unmatched_old), len(remaining))):
        pairs.append(
            (
                unmatched_old[i] if i < len(unmatched_old) else None,
                remaining[i] if i < len(remaining) else None,
            )
        )
    return pairs


def _compare(
    old: RequirementEntry | None, new: RequirementEntry | None, direct: frozenset[str]
) -> PackageChange | None:
    """The change from ``old`` to ``new`` (either may be None), or None when unchanged."""
    if new is None:
        assert old is not None
        return _change(old, direct, _value(old), None, "removed")
    if old is None:
        return _change(new, direct, None, _value(new), "added")
    if old.version is not None and new.version is not None and old.url == new.url:
        direction, kind = classify_version_change(old.version, new.version)
        if direction != "same":
            return _with_context(
                _change(new, direct, old.version, new.version, direction, kind), old, new
            )
        if _build(old) != _build(new):
            return _with_context(
                _change(new, direct, old.version, new.version, "rebuilt"), old, new
            )
    elif _identity(old) != _identity(new):
        return _with_context(_change(new, direct, _value(old), _value(new), "source"), old, new)
    if old.hashes and new.hashes and set(old.hashes) != set(new.hashes):
        old_set, new_set = set(old.hashes), set(new.hashes)
        return _change(
            new,
            direct,
            _value(old),
            _value(new),
            "hash-only",
            hashes_added=tuple(h for h in new.hashes if h not in old_set),
            hashes_removed=tuple(h for h in old.hashes if h not in new_set),
        )
    if old.groups != new.groups:
        return _with_context(_change(new, direct, _value(old), _value(new), "group"), old, new)
    # Same pin and same hashes: a changed ``# via`` list alone is no change.
    return None


def _build(entry: RequirementEntry) -> str | None:
    """A conda package's build, with its channel: ``py311h_0 (conda-forge)``."""
    if entry.build is None and entry.channel is None:
        return None
    return f"{entry.build or ''} ({entry.channel})" if entry.channel else entry.build


def _with_context(
    change: PackageChange, old: RequirementEntry, new: RequirementEntry
) -> PackageChange:
    """Add what a reviewer of a Poetry or conda lock needs: groups moved, build changed."""
    builds = (_build(old), _build(new))
    return replace(
        change,
        groups=new.groups,
        groups_before=old.groups if old.groups != new.groups else None,
        build_before=builds[0] if builds[0] != builds[1] else None,
        build_after=builds[1] if builds[0] != builds[1] else None,
    )


def _change(
    entry: RequirementEntry,
    direct: frozenset[str],
    before: str | None,
    after: str | None,
    change: ChangeType,
    kind: ChangeKind | None = None,
    *,
    hashes_added: tuple[str, ...] = (),
    hashes_removed: tuple[str, ...] = (),
) -> PackageChange:
    """A change described by ``entry`` (the after entry, or the before one when removed)."""
    return PackageChange(
        name=entry.name,
        before=before,
        after=after,
        change=change,
        kind=kind,
        direct=_is_direct(entry, direct),
        marker=entry.marker,
        hashes_added=hashes_added,
        hashes_removed=hashes_removed,
        groups=entry.groups,
    )


def _identity(entry: RequirementEntry) -> tuple[str | None, str | None, str]:
    """What an entry installs, hashes aside: its URL, its pin, else its specifier."""
    return (entry.url, entry.version, entry.specifier if entry.version is None else "")


def _value(entry: RequirementEntry) -> str | None:
    """The text shown for an entry: version, else URL, else specifier (None if empty)."""
    return entry.version or entry.url or entry.specifier or None


def _is_direct(entry: RequirementEntry, direct: frozenset[str]) -> bool:
    if entry.name in direct:
        return True
    return any(v.startswith("-r ") or _PROJECT_SOURCE_RE.search(v) for v in entry.via)


def _group(
    entries: Iterable[RequirementEntry], key: Callable[[RequirementEntry], _K]
) -> dict[_K, list[RequirementEntry]]:
    """Entries grouped by ``key``, groups and members in file order."""
    out: dict[_K, list[RequirementEntry]] = {}
    for entry in entries:
        out.setdefault(key(entry), []).append(entry)
    return out


def _union(
    first: dict[_K, list[RequirementEntry]], second: dict[_K, list[RequirementEntry]]
) -> list[_K]:
    """Keys of both dicts, ``first``'s order then ``second``'s new keys."""
    return [*first, *(k for k in second if k not in first)]
