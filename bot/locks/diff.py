"""What changed between two versions of a lock, in the terms a reviewer needs.

Entries are matched by name, and by marker and extras where a lock lists one name several
times (uv per marker, ``requests`` beside ``requests[socks]`` in an export). Every change is
classified (upgraded, downgraded, hash-only, files-added, marker, ...) and version jumps carry
their size (major, minor, patch, pre-release, ...). ``describe_text_change`` names what
changed in a file whose packages did not.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Literal, TypeVar, get_args

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from bot.locks.formats.poetry.project import lock_format
from bot.locks.lockfile import Lockfile, RequirementEntry

ChangeType = Literal[
    "added",
    "removed",
    "upgraded",
    "downgraded",
    "hash-only",
    "source",
    "rebuilt",
    "group",
    "files-added",
    "files-changed",
    "marker",
]
"""``hash-only``: same version, a file's hash changed (a re-upload or tampering: Poetry names
the file; a requirements lock, which names none, had hashes removed as well as added);
``files-added``: same version, new files (new wheels) and no hash changed or removed;
``files-changed``: same version, files removed or renamed but none changed its hash (Poetry);
``rebuilt``: same version, another conda build or channel; ``group``: same pin, other Poetry
dependency groups (a dev tool moving into ``main`` reaches production), reported only when
both locks record groups; ``marker``: same pin, another environment marker."""
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
    marker_before: str | None = None
    """The marker before, when it changed (``marker`` is the one after)."""
    files_changed: tuple[str, ...] = ()
    """For ``hash-only`` in a lock that names its files: the files whose hash changed."""


@dataclass(frozen=True)
class LockDiff:
    """All changes between two locks, sorted by ``(name, marker or "")``."""

    changes: tuple[PackageChange, ...]

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def hash_only(self) -> tuple[PackageChange, ...]:
        """Same version, a hash changed or removed: a re-upload or tampering, to be looked
        at. New files alone (``files-added``) are not among them."""
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
        pairs.extend(_pair_same_name(old_by_name.get(name, []), new_by_name.get(name, [])))
    return pairs


# From the strictest to the loosest: what two entries of one name must share to pair.
_PAIRING_KEYS: tuple[Callable[[RequirementEntry], object], ...] = (
    lambda e: (e.marker, e.extras, _identity(e)),
    lambda e: (e.marker, e.extras),
    lambda e: e.marker,
    lambda e: (e.extras, _identity(e)),
)


def _pair_same_name(
    olds: list[RequirementEntry], news: list[RequirementEntry]
) -> list[tuple[RequirementEntry | None, RequirementEntry | None]]:
    """Pair the entries of one name: one each side is one package even if its marker or
    extras were rewritten; with several (uv per marker, pybuild-deps pinning one name at
    several versions, ``requests`` beside ``requests[socks]``), identical entries pair
    first, then ever looser matches, then the rest in file order. Only a surplus on one
    side is added or removed, and not even that when it pins what a paired entry of its
    side pins (``pydantic`` and ``pydantic[email]`` at one version became one line)."""
    if len(olds) == 1 and len(news) == 1:
        return [(olds[0], news[0])]
    pairs: list[tuple[RequirementEntry | None, RequirementEntry | None]] = []
    old_left, new_left = list(olds), list(news)
    for key in _PAIRING_KEYS:
        for old in list(old_left):
            same = next((n for n in new_left if key(n) == key(old)), None)
            if same is not None:
                old_left.remove(old)
                new_left.remove(same)
                pairs.append((old, same))
    common = min(len(old_left), len(new_left))
    pairs += zip(old_left[:common], new_left[:common], strict=True)
    paired_old = {_identity(o) for o, _ in pairs if o is not None}
    paired_new = {_identity(n) for _, n in pairs if n is not None}
    pairs += [(o, None) for o in old_left[common:] if _identity(o) not in paired_old]
    pairs += [(None, n) for n in new_left[common:] if _identity(n) not in paired_new]
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
        return _with_context(_files_change(old, new, direct), old, new)
    if _groups_moved(old, new):
        return _with_context(_change(new, direct, _value(old), _value(new), "group"), old, new)
    if old.marker != new.marker:
        return _with_context(_change(new, direct, _value(old), _value(new), "marker"), old, new)
    # Same pin, hashes and marker: a changed ``# via`` list alone is no change.
    return None


def _files_change(
    old: RequirementEntry, new: RequirementEntry, direct: frozenset[str]
) -> PackageChange:
    """Same pin, other hashes: new files only, or a file whose hash changed.

    A lock that names its files (Poetry) tells a re-upload (one name, another hash) from new
    or withdrawn files. A requirements lock names none: hashes added and none removed are
    new files; any removed hash may be a re-upload.
    """
    old_set, new_set = set(old.hashes), set(new.hashes)
    added = tuple(h for h in new.hashes if h not in old_set)
    removed = tuple(h for h in old.hashes if h not in new_set)
    rehashed: tuple[str, ...] = ()
    change: ChangeType
    if old.files and new.files:
        before = dict(old.files)
        rehashed = tuple(f for f, h in new.files if f in before and before[f] != h)
        change = "hash-only" if rehashed else "files-added" if not removed else "files-changed"
    else:
        change = "files-added" if not removed else "hash-only"
    return replace(
        _change(new, direct, _value(old), _value(new), change),
        hashes_added=added,
        hashes_removed=removed,
        files_changed=rehashed,
    )


def _groups_moved(old: RequirementEntry, new: RequirementEntry) -> bool:
    """True when both locks record the package's groups and they differ. A lock that records
    none (requirements files, Poetry lock-version 2.0) leaves them unknown, not moved."""
    return bool(old.groups) and bool(new.groups) and old.groups != new.groups


def _build(entry: RequirementEntry) -> str | None:
    """A conda package's build, with its channel: ``py311h_0 (conda-forge)``."""
    if entry.build is None and entry.channel is None:
        return None
    return f"{entry.build or ''} ({entry.channel})" if entry.channel else entry.build


def _with_context(
    change: PackageChange, old: RequirementEntry, new: RequirementEntry
) -> PackageChange:
    """Add what a reviewer needs: groups moved, build changed, marker before."""
    builds = (_build(old), _build(new))
    return replace(
        change,
        groups=new.groups,
        groups_before=old.groups if _groups_moved(old, new) else None,
        build_before=builds[0] if builds[0] != builds[1] else None,
        build_after=builds[1] if builds[0] != builds[1] else None,
        marker_before=old.marker if old.marker != new.marker else None,
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


TextChangeKind = Literal["header", "annotations", "metadata", "format-migration", "layout"]


@dataclass(frozen=True)
class TextChange:
    """What differs in a lock file whose packages, pins, hashes and markers did not."""

    kind: TextChangeKind
    detail: str | None = None
    """For ``format-migration``: ``from Poetry 1.8.3 (lock-version 2.0) to Poetry 2.5.1``."""


# An annotation after a requirement (``pkg==1.0  # via x``); a URL's ``#egg=`` has no space.
_TRAILING_COMMENT_RE = re.compile(r"\s+#.*$")
_CONTENT_HASH_RE = re.compile(r"^\s*content-hash\s*=.*$", re.M)


def describe_text_change(old_text: str | None, new_text: str | None) -> TextChange | None:
    """What changed in a file's bytes, for a file whose diff lists no package: None when
    the texts are the same (or one is missing: then the packages tell). Never "nothing"
    for bytes that differ: a header, annotations, Poetry's metadata or format, else layout."""
    if old_text is None or new_text is None or old_text == new_text:
        return None
    migration = _format_migration(old_text, new_text)
    if migration is not None:
        return TextChange("format-migration", migration)
    old_lines, new_lines = old_text.splitlines(), new_text.splitlines()
    if _body(old_lines) == _body(new_lines):
        return TextChange("header")
    if _without_comments(old_lines) == _without_comments(new_lines):
        return TextChange("annotations")
    if _CONTENT_HASH_RE.sub("", old_text) == _CONTENT_HASH_RE.sub("", new_text):
        return TextChange("metadata")
    return TextChange("layout")


def _format_migration(old_text: str, new_text: str) -> str | None:
    old, new = lock_format(old_text), lock_format(new_text)
    if old is None or new is None or old.lock_version == new.lock_version:
        return None
    writer = f"Poetry {new.poetry}" if new.poetry else f"lock-version {new.lock_version}"
    return f"from {old.describe} to {writer}"


def _body(lines: list[str]) -> list[str]:
    """The lines after the leading comment block (the header both tools write)."""
    start = next((i for i, line in enumerate(lines) if line.strip() and line[0] != "#"), None)
    return [] if start is None else lines[start:]


def _without_comments(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.lstrip().startswith("#"):
            continue
        stripped = _TRAILING_COMMENT_RE.sub("", line).rstrip()
        if stripped:
            out.append(stripped)
    return out
