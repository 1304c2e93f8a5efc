"""Conda environments: the ``environment.yml`` spec, explicit locks, and pins written into specs.

An environment is described by a human-edited ``environment.yml`` (channels, match specs, an
optional ``pip:`` list and conda-lock's optional ``platforms:`` key). Its lock is one conda
*explicit* file per target platform (``conda-linux-64.lock``): a comment header, the
``@EXPLICIT`` line, then one package URL per line with its md5 after ``#``. That is the
format ``conda create --file`` and ``micromamba create -f`` install from, everywhere.

Everything here is pure: no subprocess and no network. The solver lives in
``compiler.py`` beside this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import yaml
from packaging.utils import canonicalize_name
from rattler import MatchSpec
from rattler.exceptions import InvalidMatchSpecError

from bot import bounded_yaml
from bot.errors import ConfigError, LockfileParseError
from bot.lines import physical_lines
from bot.locks.formats.base import SpecEntry, read_spec_text
from bot.locks.formats.conda.platforms import (
    EXPLICIT_MARKER,
    conda_subdir,
)
from bot.locks.lockfile import Lockfile, LockHeader, RequirementEntry, has_url_scheme
from bot.locks.pin_notes import PIN_NOTE_RE, note_comment

# Channels whose URLs name them: ``https://conda.anaconda.org/<name>/<subdir>/<file>`` and
# ``https://repo.anaconda.com/pkgs/<name>/<subdir>/<file>``.
_NAMED_CHANNEL_HOSTS: dict[str, str] = {
    "conda.anaconda.org": "",
    "repo.anaconda.com": "pkgs/",
}
_ARCHIVE_SUFFIXES = (".conda", ".tar.bz2")
_MD5_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_SHA256_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
_PLATFORM_COMMENT_RE = re.compile(r"^#\s*platform:\s*(\S+)\s*$")

# ---------------------------------------------------------------------------------------------
# environment.yml
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CondaDependency:
    """One conda dependency of an ``environment.yml``."""

    spec: str
    """The match spec as written (``numpy>=1.20``)."""
    name: str
    """The package name, lowercase as conda normalises it."""
    line: int
    """1-based line in the file."""


@dataclass(frozen=True)
class CondaEnvironmentSpec:
    """What an ``environment.yml`` asks for."""

    path: str
    name: str | None
    channels: tuple[str, ...]
    """Channel names or URLs, in priority order (``nodefaults`` is left out)."""
    dependencies: tuple[CondaDependency, ...]
    pip: tuple[str, ...]
    """Requirements of the ``pip:`` sub-list; conda does not solve (or lock) them."""
    platforms: tuple[str, ...]
    """conda-lock's top-level ``platforms:`` key, as conda subdirs; empty when absent."""

    @property
    def direct_names(self) -> frozenset[str]:
        """Names of the conda dependencies, canonical as lock entries name them."""
        return frozenset(canonicalize_name(dep.name) for dep in self.dependencies)


def read_environment_yml(root: Path, path: str) -> CondaEnvironmentSpec:
    """Read and validate ``root / path``; every error names the file, a line and a field."""
    return parse_environment_yml(read_spec_text(root, path), path)


def parse_environment_yml(text: str, path: str) -> CondaEnvironmentSpec:
    """Parse the text of an ``environment.yml`` (see ``read_environment_yml``)."""
    top = _compose(text, path)
    if top is None:
        raise ConfigError(path, "the file is empty; it needs 'channels' and 'dependencies'", line=1)
    if not isinstance(top, yaml.MappingNode):
        raise ConfigError(
            path,
            "the top level must be a mapping with 'channels' and 'dependencies'",
            line=_line(top),
        )
    keys = _mapping(top)
    name_node = keys.get("name")
    name = None
    if name_node is not None:
        value = _scalar(name_node)
        if value is not None and not isinstance(value, str):
            raise ConfigError(path, "must be a string", line=_line(name_node), field="name")
        name = value
    channels = _channels(keys, path, top)
    dependencies, pip = _dependencies(keys, path, top)
    platforms = _platforms(keys, path)
    return CondaEnvironmentSpec(
        path=path,
        name=name,
        channels=channels,
        dependencies=dependencies,
        pip=pip,
        platforms=platforms,
    )


def _compose(text: str, path: str) -> yaml.Node | None:
    # Bounded: no anchors or aliases, limited depth (an environment.yml is repository content).
    return bounded_yaml.compose_file(text, path)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _scalar(node: yaml.Node) -> object:
    """The Python value of a scalar node; the node itself for collections."""
    if isinstance(node, yaml.ScalarNode):
        return yaml.SafeLoader("").construct_object(node)
    return node


def _mapping(node: yaml.MappingNode) -> dict[object, yaml.Node]:
    """Key value -> value node (for scalar keys; a later duplicate wins, as in YAML loaders)."""
    out: dict[object, yaml.Node] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if isinstance(key, str):
            out[key] = value_node
    return out


def _channels(keys: dict[object, yaml.Node], path: str, top: yaml.Node) -> tuple[str, ...]:
    node = keys.get("channels")
    if node is None or (isinstance(node, yaml.ScalarNode) and _scalar(node) is None):
        raise ConfigError(
            path,
            "no channels; list them, e.g. 'channels: [conda-forge]', so the lock does not "
            "depend on whoever solves it",
            line=_line(node if node is not None else top),
            field="channels",
        )
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            path, "must be a list of channel names or URLs", line=_line(node), field="channels"
        )
    channels: list[str] = []
    for index, item in enumerate(node.value):
        value = _scalar(item)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                path,
                "must be a channel name or URL (a string)",
                line=_line(item),
                field=f"channels[{index}]",
            )
        if value.strip() != "nodefaults":  # conda-lock's "do not add the defaults channel"
            channels.append(value.strip())
    if not channels:
        raise ConfigError(
            path,
            "no channels; list at least one, e.g. conda-forge",
            line=_line(node),
            field="channels",
        )
    return tuple(channels)


def _dependencies(
    keys: dict[object, yaml.Node], path: str, top: yaml.Node
) -> tuple[tuple[CondaDependency, ...], tuple[str, ...]]:
    node = keys.get("dependencies")
    if node is None:
        raise ConfigError(
            path,
            "'dependencies' is missing; list the packages the environment needs",
            line=_line(top),
            field="dependencies",
        )
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            path, "must be a list of match specs", line=_line(node), field="dependencies"
        )
    deps: list[CondaDependency] = []
    pip: list[str] = []
    for index, item in enumerate(node.value):
        field = f"dependencies[{index}]"
        if isinstance(item, yaml.MappingNode):
            pip.extend(_pip_entries(item, path, field))
            continue
        value = _scalar(item)
        if not isinstance(value, str):
            raise ConfigError(
                path,
                f"{_describe(value)} is not a match spec; write a string such as 'numpy>=1.20' "
                "or a 'pip:' list",
                line=_line(item),
                field=field,
            )
        deps.append(
            CondaDependency(
                spec=value, name=_spec_name(value, path, _line(item), field), line=_line(item)
            )
        )
    return tuple(deps), tuple(pip)


def _describe(value: object) -> str:
    if value is None:
        return "an empty entry"
    if isinstance(value, yaml.Node):
        return "a list"
    return f"{value!r} ({type(value).__name__})"


def _pip_entries(item: yaml.MappingNode, path: str, field: str) -> list[str]:
    keys = _mapping(item)
    if len(item.value) != 1 or "pip" not in keys:
        raise ConfigError(
            path,
            "a mapping in 'dependencies' must be the 'pip:' sub-list alone",
            line=_line(item),
            field=field,
        )
    node = keys["pip"]
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            path, "must be a list of pip requirements", line=_line(node), field=f"{field}.pip"
        )
    out: list[str] = []
    for index, entry in enumerate(node.value):
        value = _scalar(entry)
        if not isinstance(value, str):
            raise ConfigError(
                path,
                "must be a pip requirement (a string)",
                line=_line(entry),
                field=f"{field}.pip[{index}]",
            )
        out.append(value)
    return out


def _spec_name(spec: str, path: str, line: int, field: str) -> str:
    """The package name of a match spec; a ``ConfigError`` when it is not valid."""
    try:
        matcher = MatchSpec(spec).name
    except InvalidMatchSpecError as exc:
        raise ConfigError(
            path,
            f"{spec!r} is not a valid conda match spec ({exc}); write e.g. 'numpy>=1.20' "
            "or 'numpy=1.26'",
            line=line,
            field=field,
        ) from exc
    # Only exact names parse (``exact_names_only``), so this is the package's name.
    return matcher.normalized


def _platforms(keys: dict[object, yaml.Node], path: str) -> tuple[str, ...]:
    node = keys.get("platforms")
    if node is None:
        return ()
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            path,
            "must be a list of platforms such as linux-64",
            line=_line(node),
            field="platforms",
        )
    out: list[str] = []
    for index, item in enumerate(node.value):
        value = _scalar(item)
        try:
            if not isinstance(value, str):
                raise ValueError(f"{_describe(value)} is not a platform name")
            subdir = conda_subdir(value)
        except ValueError as exc:
            raise ConfigError(
                path, str(exc), line=_line(item), field=f"platforms[{index}]"
            ) from exc
        if subdir not in out:
            out.append(subdir)
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Explicit locks
# ---------------------------------------------------------------------------------------------


class ExplicitRecord(Protocol):
    """What an explicit lock line is rendered from (``rattler.RepoDataRecord`` is one)."""

    @property
    def url(self) -> str: ...

    @property
    def md5(self) -> bytes | None: ...

    @property
    def sha256(self) -> bytes | None: ...


@dataclass(frozen=True)
class PackageUrl:
    """The parts of a conda package URL."""

    name: str
    version: str
    build: str
    subdir: str
    channel: str
    """The channel name for anaconda.org / repo.anaconda.com URLs, else its base URL."""
    filename: str


def parse_package_url(url: str) -> PackageUrl | None:
    """``.../<channel>/<subdir>/<name>-<version>-<build>.conda`` split; None when the URL
    does not end in a conda archive name."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    filename = segments[-1]
    stem = next((filename[: -len(s)] for s in _ARCHIVE_SUFFIXES if filename.endswith(s)), None)
    if stem is None or len(segments) < 3:
        return None
    # The name may contain dashes; version and build never do.
    pieces = stem.rsplit("-", 2)
    if len(pieces) != 3 or not all(pieces):
        return None
    subdir = segments[-2]
    channel_path = "/".join(segments[:-2])
    prefix = _NAMED_CHANNEL_HOSTS.get(parts.hostname or "") if parts.scheme == "https" else None
    stripped = channel_path.strip("/")
    if prefix is not None and stripped.startswith(prefix) and stripped != prefix.rstrip("/"):
        channel = stripped[len(prefix) :]
    else:
        channel = f"{parts.scheme}://{parts.netloc}{channel_path}".rstrip("/")
    return PackageUrl(
        name=pieces[0],
        version=pieces[1],
        build=pieces[2],
        subdir=subdir,
        channel=channel,
        filename=filename,
    )


def parse_explicit_lock(text: str, path: str) -> Lockfile:
    """Parse a conda explicit lock; ``LockfileParseError`` names the line of the first problem."""
    header: list[str] = []
    platform: str | None = None
    entries: list[RequirementEntry] = []
    explicit = False
    # Lines end at \n only (not at the other breaks str.splitlines knows): line numbers match
    # what editors show.
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line:
            continue
        if not explicit:
            if line == EXPLICIT_MARKER:
                explicit = True
            elif line.startswith("#"):
                header.append(raw.rstrip())
                match = _PLATFORM_COMMENT_RE.match(line)
                if match and platform is None:
                    platform = match.group(1)
            elif has_url_scheme(line):
                raise LockfileParseError(
                    path,
                    number,
                    f"a package URL before the {EXPLICIT_MARKER} line; an explicit lock lists "
                    f"packages only after {EXPLICIT_MARKER}",
                )
            else:
                raise LockfileParseError(
                    path,
                    number,
                    f"not a conda explicit lock: expected comments, then {EXPLICIT_MARKER}, "
                    f"then package URLs; found {line[:80]!r}",
                )
            continue
        if line.startswith("#"):
            continue
        entries.append(_entry(line, path, number))
    if not explicit:
        raise LockfileParseError(
            path,
            1,
            f"not a conda explicit lock: there is no {EXPLICIT_MARKER} line (regenerate it "
            "with Lockwarden or conda-lock)",
        )
    python = next((e.version for e in entries if e.name == "python"), None)
    return Lockfile(
        path=path,
        header=LockHeader(
            tool="other" if header else "none",
            python_version=_major_minor(python) if python else None,
            command=(),
            text="\n".join(header),
        ),
        requirements=tuple(entries),
        flavour="conda",
        platform=platform,
    )


def _entry(line: str, path: str, number: int) -> RequirementEntry:
    url, _, fragment = line.partition("#")
    url = url.strip()
    parsed = parse_package_url(url) if has_url_scheme(url) else None
    if parsed is None:
        raise LockfileParseError(
            path,
            number,
            f"not a package URL: expected https://.../<subdir>/<name>-<version>-<build>.conda "
            f"or .tar.bz2, found {line[:120]!r}",
        )
    hashes: tuple[str, ...] = ()
    fragment = fragment.strip()
    if fragment:
        sha = _SHA256_RE.match(fragment)
        if _MD5_RE.match(fragment):
            hashes = (f"md5:{fragment.lower()}",)
        elif sha:
            hashes = (f"sha256:{sha.group(1).lower()}",)
        else:
            raise LockfileParseError(
                path,
                number,
                f"malformed hash {fragment!r}: expected '#<32 hex digits>' (md5) or "
                "'#sha256:<64 hex digits>'",
            )
    return RequirementEntry(
        name=canonicalize_name(parsed.name),
        raw_name=parsed.name,
        specifier=f"=={parsed.version}",
        version=parsed.version,
        hashes=hashes,
        url=None,  # the version is what changes; diff compares versions when both URLs are None
        line=number,
        build=parsed.build,
        channel=parsed.channel,
    )


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def render_explicit_lock(
    *, platform: str, records: Sequence[ExplicitRecord], spec_path: str, tool_line: str
) -> str:
    """The explicit lock of ``records``: header, ``@EXPLICIT``, one ``<url>#<md5>`` line per
    package sorted by name. The same records always give the same bytes."""
    lines = [
        f"# This file is generated by Lockwarden from {spec_path}; do not edit by hand.",
        f"# platform: {conda_subdir(platform)}",
        f"# {tool_line}",
        EXPLICIT_MARKER,
    ]
    rows: list[tuple[str, str, str]] = []
    for record in records:
        parsed = parse_package_url(record.url)
        if parsed is None:
            raise ValueError(f"not a conda package URL: {record.url}")
        # md5 is the hash conda and micromamba check on every version; sha256 only when
        # the channel gives no md5.
        if record.md5 is not None:
            suffix = f"#{record.md5.hex()}"
        elif record.sha256 is not None:
            suffix = f"#sha256:{record.sha256.hex()}"
        else:
            suffix = ""
        rows.append((parsed.name.lower(), record.url, f"{record.url}{suffix}"))
    lines.extend(row for _, _, row in sorted(rows))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Pins written into environment.yml
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Item:
    """A dependency item of the block-style ``dependencies`` list."""

    position: int
    """Index in the list."""
    index: int
    """0-based physical line."""
    prefix: str
    """The line up to the item's value (``"  - "``)."""
    value: str | None
    """The match spec (None for the ``pip:`` mapping)."""
    comment: str | None
    """The comment after the value, without ``#``, stripped."""


def _ending(line: str) -> str:
    return line[len(line.rstrip("\r\n")) :]


def _items(text: str, path: str) -> list[_Item]:
    """The items of the ``dependencies`` list, each on its own line, or a ``ConfigError``
    saying why the file cannot be edited line by line."""
    top = _compose(text, path)
    if not isinstance(top, yaml.MappingNode):
        raise ConfigError(path, "the top level must be a mapping with 'dependencies'", line=1)
    node = _mapping(top).get("dependencies")
    if not isinstance(node, yaml.SequenceNode):
        raise ConfigError(
            path,
            "'dependencies' must be a list to pin a package in it",
            line=_line(node if node is not None else top),
            field="dependencies",
        )
    if node.flow_style or not node.value:
        raise ConfigError(
            path,
            "'dependencies' is written in flow style ([a, b]); write one '- spec' per line "
            "so Lockwarden can edit it without rewriting the file",
            line=_line(node),
            field="dependencies",
        )
    lines = physical_lines(text)
    items: list[_Item] = []
    for position, item in enumerate(node.value):
        start, end = item.start_mark, item.end_mark
        field = f"dependencies[{position}]"
        line = lines[start.line].rstrip("\r\n")
        prefix = line[: start.column]
        if not re.fullmatch(r"\s*-\s+", prefix):
            raise ConfigError(
                path,
                "each dependency must start its own line with '- '; edit the list by hand",
                line=start.line + 1,
                field=field,
            )
        if isinstance(item, yaml.MappingNode):
            items.append(_Item(position, start.line, prefix, None, None))
            continue
        if not isinstance(item, yaml.ScalarNode):
            raise ConfigError(
                path,
                "the dependency is a list, not a match spec; fix it by hand",
                line=start.line + 1,
                field=field,
            )
        if end.line != start.line or item.style in ("|", ">"):
            raise ConfigError(
                path,
                "the dependency spans several lines; write it on one line",
                line=start.line + 1,
                field=field,
            )
        found = re.match(r"\s+#(.*)$", line[end.column :])
        comment = found.group(1).strip() if found else None
        items.append(_Item(position, start.line, prefix, str(_scalar(item)), comment))
    return items


def _checked(path: str, old: str, new: str, expected: list[object], line: int) -> str:
    """``new``, once it reads as ``old`` with ``expected`` as its dependencies and nothing
    else changed; a ``ConfigError`` otherwise (an anchor, alias or tag on the edited line)."""
    try:
        before, after = bounded_yaml.safe_load(old), bounded_yaml.safe_load(new)
    except yaml.YAMLError:
        after = None
    if (
        not isinstance(after, dict)
        or after.get("dependencies") != expected
        or {k: v for k, v in after.items() if k != "dependencies"}
        != {k: v for k, v in before.items() if k != "dependencies"}
    ):
        raise ConfigError(
            path,
            "cannot edit this dependency line without changing what the file means "
            "(an anchor, alias or tag?); edit it by hand",
            line=line + 1,
        )
    return new


def _dependency_values(text: str) -> list[object]:
    data = bounded_yaml.safe_load(text)
    values = data.get("dependencies") if isinstance(data, dict) else None
    return list(values) if isinstance(values, list) else []


def _yaml_value(spec: str) -> str:
    """``spec`` as a YAML list value: plain when that reads back as the same string."""
    try:
        if yaml.safe_load(f"- {spec}") == [spec]:
            return spec
    except yaml.YAMLError:
        pass
    return json.dumps(spec)


def _one_spec(written: str) -> str | None:
    """The match spec YAML reads from an item written as ``written`` (after ``- ``, with its
    comment); None when it reads as something else."""
    try:
        loaded = yaml.safe_load(f"- {written}")
    except yaml.YAMLError:
        return None
    if isinstance(loaded, list) and len(loaded) == 1 and isinstance(loaded[0], str):
        return loaded[0]
    return None


def _item_value(written: str | None) -> str | None:
    """The match spec of a ``(was: ...)``: the item as the person wrote it, or, in a note
    that kept only the spec, the spec itself."""
    if written is None:
        return None
    spec = _one_spec(written)
    return written if spec is None else spec


def _as_written(was: str) -> str:
    """The item to put back: the person's own text, byte for byte, when it reads as one
    spec; else the spec quoted."""
    return was if _one_spec(was) is not None else _yaml_value(was)


def _matches(spec: str | None, name: str) -> bool:
    if spec is None:
        return False
    try:
        return MatchSpec(spec).name.normalized == name
    except InvalidMatchSpecError:
        return False


def _wanted(name: str) -> str:
    return name.strip().lower()


def environment_entry(text: str, path: str, name: str) -> SpecEntry | None:
    """How ``environment.yml`` lists ``name``: the item as written after ``- `` (comment
    included), its comment, and its version when it is an exact pin; None when not listed.
    Read it before ``pin_in_environment`` to put it into the pin note's ``(was: ...)``."""
    wanted = _wanted(name)
    lines = physical_lines(text)
    for item in _items(text, path):
        if _matches(item.value, wanted):
            written = lines[item.index].rstrip("\r\n")[len(item.prefix) :]
            exact = re.fullmatch(rf"{re.escape(wanted)}==(\S+)", (item.value or "").strip())
            return SpecEntry(written, item.comment, exact.group(1) if exact else None)
    return None


def pin_in_environment(text: str, path: str, name: str, version: str, note: str) -> str:
    """``environment.yml`` with the dependency line of ``name`` replaced by
    ``- name==version  # <note>``, or with that line added at the end of ``dependencies``
    (before the ``pip:`` sub-list) when the package is not listed. Every other line is kept
    byte for byte; the YAML is never re-dumped.

    ``note`` is the comment text (``bot.commands.spec_edit.pin_note``); its ``(was: ...)``
    is what ``unpin_in_environment`` restores.
    """
    wanted = _wanted(name)
    pinned = f"{wanted}=={version.strip()}"
    try:
        MatchSpec(pinned)
    except InvalidMatchSpecError as exc:
        raise ConfigError(
            path, f"cannot pin {pinned!r}: not a valid conda match spec ({exc})"
        ) from exc
    items = _items(text, path)
    values = _dependency_values(text)
    lines = physical_lines(text)
    comment = note_comment(note)
    tail = f"  # {comment}" if comment else ""
    matches = [item for item in items if _matches(item.value, wanted)]
    if matches:
        first = matches[0]
        dropped = {item.index for item in matches[1:]}  # repeats give way to the pin
        out: list[str] = []
        for index, line in enumerate(lines):
            if index == first.index:
                out.append(f"{first.prefix}{_yaml_value(pinned)}{tail}{_ending(line)}")
            elif index not in dropped:
                out.append(line)
        expected = [
            pinned if position == first.position else value
            for position, value in enumerate(values)
            if position not in {item.position for item in matches[1:]}
        ]
        return _checked(path, text, "".join(out), expected, first.index)
    eol = "\r\n" if "\r\n" in text else "\n"
    pip_item = next((item for item in items if item.value is None), None)
    anchor = pip_item if pip_item is not None else items[-1]
    at = anchor.index if pip_item is not None else anchor.index + 1
    position = anchor.position if pip_item is not None else len(values)
    if at > 0 and not lines[at - 1].endswith("\n"):
        lines[at - 1] += eol
    new_line = f"{anchor.prefix}{_yaml_value(pinned)}{tail}{eol}"
    expected = [*values[:position], pinned, *values[position:]]
    return _checked(path, text, "".join([*lines[:at], new_line, *lines[at:]]), expected, at)


def unpin_in_environment(text: str, path: str, name: str) -> str:
    """``environment.yml`` without the pin Lockwarden wrote for ``name``: the ``(was: ...)``
    spec goes back in its place, or the line goes when the pin added it. A file with no such
    pin (a hand-written pin included) is returned unchanged."""
    wanted = _wanted(name)
    restore: dict[int, tuple[_Item, str | None]] = {}
    for item in _items(text, path):
        if item.comment is None or not _matches(item.value, wanted):
            continue
        note = PIN_NOTE_RE.match(item.comment)
        if note is not None:
            restore[item.index] = (item, note.group("was"))
    if not restore:
        return text
    out: list[str] = []
    for index, line in enumerate(physical_lines(text)):
        if index not in restore:
            out.append(line)
            continue
        item, was = restore[index]
        if was is not None:
            out.append(f"{item.prefix}{_as_written(was)}{_ending(line)}")
    by_position = {item.position: _item_value(was) for item, was in restore.values()}
    expected = [
        by_position.get(position, value)
        for position, value in enumerate(_dependency_values(text))
        if position not in by_position or by_position[position] is not None
    ]
    return _checked(path, text, "".join(out), expected, min(restore))
