"""OS packages of a Dockerfile: the apt and apk pins, found, rewritten and looked up.

``apt-get install -y curl=7.88.1-10+deb12u5`` builds the same image until the mirror drops
that version; then the build fails, and nobody noticed the package had moved on. This
module finds every package argument of ``apt-get install``/``apt install``/``apk add`` in
``RUN`` instructions (:func:`find_os_packages`), asks the package manager inside the stage's
base image which version it would install now (:func:`lookup_candidates`), and rewrites
only the version of a pin (:func:`rewrite_os_pins`).

Shell commands are followed through ``&&``, ``;``, pipes, line continuations, ``sh -c``,
exec-form ``RUN [...]`` and heredoc scripts; option values (``-o``, ``--virtual .deps``)
are not packages, and arguments built from variables (``$PKGS``) are skipped, as are local
files (``./x.deb``). Known simplifications: candidates are looked up in the stage's base
image, so a package from a repository the Dockerfile itself adds is reported as missing; a
version with a wildcard (``=1.2*``) or an apk constraint other than ``=`` (``~1.2``,
``>=1.2``) is a deliberate range and is never rewritten.

The lookup runs ``apt-get update`` and ``apt-cache policy`` (or ``apk update`` and
``apk policy``) in a container of the image, with the package names passed as arguments
of a fixed script, never written into it. A builder only returns the last lines of a
container's output, so the script prints only what is parsed, between two marker lines; a
missing marker means the output was cut, which is an error rather than a silent "missing".
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.errors import LockwardenError
from bot.images import Builder, RunOutcome, RunSpec
from bot.images.dockerfile.from_lines import Stage, stages_of
from bot.images.dockerfile.shell import (
    APK_VALUE_LONG,
    APK_VALUE_SHORT,
    APT_VALUE_LONG,
    APT_VALUE_SHORT,
    parse_options,
    run_commands,
)
from bot.images.dockerfile.syntax import (
    LineIndex,
    ShellToken,
    dockerfile_instructions,
    replace_spans,
)

Manager = Literal["apt", "apk"]

APT_TOOLS = frozenset(("apt-get", "apt"))
BEGIN_MARKER = "lockwarden-begin"
END_MARKER = "lockwarden-end"
NOTE_PREFIX = "lockwarden-note: "
UPDATE_FAILED_EXIT = 3
CHUNK_SIZE: Mapping[Manager, int] = {"apt": 80, "apk": 30}
"""Packages per container run: ``apt`` prints two lines per package, ``apk`` about five,
and a builder keeps the last 200 lines of output."""

_APK_SPEC_RE = re.compile(r"^(?P<name>[^=~<>]+?)(?:(?P<op>[=~<>]+)(?P<version>.*))?$")
_VERSION_TEXT_RE = re.compile(r"^[A-Za-z0-9.+~:_-]+$")

# The scripts run in the image as root; package names arrive as "$@". Only what is parsed
# is printed (the builder keeps the end of the output): update failures as notes, then the
# header and candidate lines of `apt-cache policy`, or `apk policy` without installed-db
# lines. Any note makes the lookup an error: candidates from a partial index are wrong.
APT_SCRIPT = f"""\
echo {BEGIN_MARKER}
lists=/tmp/lockwarden-apt-lists
log=/tmp/lockwarden-apt-update.log
mkdir -p "$lists/partial" || exit 4
opts="-o APT::Sandbox::User=root -o Dir::State::Lists=$lists"
opts="$opts -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache="
if ! apt-get $opts -qq update >"$log" 2>&1; then
  tail -n 5 "$log" | sed 's/^/{NOTE_PREFIX}/'
  exit {UPDATE_FAILED_EXIT}
fi
grep -E '^(E:|Err:|W: Failed to fetch|W: Some index files)' "$log" | tail -n 5 \\
  | sed 's/^/{NOTE_PREFIX}/'
apt-cache $opts policy "$@" 2>/dev/null | grep -E '^[^ ]|^  Candidate:'
echo {END_MARKER}
"""

APK_SCRIPT = f"""\
echo {BEGIN_MARKER}
log=/tmp/lockwarden-apk-update.log
if ! apk update -q >"$log" 2>&1; then
  tail -n 5 "$log" | sed 's/^/{NOTE_PREFIX}/'
  exit {UPDATE_FAILED_EXIT}
fi
grep -E '^(ERROR|WARNING):' "$log" | tail -n 5 | sed 's/^/{NOTE_PREFIX}/'
apk policy "$@" 2>/dev/null | grep -v '/installed$'
echo {END_MARKER}
"""

_UPDATE_COMMAND: Mapping[Manager, str] = {"apt": "apt-get update", "apk": "apk update"}


# --------------------------------------------------------------------------- finding


@dataclass(frozen=True)
class OsPackage:
    """One package argument of ``apt-get install``/``apt install``/``apk add``."""

    manager: Manager
    name: str
    """As written, without its version (``curl``, ``libc6:amd64``)."""
    version: str | None
    """The version after the operator; None when unpinned."""
    file: str
    line: int
    """The Dockerfile line of the package's argument."""
    stage: int
    """Index of the ``FROM`` stage the ``RUN`` belongs to."""
    image: str | None
    """That stage's base image as written; a stage built ``FROM`` an earlier stage has
    that stage's base."""
    operator: str | None = None
    """``=`` for an exact pin (the only kind refreshed); apk's ``~``, ``<``, ``>=``... for
    constraints; None when unpinned."""

    @property
    def refreshable(self) -> bool:
        """An exact pin without wildcards: what a refresh may move."""
        return self.operator == "=" and self.version is not None and "*" not in self.version


@dataclass(frozen=True)
class _Found:
    package: OsPackage
    version_span: tuple[int, int] | None
    """Where the version sits in the text, when it is written as one contiguous run."""


def find_os_packages(text: str, path: str) -> tuple[OsPackage, ...]:
    """Every package argument of the Dockerfile's apt and apk installs, in text order."""
    return tuple(found.package for found in _scan(text, path))


def rewrite_os_pins(text: str, updates: Mapping[tuple[str, str, int], str]) -> str:
    """``text`` with the version of each pinned package ``(manager, name, line)`` replaced;
    every other byte stays. An update for a package that is not pinned there is an error:
    pins are added by people, not by a refresh."""
    edits: dict[tuple[int, int], str] = {}
    matched: set[tuple[str, str, int]] = set()
    for found in _scan(text, ""):
        package = found.package
        key = (package.manager, package.name, package.line)
        if key not in updates:
            continue
        version = updates[key]
        if found.version_span is None or package.operator is None:
            raise LockwardenError(
                f"line {package.line}: {package.name} has no version written in one piece to"
                " replace"
            )
        if not _VERSION_TEXT_RE.match(version):
            raise LockwardenError(f"line {package.line}: '{version}' is not a package version")
        edits[found.version_span] = version
        matched.add(key)
    unmatched = sorted(set(updates) - matched, key=lambda k: (k[2], k[0], k[1]))
    if unmatched:
        manager, name, line = unmatched[0]
        raise LockwardenError(f"line {line}: no {manager} package {name} is installed there")
    return replace_spans(text, edits)


def _scan(text: str, path: str) -> Iterator[_Found]:
    lines = LineIndex(text)
    instructions = dockerfile_instructions(text)
    stages = {stage.line: stage for stage in stages_of(instructions)}
    current: Stage | None = None
    for instruction in instructions:
        if instruction.keyword == "FROM":
            current = stages.get(instruction.line, current)
        elif instruction.keyword == "RUN" and current is not None:
            for command in run_commands(instruction):
                for package, span in _packages(command.words):
                    yield _Found(
                        OsPackage(
                            manager=package[0],
                            name=package[1],
                            version=package[2],
                            file=path,
                            line=lines.line(span[0]),
                            stage=current.index,
                            image=current.base,
                            operator=package[3],
                        ),
                        span[1],
                    )


_Parsed = tuple[Manager, str, str | None, str | None]


def _packages(
    argv: Sequence[ShellToken],
) -> Iterator[tuple[_Parsed, tuple[int, tuple[int, int] | None]]]:
    """(manager, name, version, operator), (offset of the argument, version span)."""
    tool = posixpath.basename(argv[0].text)
    manager: Manager
    if tool in APT_TOOLS:
        manager, subcommand = "apt", "install"
        value_long, value_short = APT_VALUE_LONG, APT_VALUE_SHORT
    elif tool == "apk":
        manager, subcommand = "apk", "add"
        value_long, value_short = APK_VALUE_LONG, APK_VALUE_SHORT
    else:
        return
    args = [word.text for word in argv[1:]]
    positions = parse_options(args, value_long, value_short).positional_indexes
    if not positions or args[positions[0]] != subcommand:
        return
    for position in positions[1:]:
        word = argv[position + 1]
        text = word.text
        if not text or "$" in text or "`" in text or text.startswith((".", "/", "~")):
            continue
        if text.endswith((".deb", ".apk")):
            continue
        parsed = _apt_spec(text) if manager == "apt" else _apk_spec(text)
        located = [offset for _, offset in word.chars if offset >= 0]
        if parsed is None or not located:
            continue
        name, operator, version, version_start = parsed
        span = None
        if version is not None:
            offsets = [offset for _, offset in word.chars[version_start:]]
            if offsets[0] >= 0 and offsets == list(range(offsets[0], offsets[0] + len(offsets))):
                span = (offsets[0], offsets[-1] + 1)
        yield (manager, name, version, operator), (located[0], span)


def _apt_spec(text: str) -> tuple[str, str | None, str | None, int] | None:
    """``name[:arch][=version]`` or ``name/release``: (name, operator, version, index of
    the version in ``text``)."""
    name, eq, version = text.partition("=")
    if "/" in name:
        return name.partition("/")[0], None, None, 0
    if not eq or not version:
        return name, None, None, 0
    return name, "=", version, len(name) + 1


def _apk_spec(text: str) -> tuple[str, str | None, str | None, int] | None:
    """``name[@tag][op version]``, op one of ``=``, ``~``, ``<``, ``>``, ``<=``, ``>=``."""
    match = _APK_SPEC_RE.match(text)
    if match is None:
        return None
    name = match.group("name").partition("@")[0]
    version = match.group("version")
    if not version:
        return name, None, None, 0
    version = version.partition("@")[0]
    if not version:
        return name, None, None, 0
    return name, match.group("op"), version, match.start("version")


# --------------------------------------------------------------------------- policy output


def parse_apt_policy(output: str) -> dict[str, str | None]:
    """Package -> candidate version (None: ``(none)``) from ``apt-cache policy`` output
    (``LC_ALL=C``); other lines are ignored."""
    found: dict[str, str | None] = {}
    current: str | None = None
    for line in output.splitlines():
        if line and not line[0].isspace():
            header = line.rstrip()
            if header.endswith(":") and " " not in header and len(header) > 1:
                current = header[:-1]
                found[current] = None
            else:
                current = None
            continue
        stripped = line.strip()
        if current is not None and stripped.startswith("Candidate:"):
            value = stripped.removeprefix("Candidate:").strip()
            found[current] = None if value in ("", "(none)") else value
    return found


def parse_apk_policy(output: str) -> dict[str, str | None]:
    """Package -> candidate (None: nothing available) from ``apk policy`` output: the
    highest version offered by an untagged repository. Installed-database lines
    (``lib/apk/db/installed``) and tagged repositories (``@edge https://...``, used only
    for ``name@edge``) offer nothing."""
    available: dict[str, list[str]] = {}
    current: str | None = None
    version: str | None = None
    for line in output.splitlines():
        if line and not line[0].isspace():
            current, version = None, None
            if line.rstrip().endswith(" policy:"):
                current = line.rstrip().removesuffix(" policy:")
                available.setdefault(current, [])
            continue
        if current is None:
            continue
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        if indent == 2 and stripped.endswith(":"):
            version = stripped[:-1].partition(" ")[0]  # "1.2.3.4 (installed):" in old apk
        elif indent >= 4 and version is not None and stripped:
            if stripped.startswith("@") or stripped.endswith("/installed"):
                continue
            if version not in available[current]:
                available[current].append(version)
    return {
        name: max(versions, key=apk_version_key) if versions else None
        for name, versions in available.items()
    }


_APK_VERSION_RE = re.compile(
    r"^(?P<numbers>\d+(?:\.\d+)*)(?P<letter>[a-z]?)"
    r"(?P<suffixes>(?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)"
    r"(?:~[0-9a-f]+)?(?:-r(?P<revision>\d+))?$"
)
_APK_SUFFIX_RE = re.compile(r"_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)")
# Pre-release suffixes sort before the release, the others after it.
_APK_SUFFIX_RANK = {
    **{"alpha": -4, "beta": -3, "pre": -2, "rc": -1},
    **{"cvs": 1, "svn": 2, "git": 3, "hg": 4, "p": 5},
}

ApkVersionKey = tuple[int, str, tuple[int, ...], str, tuple[tuple[int, int], ...], int]


def apk_version_key(version: str) -> ApkVersionKey:
    """A sort key following apk's version order: numbers, a letter, suffixes (``_rc1`` is
    before the release, ``_p1`` after it), then the ``-rN`` package revision. A version apk
    would not accept sorts below every valid one."""
    match = _APK_VERSION_RE.match(version)
    if match is None:
        return (0, version, (), "", (), 0)
    numbers = tuple(int(part) for part in match.group("numbers").split("."))
    suffixes = tuple(
        (_APK_SUFFIX_RANK[kind], int(number or 0))
        for kind, number in _APK_SUFFIX_RE.findall(match.group("suffixes"))
    )
    revision = int(match.group("revision") or 0)
    return (1, "", numbers, match.group("letter"), (*suffixes, (0, 0)), revision)


# --------------------------------------------------------------------------- lookup


@dataclass(frozen=True)
class CandidateLookup:
    """What the package manager in an image would install now."""

    versions: Mapping[str, str]
    """Package (as asked) -> candidate version."""
    missing: tuple[str, ...]
    """Packages with no candidate (unknown to the image's package sources)."""
    error: str | None = None
    """Why the lookup failed or cannot be trusted (the index update failed)."""


def lookup_candidates(
    builder: Builder,
    image: str,
    manager: Manager,
    names: Sequence[str],
    *,
    timeout_s: float,
) -> CandidateLookup:
    """Update the package index inside ``image`` and read each package's candidate. Needs
    the network and root in the container; failures are values."""
    wanted = sorted(set(names))
    versions: dict[str, str] = {}
    missing: list[str] = []
    size = CHUNK_SIZE[manager]
    for start in range(0, len(wanted), size):
        chunk = wanted[start : start + size]
        script = APT_SCRIPT if manager == "apt" else APK_SCRIPT
        outcome = builder.run(
            RunSpec(
                image=image,
                command=("sh", "-c", script, "lockwarden-lookup", *chunk),
                env={"LC_ALL": "C"},
                network=True,
                timeout_s=timeout_s,
            )
        )
        if outcome.status == "timed-out":
            error = (
                f"looking up {manager} packages in {image} did not finish within {timeout_s:.0f} s"
            )
            return CandidateLookup(versions, tuple(missing), error)
        section, notes = _section(outcome.log_tail)
        if outcome.exit_code == UPDATE_FAILED_EXIT and notes:
            error = f"{_UPDATE_COMMAND[manager]} failed in {image}: {' | '.join(notes)}"
            return CandidateLookup(versions, tuple(missing), error)
        if outcome.exit_code != 0 or section is None:
            return CandidateLookup(versions, tuple(missing), _run_failure(image, outcome))
        parsed = parse_apt_policy(section) if manager == "apt" else parse_apk_policy(section)
        for name in chunk:
            candidate = _candidate(name, parsed)
            if candidate is None:
                missing.append(name)
            else:
                versions[name] = candidate
        if notes:
            error = f"{_UPDATE_COMMAND[manager]} in {image} reported: {' | '.join(notes)}"
            return CandidateLookup(versions, tuple(missing), error)
    return CandidateLookup(versions, tuple(missing))


def _section(log: str) -> tuple[str | None, list[str]]:
    """The parsed part of the output (None when a marker is missing: the output was cut or
    the script stopped) and the notes."""
    lines = log.splitlines()
    notes = [line.removeprefix(NOTE_PREFIX) for line in lines if line.startswith(NOTE_PREFIX)]
    if BEGIN_MARKER not in lines or END_MARKER not in lines:
        return None, notes
    body = lines[lines.index(BEGIN_MARKER) + 1 : lines.index(END_MARKER)]
    return "\n".join(line for line in body if not line.startswith(NOTE_PREFIX)), notes


def _run_failure(image: str, outcome: RunOutcome) -> str:
    exit_code = outcome.exit_code
    tail = "\n".join(outcome.log_tail.splitlines()[-5:]).strip()
    if exit_code is None:
        return f"could not start a container of {image}: {tail or 'no output'}"
    if exit_code == 0:
        return f"the package lookup in {image} printed too much; its output was cut"
    return f"the package lookup in {image} failed (exit {exit_code}): {tail or 'no output'}"


def _candidate(name: str, parsed: Mapping[str, str | None]) -> str | None:
    if name in parsed:
        return parsed[name]
    # apt prints a package of the native architecture without its ":arch".
    return parsed.get(name.partition(":")[0]) if ":" in name else None


# --------------------------------------------------------------------------- version order


def is_downgrade(manager: Manager, before: str, after: str) -> bool:
    """Whether moving a pin from ``before`` to ``after`` installs an older version: the
    mirror dropped the newer one, or the pin was written ahead of it."""
    if manager == "apk":
        return apk_version_key(after) < apk_version_key(before)
    return compare_deb_versions(after, before) < 0


def compare_deb_versions(first: str, second: str) -> int:
    """Negative, zero or positive as ``first`` sorts before, with or after ``second`` in
    dpkg's order: epoch, then upstream version, then Debian revision; ``~`` sorts before
    everything, even the end of the text (``1.0~rc1`` < ``1.0``)."""
    a_epoch, a_upstream, a_revision = _deb_parts(first)
    b_epoch, b_upstream, b_revision = _deb_parts(second)
    if a_epoch != b_epoch:
        return a_epoch - b_epoch
    return _deb_compare(a_upstream, b_upstream) or _deb_compare(a_revision, b_revision)


def _deb_parts(version: str) -> tuple[int, str, str]:
    epoch, colon, rest = version.partition(":")
    if not colon or not epoch.isdigit():
        epoch, rest = "0", version
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return int(epoch), upstream, revision


def _deb_order(char: str) -> int:
    if not char or char.isdigit():
        return 0
    if char.isalpha():
        return ord(char)
    return -1 if char == "~" else ord(char) + 256


def _deb_compare(first: str, second: str) -> int:
    """dpkg's ``verrevcmp``: alternating non-digit runs (by :func:`_deb_order`) and
    numbers (by value)."""
    a, b = first, second
    while a or b:
        while (a and not a[0].isdigit()) or (b and not b[0].isdigit()):
            diff = _deb_order(a[:1]) - _deb_order(b[:1])
            if diff:
                return diff
            a, b = a[1:], b[1:]
        a_digits = len(a) - len(a.lstrip("0123456789"))
        b_digits = len(b) - len(b.lstrip("0123456789"))
        diff = int(a[:a_digits] or 0) - int(b[:b_digits] or 0)
        if diff:
            return diff
        a, b = a[a_digits:], b[b_digits:]
    return 0


# --------------------------------------------------------------------------- failed installs

_APT_MISSING_RE = re.compile(
    r"^E: Version '(?P<version>[^']+)' for '(?P<name>[^']+)' was not found"
)
_APK_MISSING_RE = re.compile(r"world\[(?P<name>[^\]=~<>\s]+)=(?P<version>[^\]\s]+)\]")


def missing_pins(output: str) -> tuple[tuple[Manager, str, str], ...]:
    """(manager, package, version) of each pin a build's ``apt-get install`` or ``apk add``
    could not find (``E: Version '1.0' for 'curl' was not found``), in order, once each."""
    found: list[tuple[Manager, str, str]] = []
    for line in output.splitlines():
        apt = _APT_MISSING_RE.match(line.strip())
        if apt is not None:
            found.append(("apt", apt.group("name"), apt.group("version")))
        found += [
            ("apk", m.group("name"), m.group("version")) for m in _APK_MISSING_RE.finditer(line)
        ]
    return tuple(dict.fromkeys(found))


def missing_pin_error(output: str) -> str | None:
    """Why a build failed when the mirror no longer offers a pinned OS package version:
    the packages, the versions and what to do; None when that is not why."""
    missing = missing_pins(output)
    if not missing:
        return None
    pins = ", ".join(f"{name}={version} ({manager})" for manager, name, version in missing)
    return (
        f"the package sources no longer offer the pinned version of {pins}; run "
        "`lockwarden run --upgrade` to move the pins to the versions offered now, or pin "
        "versions the mirror still has"
    )
