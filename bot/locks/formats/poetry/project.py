"""Poetry projects: ``poetry.lock`` as a ``Lockfile``, ``pyproject.toml`` as direct
requirements per dependency group, and pins written into ``pyproject.toml``.

Everything here is pure: files are read by the caller (``read_pyproject`` and
``is_poetry_project`` excepted) and Poetry itself never runs. The Poetry backend
(``bot.locks.formats.poetry.compiler``) runs it.

Poetry 2 writes ``lock-version = "2.1"``: every package records its dependency ``groups`` and
its ``markers`` (one string, or a table of group -> marker). Older locks (lock-version 1.x and
2.0) are read too, as Poetry 2 reads them: ``category`` instead of ``groups``, and hashes
under ``[metadata.files]`` (or bare ``[metadata.hashes]``) instead of per package.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from tomlkit.exceptions import ParseError
from tomlkit.items import Array, Comment, Item, Table, Trivia
from tomlkit.toml_document import TOMLDocument

from bot.errors import ConfigError, LockfileParseError, LockwardenError
from bot.locks.formats.base import SpecEntry, read_spec_text
from bot.locks.lockfile import Lockfile, LockHeader, RequirementEntry
from bot.locks.pin_notes import PIN_NOTE_RE, note_comment

LOCK_NAME = "poetry.lock"
"""The lock Poetry writes beside ``pyproject.toml``."""

POETRY_BUILD_BACKEND = "poetry.core.masonry.api"

_READ_RANGE = ">=1.0,<3.0"
READ_LOCK_VERSIONS = SpecifierSet(_READ_RANGE)
"""The lock versions Poetry 2 reads (``Locker._READ_VERSION_RANGE = ">=1,<3"`` in
``poetry/packages/locker.py``); it writes ``2.1``. A lock outside the range was written by a
Poetry this one cannot read."""

MAIN_GROUP = "main"
_URL_SOURCES = ("git", "url", "file", "directory")
_TOML_POSITION_RE = re.compile(r"\(at line (\d+), column \d+\)")
_PACKAGE_HEADER_RE = re.compile(r"^\s*\[\[\s*package\s*\]\]\s*(?:#.*)?$")
_METADATA_HEADER_RE = re.compile(r"^\s*\[\s*metadata\s*\]\s*(?:#.*)?$")
_LOCK_VERSION_KEY_RE = re.compile(r"""^\s*(?:lock-version|"lock-version"|'lock-version')\s*=""")

# ---------------------------------------------------------------------------------------------
# poetry.lock
# ---------------------------------------------------------------------------------------------


def parse_poetry_lock(text: str, path: str) -> Lockfile:
    """``poetry.lock`` as a ``Lockfile`` (``flavour="poetry"``): one entry per ``[[package]]``.

    Raises ``LockfileParseError`` naming the line for invalid TOML, a missing ``[metadata]``
    or lock-version, a lock-version Poetry 2 cannot read, and packages without name or version.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION_RE.search(str(exc))
        line = int(found.group(1)) if found else max(1, len(text.splitlines()))
        raise LockfileParseError(
            path, line, f"not valid TOML ({exc}); fix it or regenerate it with `poetry lock`"
        ) from exc
    lines = text.splitlines()
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        raise LockfileParseError(
            path,
            max(1, len(lines)),
            "no [metadata] table, so this is no poetry.lock Poetry can read; regenerate it "
            "with `poetry lock`",
        )
    _check_lock_version(metadata, lines, path)
    packages = data.get("package", [])
    headers = [n for n, line in enumerate(lines, start=1) if _PACKAGE_HEADER_RE.match(line)]
    if not isinstance(packages, list):
        raise LockfileParseError(path, 1, "'package' must be an array of [[package]] tables")
    legacy = _Legacy(_legacy_hashes(metadata), _legacy_files(metadata))
    dependents = _dependents(packages)
    entries = []
    for index, package in enumerate(packages):
        line = headers[index] if index < len(headers) else 1
        entries.append(_package_entry(package, line, path, legacy, dependents))
    return Lockfile(
        path=path,
        header=_lock_header(lines),
        requirements=tuple(entries),
        flavour="poetry",
    )


def _check_lock_version(metadata: dict[str, Any], lines: list[str], path: str) -> None:
    metadata_line = next((n for n, t in enumerate(lines, 1) if _METADATA_HEADER_RE.match(t)), 1)
    version_line = next(
        (n for n, t in enumerate(lines, 1) if n > metadata_line and _LOCK_VERSION_KEY_RE.match(t)),
        metadata_line,
    )
    raw = metadata.get("lock-version")
    if raw is None:
        raise LockfileParseError(
            path,
            metadata_line,
            "[metadata] has no lock-version, so Poetry cannot tell how to read this lock; "
            "regenerate it with `poetry lock`",
        )
    try:
        version = Version(raw) if isinstance(raw, str) else None
    except InvalidVersion:
        version = None
    if version is None:
        raise LockfileParseError(
            path,
            version_line,
            f'[metadata] lock-version {raw!r} is not a version such as "2.1"; regenerate '
            "the lock with `poetry lock`",
        )
    if version in READ_LOCK_VERSIONS:
        return
    if version >= Version("3"):
        raise LockfileParseError(
            path,
            version_line,
            f"[metadata] lock-version {raw} was written by a newer Poetry than this one reads "
            f"(Poetry 2.x reads lock-version {_READ_RANGE}); update Poetry or "
            "regenerate the lock with `poetry lock --regenerate`",
        )
    raise LockfileParseError(
        path,
        version_line,
        f"[metadata] lock-version {raw} was written by an older Poetry than this one reads "
        f"(Poetry 2.x reads lock-version {_READ_RANGE}); regenerate the lock with "
        "`poetry lock --regenerate`",
    )


def _lock_header(lines: list[str]) -> LockHeader:
    """The comment block Poetry writes at the top (``# This file is automatically ...``)."""
    comments: list[str] = []
    for line in lines:
        if not line.startswith("#"):
            break
        comments.append(line)
    if not comments:
        return LockHeader(tool="none", python_version=None, command=(), text="")
    return LockHeader(tool="other", python_version=None, command=(), text="\n".join(comments))


def _legacy_hashes(metadata: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Hashes of lock-version 1.x locks: ``[metadata.files]`` (file and hash per name) or,
    older still, ``[metadata.hashes]`` (bare sha256 digests per name)."""
    out: dict[str, tuple[str, ...]] = {}
    files = metadata.get("files")
    if isinstance(files, dict):
        for name, items in files.items():
            out[canonicalize_name(name)] = _file_hashes(items)
    hashes = metadata.get("hashes")
    if isinstance(hashes, dict):
        for name, items in hashes.items():
            if isinstance(items, list):
                out.setdefault(
                    canonicalize_name(name),
                    tuple(_hash_value(h) for h in items if isinstance(h, str)),
                )
    return out


def _legacy_files(metadata: dict[str, Any]) -> dict[str, tuple[tuple[str, str], ...]]:
    """``[metadata.files]`` of lock-version 1.x locks as (file name, hash) per package."""
    files = metadata.get("files")
    if not isinstance(files, dict):
        return {}
    return {canonicalize_name(name): _named_files(items) for name, items in files.items()}


def _named_files(items: object) -> tuple[tuple[str, str], ...]:
    """``files = [{file = ..., hash = ...}]`` as (file name, hash) pairs."""
    if not isinstance(items, list):
        return ()
    return tuple(
        (item["file"], _hash_value(item["hash"]))
        for item in items
        if isinstance(item, dict)
        and isinstance(item.get("file"), str)
        and isinstance(item.get("hash"), str)
    )


def _file_hashes(items: object) -> tuple[str, ...]:
    if not isinstance(items, list):
        return ()
    return tuple(
        _hash_value(item["hash"])
        for item in items
        if isinstance(item, dict) and isinstance(item.get("hash"), str)
    )


def _hash_value(value: str) -> str:
    return value if ":" in value else f"sha256:{value}"


def _dependents(packages: list[Any]) -> dict[str, tuple[str, ...]]:
    """Canonical name -> names of the locked packages that depend on it, in lock order."""
    out: dict[str, list[str]] = {}
    for package in packages:
        if not isinstance(package, dict) or not isinstance(package.get("name"), str):
            continue
        dependencies = package.get("dependencies")
        if not isinstance(dependencies, dict):
            continue
        for dependency in dependencies:
            names = out.setdefault(canonicalize_name(dependency), [])
            if package["name"] not in names:
                names.append(package["name"])
    return {name: tuple(names) for name, names in out.items()}


@dataclass(frozen=True)
class _Legacy:
    """Hashes and files of lock-version 1.x locks, kept in ``[metadata]`` per package."""

    hashes: Mapping[str, tuple[str, ...]]
    files: Mapping[str, tuple[tuple[str, str], ...]]


def _package_entry(
    package: object,
    line: int,
    path: str,
    legacy: _Legacy,
    dependents: Mapping[str, tuple[str, ...]],
) -> RequirementEntry:
    if not isinstance(package, dict):
        raise LockfileParseError(path, line, "[[package]] must be a table")
    for key in ("name", "version"):
        if not isinstance(package.get(key), str) or not package[key]:
            raise LockfileParseError(
                path,
                line,
                f"[[package]] without a {key}; regenerate the lock with `poetry lock`",
            )
    raw_name: str = package["name"]
    version: str = package["version"]
    name = canonicalize_name(raw_name)
    files = package.get("files")
    hashes = _file_hashes(files) if files is not None else legacy.hashes.get(name, ())
    named = _named_files(files) if files is not None else legacy.files.get(name, ())
    groups = _groups(package)
    source = package.get("source")
    source = source if isinstance(source, dict) else {}
    return RequirementEntry(
        name=name,
        raw_name=raw_name,
        specifier=f"=={version}",
        version=version,
        marker=_marker(package.get("markers"), groups),
        url=_source_url(source),
        editable=source.get("type") == "directory" and package.get("develop") is True,
        hashes=hashes,
        via=dependents.get(name, ()),
        line=line,
        groups=groups,
        files=named,
    )


def _groups(package: dict[str, Any]) -> tuple[str, ...]:
    groups = package.get("groups")
    if isinstance(groups, list):
        return tuple(sorted({g for g in groups if isinstance(g, str)}))
    category = package.get("category")  # lock-version 1.x and 2.0
    if isinstance(category, str) and category:
        return (category,)
    return ()


def _marker(markers: object, groups: tuple[str, ...]) -> str | None:
    """Poetry's ``markers``: a string, or a table of group -> marker when the groups differ.

    A group without an entry in the table has no marker, so the package is then needed
    unconditionally; otherwise the package is needed when any group's marker holds.
    """
    if isinstance(markers, str):
        return markers or None
    if not isinstance(markers, dict):
        return None
    per_group = {g: m for g, m in markers.items() if isinstance(m, str) and m}
    if any(group not in per_group for group in groups):
        return None
    ordered = [per_group[g] for g in groups] or list(per_group.values())
    unique = list(dict.fromkeys(ordered))
    if not unique:
        return None
    if len(unique) == 1:
        return unique[0]
    return " or ".join(f"({m})" for m in unique)


def _source_url(source: Mapping[str, Any]) -> str | None:
    """A direct reference for git, URL, file and directory sources; None for indexes."""
    kind = source.get("type")
    url = source.get("url")
    if kind not in _URL_SOURCES or not isinstance(url, str):
        return None
    subdirectory = source.get("subdirectory")
    fragment = f"#subdirectory={subdirectory}" if isinstance(subdirectory, str) else ""
    if kind == "git":
        reference = source.get("resolved_reference") or source.get("reference")
        prefix = "" if url.startswith("git+") else "git+"
        at = f"@{reference}" if isinstance(reference, str) and reference else ""
        return f"{prefix}{url}{at}{fragment}"
    return f"{url}{fragment}"


@dataclass(frozen=True)
class LockFormat:
    """Which Poetry wrote a ``poetry.lock``, and in which format."""

    lock_version: str
    poetry: str | None = None
    """The version in the ``@generated by Poetry X.Y.Z`` header; None without one."""

    @property
    def describe(self) -> str:
        """``Poetry 1.8.3 (lock-version 2.0)``."""
        writer = f"Poetry {self.poetry}" if self.poetry else "an unknown Poetry"
        return f"{writer} (lock-version {self.lock_version})"

    @property
    def before_groups(self) -> bool:
        """True for the formats older than the one Poetry 2 writes (2.1, which records every
        package's groups): Poetry 2 migrates them whenever it writes the lock."""
        try:
            return Version(self.lock_version) < Version(WRITTEN_LOCK_VERSION)
        except InvalidVersion:
            return False


WRITTEN_LOCK_VERSION = "2.1"
_GENERATED_BY_RE = re.compile(r"^#.*@generated by Poetry (?P<version>[0-9][^\s]*)")
_LOCK_VERSION_RE = re.compile(r"""^\s*lock-version\s*=\s*["'](?P<version>[^"']+)["']""", re.M)


def lock_format(text: str) -> LockFormat | None:
    """The writer and format of a ``poetry.lock`` text; None when it records no
    lock-version (not a lock Poetry reads)."""
    found = _LOCK_VERSION_RE.search(text)
    if found is None:
        return None
    first = text.split("\n", 1)[0]
    writer = _GENERATED_BY_RE.match(first)
    return LockFormat(found.group("version"), writer.group("version") if writer else None)


@dataclass(frozen=True)
class MigrationVerdict:
    """What to do with a lock Poetry rewrote in a newer format than the one it read.

    ``write``: the new lock (no migration, or one that was asked for: ``message`` says so);
    ``keep``: the old bytes, since no package changed; ``refuse``: packages changed and the
    migration was not asked for (``message`` says how to ask)."""

    action: Literal["write", "keep", "refuse"]
    message: str | None = None


def migration_verdict(old_text: str, new_text: str, path: str, *, asked: bool) -> MigrationVerdict:
    """Decide whether a lock an older Poetry wrote may become the newer format.

    Poetry 2 always writes lock-version 2.1, with every package's groups; a lock of Poetry 1
    (2.0 or older) is kept byte for byte when the new one locks the same packages, versions,
    sources, hashes and markers, and is only migrated when asked for (``poetry_migrate``, a
    full refresh).
    """
    old, new = lock_format(old_text), lock_format(new_text)
    if old is None or new is None or not old.before_groups or old.lock_version == new.lock_version:
        return MigrationVerdict("write")
    writer = f"Poetry {new.poetry}" if new.poetry else f"lock-version {new.lock_version}"
    migration = f"format migration from {old.describe} to {writer}"
    if asked:
        return MigrationVerdict(
            "write", f"{path}: {migration}; the lock now records each package's groups"
        )
    if _locked_packages(old_text, path) == _locked_packages(new_text, path):
        return MigrationVerdict("keep")
    return MigrationVerdict(
        "refuse",
        f"{path} was written by {old.describe}; this refresh changes packages, and {writer} "
        f"can only write it as a {migration}. Set `poetry_migrate: true` for this environment "
        "in .github/lockwarden.yml (or run a full refresh) to allow it, or migrate the lock "
        "with `poetry lock` yourself",
    )


def _locked_packages(text: str, path: str) -> list[tuple[str, ...]]:
    """What a lock installs, format aside: name, version, source, hashes and marker."""
    return sorted(
        (e.name, e.version or "", e.url or "", " ".join(sorted(e.hashes)), e.marker or "")
        for e in parse_poetry_lock(text, path).requirements
    )


# ---------------------------------------------------------------------------------------------
# pyproject.toml
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoetryProject:
    """What a Poetry project's ``pyproject.toml`` asks for."""

    path: str
    groups: Mapping[str, tuple[str, ...]]
    """Group -> canonical names of its direct dependencies; ``main`` always comes first."""
    optional: tuple[str, ...] = ()
    """Extras the project defines."""
    sources: tuple[tuple[str, str], ...] = ()
    """``[[tool.poetry.source]]`` as (name, url)."""
    requires_python: str | None = None

    @property
    def direct_names(self) -> frozenset[str]:
        """Canonical names of every direct dependency, of every group."""
        return frozenset(name for names in self.groups.values() for name in names)


def is_poetry_project(root: Path, pyproject: str) -> bool:
    """True when ``pyproject`` (repository-relative) is a Poetry project with ``poetry.lock``
    beside it. An unreadable or invalid file is no Poetry project to discover."""
    file = root / pyproject
    if not (file.is_file() and file.with_name("poetry.lock").is_file()):
        return False
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return _is_poetry_data(data)


def _is_poetry_data(data: Mapping[str, Any]) -> bool:
    tool = data.get("tool")
    if isinstance(tool, dict) and "poetry" in tool:
        return True
    build = data.get("build-system")
    return isinstance(build, dict) and build.get("build-backend") == POETRY_BUILD_BACKEND


def read_pyproject(root: Path, path: str) -> PoetryProject:
    """Read a Poetry project's ``pyproject.toml`` (``path`` is relative to ``root``).

    Raises ``ConfigError`` naming the line for invalid TOML, the field for a malformed
    dependency table, and saying so for a file that is no Poetry project.
    """
    return parse_pyproject(read_spec_text(root, path), path)


def parse_pyproject(text: str, path: str) -> PoetryProject:
    """``read_pyproject`` for text already read."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_POSITION_RE.search(str(exc))
        raise ConfigError(
            path, f"not valid TOML: {exc}", line=int(found.group(1)) if found else None
        ) from exc
    if not _is_poetry_data(data):
        raise ConfigError(
            path,
            "not a Poetry project: it has no [tool.poetry] table and its build backend is not "
            f"poetry-core ({POETRY_BUILD_BACKEND}); add [tool.poetry] or choose another backend "
            "for this environment",
        )
    project = _table_at(data, ("project",), path)
    poetry = _table_at(data, ("tool", "poetry"), path)
    groups: dict[str, list[str]] = {MAIN_GROUP: []}
    groups[MAIN_GROUP] += _requirement_names(project, "dependencies", "project", path)
    poetry_main = _table_at(poetry, ("dependencies",), path, "tool.poetry.dependencies")
    # ``python`` in [tool.poetry.dependencies] is the interpreter, not a package.
    groups[MAIN_GROUP] += [canonicalize_name(k) for k in poetry_main if k.lower() != "python"]
    legacy_dev = _table_at(poetry, ("dev-dependencies",), path, "tool.poetry.dev-dependencies")
    if legacy_dev:
        groups.setdefault("dev", []).extend(canonicalize_name(k) for k in legacy_dev)
    poetry_groups = _table_at(poetry, ("group",), path, "tool.poetry.group")
    for group in poetry_groups:
        field = f"tool.poetry.group.{group}.dependencies"
        table = _table_at(poetry_groups, (group, "dependencies"), path, field)
        groups.setdefault(group, []).extend(canonicalize_name(k) for k in table)
    for group, names in _dependency_groups(data, path).items():
        groups.setdefault(group, []).extend(names)
    return PoetryProject(
        path=path,
        groups=MappingProxyType({g: tuple(dict.fromkeys(n)) for g, n in groups.items()}),
        optional=_extras(project, poetry, path),
        sources=_sources(poetry, path),
        requires_python=_requires_python(project, poetry_main),
    )


def _table_at(
    data: Mapping[str, Any], keys: tuple[str, ...], path: str, field: str | None = None
) -> dict[str, Any]:
    """The table at ``keys`` (empty when absent); a ConfigError when it is not a table."""
    current: Any = data
    for key in keys:
        current = current.get(key) if isinstance(current, dict) else None
        if current is None:
            return {}
    if not isinstance(current, dict):
        raise ConfigError(path, "must be a table", field=field or ".".join(keys))
    return current


def _requirement_names(table: Mapping[str, Any], key: str, prefix: str, path: str) -> list[str]:
    """Canonical names of a PEP 508 requirement array (``[project] dependencies``)."""
    value = table.get(key)
    if value is None:
        return []
    field = f"{prefix}.{key}"
    if not isinstance(value, list):
        raise ConfigError(path, "must be an array of requirement strings", field=field)
    return [_requirement_name(item, path, f"{field}[{i}]") for i, item in enumerate(value)]


def _requirement_name(item: object, path: str, field: str) -> str:
    if not isinstance(item, str):
        raise ConfigError(path, "must be a requirement string such as 'numpy>=1.26'", field=field)
    try:
        return canonicalize_name(Requirement(item).name)
    except InvalidRequirement as exc:
        raise ConfigError(path, f"{item!r} is not a valid requirement: {exc}", field=field) from exc


def _dependency_groups(data: Mapping[str, Any], path: str) -> dict[str, list[str]]:
    """PEP 735 ``[dependency-groups]`` (read by Poetry 2.2 and later), includes expanded."""
    table = _table_at(data, ("dependency-groups",), path)
    out: dict[str, list[str]] = {}

    def names(group: str, seen: tuple[str, ...]) -> list[str]:
        items = table.get(group)
        field = f"dependency-groups.{group}"
        if not isinstance(items, list):
            raise ConfigError(path, "must be an array of requirements", field=field)
        found: list[str] = []
        for i, item in enumerate(items):
            if isinstance(item, dict) and isinstance(item.get("include-group"), str):
                included = item["include-group"]
                if included in seen or included not in table:
                    raise ConfigError(
                        path,
                        f"include-group {included!r} is unknown or includes itself",
                        field=f"{field}[{i}]",
                    )
                found += names(included, (*seen, included))
            else:
                found.append(_requirement_name(item, path, f"{field}[{i}]"))
        return found

    for group in table:
        out[group] = names(group, (group,))
    return out


def _extras(project: Mapping[str, Any], poetry: Mapping[str, Any], path: str) -> tuple[str, ...]:
    pep621 = _table_at(project, ("optional-dependencies",), path, "project.optional-dependencies")
    legacy = _table_at(poetry, ("extras",), path, "tool.poetry.extras")
    return tuple(dict.fromkeys([*pep621, *legacy]))


def _sources(poetry: Mapping[str, Any], path: str) -> tuple[tuple[str, str], ...]:
    sources = poetry.get("source", [])
    if not isinstance(sources, list):
        raise ConfigError(path, "must be an array of tables", field="tool.poetry.source")
    out = []
    for i, source in enumerate(sources):
        field = f"tool.poetry.source[{i}]"
        if not isinstance(source, dict) or not isinstance(source.get("name"), str):
            raise ConfigError(path, "a source needs a name", field=f"{field}.name")
        url = source.get("url")
        if url is None and source["name"].lower() == "pypi":
            url = "https://pypi.org/simple"  # PyPI, listed only to set its priority
        if not isinstance(url, str):
            raise ConfigError(path, "a source needs a url", field=f"{field}.url")
        out.append((source["name"], url))
    return tuple(out)


def _requires_python(project: Mapping[str, Any], poetry_main: Mapping[str, Any]) -> str | None:
    value = project.get("requires-python")
    if isinstance(value, str):
        return value
    python = next((v for k, v in poetry_main.items() if k.lower() == "python"), None)
    return python if isinstance(python, str) else None


# ---------------------------------------------------------------------------------------------
# Pins written into pyproject.toml (review commands)
# ---------------------------------------------------------------------------------------------

SiteKind = Literal["array", "table"]


@dataclass(frozen=True)
class _Site:
    """Where ``pyproject.toml`` lists one direct dependency."""

    kind: SiteKind
    group: str
    container: Any
    """The tomlkit ``Array`` (PEP 621 / PEP 735 requirement strings) or the dependency table
    (``[tool.poetry.dependencies]``-style) holding the entry."""
    key: str | int
    """Index into the array, or the key as written in the table."""


def pyproject_entry(text: str, path: str, name: str) -> SpecEntry | None:
    """How ``pyproject.toml`` lists ``name`` (the entry ``pin_in_pyproject`` would change):
    as written with its comment, the comment, and the version of an exact pin; None when it
    does not list it. Its ``written`` goes into the note's ``(was: ...)``."""
    site = _pin_site(_document(text, path), canonicalize_name(name), None)
    if site is None:
        return None
    return SpecEntry(_site_written(site), _site_comment(site), _site_pinned(site))


def _site_written(site: _Site) -> str:
    """The entry with its comment: ``numpy = "<2"  # keep`` (a table's, spacing as written),
    ``numpy<2  # keep`` (an array's)."""
    if site.kind == "array":
        comment = _site_comment(site)
        return _site_text(site) + (f"{_ARRAY_COMMENT}{comment}" if comment else "")
    item = _note_item(site.container[site.key])
    if item is None or not item.trivia.comment:
        return _site_text(site)
    return _site_text(site) + item.trivia.comment_ws + item.trivia.comment


def _site_pinned(site: _Site) -> str | None:
    """The version the entry pins exactly (``==1.0``), None for a range or no version."""
    value = _plain(site.container[site.key])
    if site.kind == "array":
        clauses = list(Requirement(str(value)).specifier)
        exact = [c.version for c in clauses if c.operator == "=="]
        return exact[0] if len(clauses) == 1 and exact else None
    constraint = value.get("version") if isinstance(value, Mapping) else value
    if isinstance(constraint, str) and constraint.startswith("==") and "," not in constraint:
        return constraint[2:].strip() or None
    return None


_ARRAY_COMMENT = "  # "
"""Between an array item and its comment in a ``(was: ...)``."""


def pyproject_dependency(text: str, path: str, name: str, group: str | None = None) -> str | None:
    """How ``pyproject.toml`` writes the dependency ``pin_in_pyproject`` would change, or
    None when it does not list it: the requirement string of a ``[project]`` array
    (``numpy>=1.20``), or ``key = value`` of a Poetry dependency table
    (``numpy = "^1.20"``). Read it before pinning to put it into the note's ``(was: ...)``,
    from which ``unpin_in_pyproject`` restores the entry."""
    doc = _document(text, path)
    site = _pin_site(doc, canonicalize_name(name), group)
    return None if site is None else _site_text(site)


def pin_in_pyproject(
    text: str,
    path: str,
    name: str,
    version: str,
    note: str,
    group: str | None = None,
) -> str:
    """``pyproject.toml`` with ``name`` pinned to ``version`` and ``# <note>`` beside it.

    The entry pinned is the one of ``group`` (default: the main dependencies, else the first
    group that lists the package). A ``[project]`` requirement string becomes
    ``name[extras]==version; marker``; a Poetry table value becomes ``"==version"`` (a table
    value keeps its other keys and gets ``version = "==version"``). A package not listed is
    added to the group (main: the ``[project]`` array when the project uses one). Comments
    and layout elsewhere are kept.

    ``note`` is the comment text (``bot.commands.spec_edit.pin_note``); its ``(was: ...)``,
    from ``pyproject_entry``, is what ``unpin_in_pyproject`` restores.
    """
    try:
        pinned = Version(version.strip())
    except InvalidVersion as exc:
        raise LockwardenError(
            f"cannot pin {name} to {version!r}: not a version; write e.g. 'numpy==1.26.4'"
        ) from exc
    comment = note_comment(note)
    doc = _document(text, path)
    wanted = canonicalize_name(name)
    site = _pin_site(doc, wanted, group)
    if site is None:
        _add_entry(doc, path, name, str(pinned), comment, group or MAIN_GROUP)
    elif site.kind == "array":
        requirement = Requirement(str(site.container[site.key]))
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        # The marker as written: packaging would rewrite its quotes.
        written = str(site.container[site.key])
        marker = f"; {written.split(';', 1)[1].strip()}" if requirement.marker else ""
        _set_array_item(site, f"{requirement.name}{extras}=={pinned}{marker}", comment)
    else:
        _pin_table_value(site, path, str(pinned), comment)
    return tomlkit.dumps(doc)


def unpin_in_pyproject(text: str, path: str, name: str) -> str:
    """``pyproject.toml`` without the pins Lockwarden wrote for ``name``: each entry whose
    comment is a pin note gets its ``(was: ...)`` value back, or goes when the pin added it.
    A file with no such pin (a hand-written pin included) is returned unchanged."""
    doc = _document(text, path)
    wanted = canonicalize_name(name)
    changed = False
    # Deleting array items shifts the later indexes: restore from the end.
    for site in reversed(list(_sites(doc, wanted))):
        note = PIN_NOTE_RE.match(_site_comment(site) or "")
        if note is None:
            continue
        changed = True
        was = note.group("was")
        if was is None:
            del site.container[site.key]
        elif site.kind == "array":
            value, _, comment = was.partition(_ARRAY_COMMENT)
            _set_array_item(site, value, comment or None)
        else:
            _restore_table_value(site, path, was)
    return tomlkit.dumps(doc) if changed else text


def _document(text: str, path: str) -> TOMLDocument:
    try:
        return tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(path, f"not valid TOML: {exc}", line=exc.line) from exc


def _child(container: Any, key: str) -> Any:
    """``container[key]`` when ``container`` is a table that has it, else None."""
    if isinstance(container, MutableMapping) and key in container:
        return container[key]
    return None


def _group_tables(doc: TOMLDocument, group: str) -> Iterator[tuple[str, Any]]:
    """The dependency tables and arrays of ``group``: ("array" | "table", container)."""
    poetry = _child(_child(doc, "tool"), "poetry")
    if group == MAIN_GROUP:
        yield "array", _child(_child(doc, "project"), "dependencies")
        yield "table", _child(poetry, "dependencies")
        return
    yield "table", _child(_child(_child(poetry, "group"), group), "dependencies")
    if group == "dev":
        yield "table", _child(poetry, "dev-dependencies")
    yield "array", _child(_child(doc, "dependency-groups"), group)


def _group_names(doc: TOMLDocument) -> list[str]:
    poetry = _child(_child(doc, "tool"), "poetry")
    names = [MAIN_GROUP]
    for table in (_child(poetry, "group"), _child(doc, "dependency-groups")):
        if isinstance(table, MutableMapping):
            names += [g for g in table if g not in names]
    if _child(poetry, "dev-dependencies") is not None and "dev" not in names:
        names.append("dev")
    return names


def _sites(doc: TOMLDocument, wanted: str, group: str | None = None) -> Iterator[_Site]:
    """Every place ``pyproject.toml`` lists ``wanted`` (of ``group``, or of every group)."""
    for name in [group] if group is not None else _group_names(doc):
        for kind, container in _group_tables(doc, name):
            if kind == "array" and isinstance(container, Array):
                for index, item in enumerate(container):
                    if isinstance(item, str) and _requirement_is(item, wanted):
                        yield _Site("array", name, container, index)
            elif kind == "table" and isinstance(container, MutableMapping):
                for key in container:
                    if canonicalize_name(key) == wanted and (name != MAIN_GROUP or key != "python"):
                        yield _Site("table", name, container, key)


def _requirement_is(text: str, wanted: str) -> bool:
    try:
        return canonicalize_name(Requirement(text).name) == wanted
    except InvalidRequirement:
        return False


def _pin_site(doc: TOMLDocument, wanted: str, group: str | None) -> _Site | None:
    """The entry a pin changes: the group's first, else (no group given) the first of main,
    else of the first group that lists the package."""
    return next(_sites(doc, wanted, group), None)


def _site_text(site: _Site) -> str:
    if site.kind == "array":
        return str(site.container[site.key])
    return _key_value_text(str(site.key), site.container[site.key])


def _key_value_text(key: str, value: Any) -> str:
    """``key = value`` on one line (tables inline), as TOML."""
    line = tomlkit.document()
    line.add(key, _inline(value))
    return line.as_string().strip()


def _inline(value: Any) -> Item:
    unwrapped = _plain(value)
    if isinstance(unwrapped, dict):
        table = tomlkit.inline_table()
        table.update(unwrapped)
        return table
    item: Item = tomlkit.item(unwrapped)
    return item


def _site_comment(site: _Site) -> str | None:
    """The comment text (without ``#``) beside the entry, where a pin note goes."""
    if site.kind == "array":
        group = _array_group(site.container, int(site.key))
        comment = group.comment
        return comment.trivia.comment.lstrip("#").strip() if comment is not None else None
    item = _note_item(site.container[site.key])
    if item is None or not item.trivia.comment:
        return None
    return item.trivia.comment.lstrip("#").strip()


def _note_item(value: Any) -> Item | None:
    """The item that carries the note: the value itself, or ``version`` of a dependency
    written as its own table (``[tool.poetry.dependencies.torch]``)."""
    if isinstance(value, Table):
        version = value.get("version")
        return version if isinstance(version, Item) else None
    return value if isinstance(value, Item) else None


def _set_comment(item: Item, note: str) -> None:
    item.comment(note)
    item.trivia.comment_ws = "  "


# -- arrays -----------------------------------------------------------------------------------
# tomlkit keeps an array's layout as groups of (indent, value, comma, comment); the comment of
# one item has no public setter, so the functions below reach into ``Array._value``.


def _array_group(array: Array, index: int) -> Any:
    return array._value[array._index_map[index]]


def _is_one_per_line(array: Array) -> bool:
    """True when every item starts its own line and ``]`` does too, so a comment after an
    item cannot swallow anything."""
    groups = [g for g in array._value if g.value is not None]
    if not groups:
        return False
    closing = array._value[-1]
    return all(g.indent is not None and "\n" in g.indent.s for g in groups) and (
        closing.value is None and closing.indent is not None and "\n" in closing.indent.s
    )


def _item_indent(array: Array) -> str:
    first = next((g for g in array._value if g.value is not None), None)
    if first is None or first.indent is None:
        return "    "
    return first.indent.s.rsplit("\n", 1)[-1]


def _note_comment(note: str) -> Comment:
    return Comment(Trivia(indent="  ", comment=f"# {note}", trail=""))


def _set_array_item(site: _Site, requirement: str, note: str | None) -> None:
    array: Array = site.container
    index = int(site.key)
    if note is not None and not _is_one_per_line(array):
        _rebuild_in_place(array)
    array[index] = tomlkit.string(requirement)
    _array_group(array, index).comment = None if note is None else _note_comment(note)


def _rebuild_in_place(array: Array) -> Array:
    """Lay ``array`` out one item per line, in place (comments kept), so the array object
    its table holds stays the same."""
    values = list(array)
    comments = []
    for index in range(len(values)):
        comment = _array_group(array, index).comment
        comments.append(comment.trivia.comment.lstrip("#").strip() if comment else None)
    array.clear()
    array._value.clear()
    for value, comment in zip(values, comments, strict=True):
        array.add_line(value, indent="    ")
        if comment:
            array._value[-1].comment = _note_comment(comment)
    array.add_line(indent="")
    return array


def _append_to_array(array: Array, requirement: str, note: str) -> None:
    if not _is_one_per_line(array):
        _rebuild_in_place(array)
    array.add_line(requirement, indent=_item_indent(array))
    _array_group(array, len(array) - 1).comment = _note_comment(note)


# -- tables -----------------------------------------------------------------------------------


def _pin_table_value(site: _Site, path: str, version: str, note: str) -> None:
    table = site.container
    key = str(site.key)
    value = table[key]
    constraint = f"=={version}"
    if isinstance(value, str):
        item = tomlkit.string(constraint)
        _set_comment(item, note)
        table[key] = item
        return
    if not isinstance(value, MutableMapping):
        raise ConfigError(
            path,
            f"{key} has several constraints (one per Python version or platform); pin it "
            "by editing pyproject.toml",
            field=_table_field(site),
        )
    direct = next((k for k in ("git", "path", "url") if k in value), None)
    if direct is not None:
        raise ConfigError(
            path,
            f"{key} comes from a {direct} source, not from a package index; change its "
            f"{direct} reference to pin it",
            field=_table_field(site),
        )
    value["version"] = constraint
    carrier = _note_item(value)  # the inline table, or ``version`` of a table of its own
    if carrier is not None:
        _set_comment(carrier, note)


def _restore_table_value(site: _Site, path: str, was: str) -> None:
    table = site.container
    key = str(site.key)
    try:
        parsed = tomlkit.parse(was)
    except ParseError as exc:
        raise ConfigError(
            path,
            f"the pin note of {key} says it was {was!r}, which is no TOML 'key = value'; "
            "restore the entry by hand",
            field=_table_field(site),
        ) from exc
    if len(parsed) != 1:
        raise ConfigError(
            path,
            f"the pin note of {key} says it was {was!r}, not one 'key = value'; restore the "
            "entry by hand",
            field=_table_field(site),
        )
    restored = next(iter(parsed.values()))
    current = table[key]
    if isinstance(current, Table) and isinstance(restored, MutableMapping):
        # A dependency written as its own table keeps its layout: only its keys change.
        for old_key in [k for k in current if k not in restored]:
            del current[old_key]
        for new_key, new_value in restored.items():
            if _plain(current.get(new_key)) != _plain(new_value):
                current[new_key] = _inline(new_value)
        carrier = _note_item(current)
        if carrier is not None:
            _clear_comment(carrier)
        return
    table[key] = _inline(restored)
    _clear_comment(table[key])
    if isinstance(restored, Item) and restored.trivia.comment:  # the person's own comment
        table[key].trivia.comment = restored.trivia.comment
        table[key].trivia.comment_ws = restored.trivia.comment_ws


def _plain(value: Any) -> Any:
    return value.unwrap() if isinstance(value, Item) else value


def _clear_comment(item: Item) -> None:
    # tomlkit carries the replaced value's comment over to the new one.
    item.trivia.comment = ""
    item.trivia.comment_ws = ""


def _table_field(site: _Site) -> str:
    if site.group == MAIN_GROUP:
        return f"tool.poetry.dependencies.{site.key}"
    return f"tool.poetry.group.{site.group}.dependencies.{site.key}"


# -- adding an entry --------------------------------------------------------------------------


def _add_entry(
    doc: TOMLDocument, path: str, name: str, version: str, note: str, group: str
) -> None:
    if group == MAIN_GROUP:
        project = _child(doc, "project")
        dynamic = _child(project, "dynamic")
        uses_project = isinstance(project, MutableMapping) and not (
            isinstance(dynamic, list) and "dependencies" in dynamic
        )
        if uses_project:
            array = _child(project, "dependencies")
            if array is None:
                array = tomlkit.array()
                project["dependencies"] = array
                array = project["dependencies"]
            if not isinstance(array, Array):
                raise ConfigError(path, "must be an array", field="project.dependencies")
            _append_to_array(array, f"{name}=={version}", note)
            return
        table = _ensure_table(doc, ("tool", "poetry", "dependencies"), path)
    else:
        groups = _child(doc, "dependency-groups")
        array = _child(groups, group)
        if isinstance(array, Array):
            _append_to_array(array, f"{name}=={version}", note)
            return
        table = _ensure_table(doc, ("tool", "poetry", "group", group, "dependencies"), path)
    item = tomlkit.string(f"=={version}")
    _set_comment(item, note)
    table[name] = item


def _ensure_table(doc: TOMLDocument, keys: tuple[str, ...], path: str) -> Any:
    current: Any = doc
    for depth, key in enumerate(keys):
        child = _child(current, key)
        if child is None:
            child = tomlkit.table(is_super_table=depth < len(keys) - 1)
            current[key] = child
            child = current[key]
        if not isinstance(child, MutableMapping):
            raise ConfigError(path, "must be a table", field=".".join(keys[: depth + 1]))
        current = child
    return current
