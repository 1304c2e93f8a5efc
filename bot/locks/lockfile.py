"""Model and parser for requirements files as pip-compile and ``uv pip compile`` write them.

The same grammar covers the human-edited spec (``.in``) and the compiled lock (``.txt``):
a spec simply has no header, hashes or ``# via`` annotations.

Requirements written as a URL or path are named by their ``#egg=`` fragment, else by the
last component of the URL or path (``.../OpusTrainer.git@rev`` -> ``OpusTrainer``, an
archive by its file name). When there is none (``-e .``, ``-e file:.``) the location as
written stands in for both ``name`` and ``raw_name``: the real name is only known after
building the project.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from packaging.markers import InvalidMarker, Marker
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from bot.errors import LockfileParseError

HeaderTool = Literal["pip-compile", "uv", "other", "none"]
LockFlavour = Literal["requirements", "poetry", "conda"]


@dataclass(frozen=True)
class LockHeader:
    """The comment block a compiler writes at the top of a lock."""

    tool: HeaderTool
    """Who wrote the header: ``pip-compile``, ``uv``, ``other`` (some header, unknown tool),
    ``none`` (no header at all)."""
    python_version: str | None
    """``"3.11"`` from ``... with Python 3.11``; None when the header does not say."""
    command: tuple[str, ...]
    """The recorded compile command, split with ``shlex``; empty when none was recorded."""
    text: str
    """The header lines verbatim (including their ``#``), joined with newlines."""


@dataclass(frozen=True)
class IndexOptions:
    """Index options written into the file body."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    trusted_hosts: tuple[str, ...] = ()
    no_index: bool = False


@dataclass(frozen=True)
class Include:
    """A ``-r file`` (kind ``"requirement"``) or ``-c file`` (kind ``"constraint"``) line."""

    kind: Literal["requirement", "constraint"]
    path: str
    line: int


@dataclass(frozen=True)
class RequirementEntry:
    """One requirement of a lock or spec, possibly spread over continuation lines."""

    name: str
    """Canonical name (``packaging.utils.canonicalize_name``)."""
    raw_name: str
    """The name as written."""
    specifier: str
    """The version specifier as written, normalised by ``packaging`` (``"==1.2.3"``, ``""``)."""
    version: str | None
    """The pinned version for ``==``/``===`` pins; None for ranges, URLs and VCS."""
    extras: tuple[str, ...] = ()
    marker: str | None = None
    url: str | None = None
    """Direct URL or VCS URL (``name @ url``, ``git+https://...``, ``-e ...``)."""
    editable: bool = False
    hashes: tuple[str, ...] = ()
    """``"sha256:..."`` values in file order."""
    via: tuple[str, ...] = ()
    """Annotation sources in file order: ``"-r requirements/serve.in"``, ``"numpy"``,
    ``"-c requirements/serve.txt"``."""
    line: int = 0
    """1-based line where the entry starts."""
    unsafe: bool = False
    """True when listed after the "unsafe in a requirements file" comment."""
    groups: tuple[str, ...] = ()
    """Poetry dependency groups the package belongs to (``main``, ``dev``), sorted."""
    files: tuple[tuple[str, str], ...] = ()
    """``(file name, hash)`` pairs, where the lock names its files (Poetry); empty otherwise."""
    build: str | None = None
    """Conda build string (``py311h64a7726_0``)."""
    channel: str | None = None
    """Conda channel (``conda-forge``, or the channel URL)."""

    @property
    def key(self) -> tuple[str, str | None]:
        """Identity inside one lock: uv may list a name twice with different markers."""
        return (self.name, self.marker)


@dataclass(frozen=True)
class Lockfile:
    path: str
    header: LockHeader
    requirements: tuple[RequirementEntry, ...] = ()
    index: IndexOptions = field(default_factory=IndexOptions)
    includes: tuple[Include, ...] = ()
    unsafe_comment_names: tuple[str, ...] = ()
    """Names listed only as comments in the unsafe section (``#   setuptools``)."""
    other_options: tuple[str, ...] = ()
    """Option lines the model does not interpret (``--prefer-binary``, ...), verbatim."""
    flavour: LockFlavour = "requirements"
    """requirements (pip-compile, uv, poetry export), poetry (``poetry.lock``) or conda
    (an ``@EXPLICIT`` lock)."""
    platform: str | None = None
    """The platform a per-platform lock is for (conda subdir, ``linux-64``)."""

    @property
    def has_hashes(self) -> bool:
        return any(r.hashes for r in self.requirements)

    def versions(self) -> dict[str, str]:
        """Canonical name -> pinned version (the first entry wins for duplicated names)."""
        out: dict[str, str] = {}
        for req in self.requirements:
            if req.version is not None and req.name not in out:
                out[req.name] = req.version
        return out

    def find(self, name: str) -> tuple[RequirementEntry, ...]:
        wanted = canonicalize_name(name)
        return tuple(r for r in self.requirements if r.name == wanted)


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------

_UNSAFE_MARKER = "The following packages are considered to be unsafe in a requirements file"

# pip's own comment rule: a ``#`` at the start of a line or after whitespace starts a comment,
# so ``#egg=name`` inside a URL is kept.
_COMMENT_RE = re.compile(r"(?:^|\s)#")
# Where the options of a requirement line start: the first token beginning with ``-``
# (pip's ``break_args_options``).
_OPTIONS_START_RE = re.compile(r"\s-")
_PYTHON_RE = re.compile(r"\bwith [Pp]ython (\d+(?:\.\d+)+)")
_COMMAND_INTRO_RE = re.compile(r"(?:by|via) the following command:|To update, run:")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HASH_RE = re.compile(r"^[A-Za-z0-9]+:[0-9A-Fa-f]+$")
_PATH_EXTRAS_RE = re.compile(r"^(.+?)(\[[^\]]*\])$")
# For URLs and paths pip only accepts ``; `` (semicolon, whitespace) before a marker.
_URL_MARKER_RE = re.compile(r";\s")
_ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tbz", ".txz", ".tar", ".zip")

_OptionKey = Literal[
    "requirement",
    "constraint",
    "editable",
    "index-url",
    "extra-index-url",
    "find-links",
    "trusted-host",
    "no-index",
    "hash",
]

# Spelling -> (meaning, takes a value).
_OPTIONS: dict[str, tuple[_OptionKey, bool]] = {
    "-r": ("requirement", True),
    "--requirement": ("requirement", True),
    "-c": ("constraint", True),
    "--constraint": ("constraint", True),
    "-e": ("editable", True),
    "--editable": ("editable", True),
    "-i": ("index-url", True),
    "--index-url": ("index-url", True),
    "--extra-index-url": ("extra-index-url", True),
    "-f": ("find-links", True),
    "--find-links": ("find-links", True),
    "--trusted-host": ("trusted-host", True),
    "--no-index": ("no-index", False),
    "--hash": ("hash", True),
}
# Options kept verbatim in ``other_options`` whose value is nevertheless required.
_OTHER_VALUE_OPTIONS = frozenset(
    {"--only-binary", "--no-binary", "--use-feature", "--global-option", "--config-settings"}
)


def read_lockfile(path: Path, display_path: str | None = None) -> Lockfile:
    """Read and parse a requirements file (UTF-8, an optional BOM is ignored).

    ``display_path`` is what ``Lockfile.path`` and error messages show (default
    ``str(path)``). A file that cannot be read or decoded raises ``LockfileParseError``
    too; line 0 then stands for the file as a whole.
    """
    shown = display_path if display_path is not None else str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LockfileParseError(shown, 0, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LockfileParseError(shown, line, f"not valid UTF-8: {exc.reason}") from exc
    return parse_lockfile(text, shown)


def parse_lockfile(text: str, path: str) -> Lockfile:
    """Parse a pip-compile or ``uv pip compile`` lock, or a hand-written ``.in`` spec.

    Raises ``LockfileParseError`` naming ``path`` and the 1-based line of the first invalid
    line. A single linear pass; no file system access.
    """
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        # The final newline ends the last line; it does not start an empty one (this also
        # keeps a trailing continuation backslash visible as an error).
        lines.pop()
    header, body_start = _parse_header(lines)
    return _BodyParser(path, header).run(lines, body_start)


def _parse_header(lines: list[str]) -> tuple[LockHeader, int]:
    """The leading run of ``#`` lines, and the index of the first line after it."""
    end = 0
    while end < len(lines) and lines[end].startswith("#"):
        if _UNSAFE_MARKER in lines[end]:
            break
        end += 1
    block = [line.rstrip("\r") for line in lines[:end]]
    if not block:
        return LockHeader(tool="none", python_version=None, command=(), text=""), 0

    joined = "\n".join(block)
    tool: HeaderTool
    if "autogenerated by pip-compile" in joined:
        # Also pip-compile-multi and wrappers such as pybuild-deps: pip-tools wrote the file.
        tool = "pip-compile"
    elif "autogenerated by uv" in joined:
        tool = "uv"
    else:
        return LockHeader(tool="other", python_version=None, command=(), text=joined), end

    match = _PYTHON_RE.search(joined)
    python_version = match.group(1) if match else None
    return (
        LockHeader(
            tool=tool,
            python_version=python_version,
            command=_header_command(block),
            text=joined,
        ),
        end,
    )


def _header_command(block: list[str]) -> tuple[str, ...]:
    """The first non-empty comment line after the "following command" / "To update" line."""
    intro = next((i for i, line in enumerate(block) if _COMMAND_INTRO_RE.search(line)), None)
    if intro is None:
        return ()
    for line in block[intro + 1 :]:
        recorded = line.lstrip("#").strip()
        if recorded:
            try:
                return tuple(shlex.split(recorded))
            except ValueError:
                # Unbalanced quotes in a hand-edited header: keep the words rather than fail.
                return tuple(recorded.split())
    return ()


class _BodyParser:
    """State of the single pass over the body (everything after the header)."""

    def __init__(self, path: str, header: LockHeader) -> None:
        self.path = path
        self.header = header
        self.entries: list[RequirementEntry] = []
        # Hashes and annotations arrive after their entry: collected here, attached once.
        self.hashes: list[list[str]] = []
        self.vias: list[list[str]] = []
        self.includes: list[Include] = []
        self.other_options: list[str] = []
        self.unsafe_names: list[str] = []
        self.index_url: str | None = None
        self.extra_index_urls: list[str] = []
        self.find_links: list[str] = []
        self.trusted_hosts: list[str] = []
        self.no_index = False
        self.unsafe = False
        # The ``via`` list of the entry that annotations below would belong to.
        self.via_target: list[str] | None = None
        self.in_via_block = False

    def error(self, line: int, message: str) -> LockfileParseError:
        return LockfileParseError(self.path, line, message)

    def run(self, lines: list[str], start: int) -> Lockfile:
        pending: list[str] = []
        pending_start = 0
        last_raw = ""
        for index in range(start, len(lines)):
            number = index + 1
            raw = lines[index].rstrip()
            code, comment = split_comment(raw)
            if comment is None and code.endswith("\\"):
                if not pending:
                    pending_start = number
                pending.append(code[:-1])
                last_raw = raw
                continue
            if pending:
                pending.append(code)
                code = " ".join(pending)
                pending = []
                self.logical_line(code.strip(), comment, pending_start)
            else:
                self.logical_line(code.strip(), comment, number)
        if pending:
            last = pending_start + len(pending) - 1
            raise self.error(
                last, f"the line ends with a continuation backslash but the file ends: {last_raw!r}"
            )
        return self.result()

    def result(self) -> Lockfile:
        requirements = tuple(
            replace(entry, hashes=tuple(hashes), via=tuple(via)) if hashes or via else entry
            for entry, hashes, via in zip(self.entries, self.hashes, self.vias, strict=True)
        )
        return Lockfile(
            path=self.path,
            header=self.header,
            requirements=requirements,
            index=IndexOptions(
                index_url=self.index_url,
                extra_index_urls=tuple(self.extra_index_urls),
                find_links=tuple(self.find_links),
                trusted_hosts=tuple(self.trusted_hosts),
                no_index=self.no_index,
            ),
            includes=tuple(self.includes),
            unsafe_comment_names=tuple(self.unsafe_names),
            other_options=tuple(self.other_options),
        )

    # -- lines ----------------------------------------------------------------------------

    def logical_line(self, code: str, comment: str | None, number: int) -> None:
        if not code:
            if comment is None:
                # A blank line ends whatever the annotations were attached to.
                self.via_target = None
                self.in_via_block = False
            else:
                self.comment_line(comment)
            return
        self.via_target = None
        self.in_via_block = False
        if code.startswith("-"):
            self.option_line(code, number)
        else:
            self.requirement_line(code, number)
        if comment is not None:
            # Old one-line annotations: ``six==1.16  # via a, b``; other comments are notes.
            self.annotation(comment.strip())

    def comment_line(self, body: str) -> None:
        text = body.strip()
        if self.in_via_block and text and body.startswith("  "):
            # ``    #   pkg`` inside a multi-line ``# via`` block.
            assert self.via_target is not None
            self.via_target.append(text)
            return
        self.in_via_block = False
        if self.annotation(text):
            return
        if _UNSAFE_MARKER in text:
            self.unsafe = True
            self.via_target = None
        elif self.unsafe:
            self.unsafe_comment(text)

    def annotation(self, text: str) -> bool:
        """Attach a ``via`` comment to the current entry; False when it is no annotation."""
        if self.via_target is None:
            return False
        if text == "via":
            self.in_via_block = True
            return True
        if text.startswith("via "):
            self.via_target.extend(s.strip() for s in text[4:].split(",") if s.strip())
            return True
        return False

    def unsafe_comment(self, text: str) -> None:
        """``# setuptools`` in the unsafe section: a package left out of the lock."""
        candidate = text.split(" #", 1)[0].strip()
        try:
            req = Requirement(candidate)
        except InvalidRequirement:
            return  # prose, not a package name
        name = canonicalize_name(req.name)
        if name not in self.unsafe_names:
            self.unsafe_names.append(name)

    def option_line(self, code: str, number: int) -> None:
        try:
            tokens = shlex.split(code)
        except ValueError as exc:
            raise self.error(number, f"cannot split the option line {code!r}: {exc}") from exc
        entry_index: int | None = None
        unknown: list[list[str]] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            spelling, value, i = _split_option(tokens, i)
            known = _OPTIONS.get(spelling)
            if known is None:
                if spelling in _OTHER_VALUE_OPTIONS and value is None and _no_value_at(tokens, i):
                    raise self.error(number, f"option {spelling!r} needs a value: {code!r}")
                # Unknown option: keep it with the values that follow it.
                chunk = [token]
                while i < len(tokens) and not tokens[i].startswith("-"):
                    chunk.append(tokens[i])
                    i += 1
                unknown.append(chunk)
                continue
            key, takes_value = known
            if takes_value and value is None:
                if _no_value_at(tokens, i):
                    raise self.error(number, f"option {spelling!r} needs a value: {code!r}")
                value = tokens[i]
                i += 1
            if not takes_value:
                if value is not None:
                    raise self.error(number, f"option {spelling!r} takes no value: {code!r}")
                self.no_index = True
                continue
            assert value is not None
            if key == "hash":
                if entry_index is None:
                    raise self.error(number, f"--hash without a requirement: {code!r}")
                self.add_hash(entry_index, value, number)
            elif key == "editable":
                entry_index = self.add_location_entry(value, number, editable=True)
            else:
                self.simple_option(key, value, number)
        if unknown:
            if len(unknown) == 1 and len(unknown[0]) == len(tokens):
                self.other_options.append(code)
            else:
                self.other_options.extend(" ".join(chunk) for chunk in unknown)

    def simple_option(self, key: _OptionKey, value: str, number: int) -> None:
        if key == "requirement":
            self.includes.append(Include("requirement", value, number))
        elif key == "constraint":
            self.includes.append(Include("constraint", value, number))
        elif key == "index-url":
            self.index_url = value
        elif key == "extra-index-url":
            self.extra_index_urls.append(value)
        elif key == "find-links":
            self.find_links.append(value)
        elif key == "trusted-host":
            self.trusted_hosts.append(value)

    def requirement_line(self, code: str, number: int) -> None:
        spec, options = split_options(code)
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            if not _looks_like_location(spec):
                reason = str(exc).splitlines()[0] if str(exc) else "invalid"
                raise self.error(number, f"invalid requirement {spec!r}: {reason}") from exc
            index = self.add_location_entry(spec, number, editable=False)
        else:
            index = self.add_entry(_entry_from_requirement(req, number, self.unsafe))
        if not options:
            return
        tokens = options.split()
        i = 0
        while i < len(tokens):
            spelling, value, i = _split_option(tokens, i)
            if spelling != "--hash":
                raise self.error(
                    number, f"unsupported option {spelling!r} on the requirement line {spec!r}"
                )
            if value is None:
                if _no_value_at(tokens, i):
                    raise self.error(number, f"option '--hash' needs a value after {spec!r}")
                value = tokens[i]
                i += 1
            self.add_hash(index, value, number)

    # -- entries --------------------------------------------------------------------------

    def add_entry(self, entry: RequirementEntry) -> int:
        self.entries.append(entry)
        self.hashes.append([])
        via: list[str] = []
        self.vias.append(via)
        self.via_target = via
        return len(self.entries) - 1

    def add_hash(self, index: int, value: str, number: int) -> None:
        if not _HASH_RE.match(value):
            raise self.error(number, f"invalid hash {value!r} (expected algorithm:hexdigest)")
        self.hashes[index].append(value)

    def add_location_entry(self, text: str, number: int, *, editable: bool) -> int:
        """An entry written as a URL or path (``-e .``, ``git+https://...#egg=x``)."""
        location, marker = text, None
        split = _URL_MARKER_RE.search(text)
        if split is not None:
            location, marker_text = text[: split.start()].strip(), text[split.end() :].strip()
            try:
                marker = str(Marker(marker_text))
            except InvalidMarker as exc:
                raise self.error(number, f"invalid marker {marker_text!r}: {exc}") from exc
        extras: tuple[str, ...] = ()
        raw_name: str | None = None
        egg = _egg_fragment(location)
        if egg is not None:
            try:
                egg_req = Requirement(egg)
            except InvalidRequirement as exc:
                raise self.error(number, f"invalid #egg= name {egg!r} in {text!r}") from exc
            raw_name, extras = egg_req.name, tuple(sorted(egg_req.extras))
        else:
            with_extras = _PATH_EXTRAS_RE.match(location)
            if with_extras is not None and not has_url_scheme(location):
                location = with_extras.group(1)
                try:
                    extras = tuple(sorted(Requirement("x" + with_extras.group(2)).extras))
                except InvalidRequirement as exc:
                    raise self.error(number, f"invalid extras in {text!r}") from exc
            raw_name = _name_from_location(location)
        if raw_name is None:
            # Nothing names the project without building it (``-e .``): the path stands in.
            name = raw_name = location
        else:
            name = canonicalize_name(raw_name)
        return self.add_entry(
            RequirementEntry(
                name=name,
                raw_name=raw_name,
                specifier="",
                version=None,
                extras=extras,
                marker=marker,
                url=location,
                editable=editable,
                line=number,
                unsafe=self.unsafe,
            )
        )


def split_comment(line: str) -> tuple[str, str | None]:
    """(code, comment text after ``#`` or None) of one physical requirements line."""
    # Most lines of a lock have no ``#``; skipping the regex for them keeps big locks fast.
    found = _COMMENT_RE.search(line) if "#" in line else None
    if found is None:
        return line, None
    return line[: found.start()], line[found.end() :]


def split_options(code: str) -> tuple[str, str]:
    """(requirement, trailing options such as ``--hash=...`` or "") of a line's code."""
    options = _OPTIONS_START_RE.search(code)
    if options is None:
        return code, ""
    return code[: options.start()].strip(), code[options.start() :]


def _split_option(tokens: list[str], i: int) -> tuple[str, str | None, int]:
    """(spelling, attached value or None, index of the next token) for ``tokens[i]``."""
    token = tokens[i]
    if token.startswith("--"):
        spelling, sep, value = token.partition("=")
        return spelling, (value if sep else None), i + 1
    short = token[:2]
    if len(token) > 2 and short in _OPTIONS:
        return short, token[2:], i + 1  # ``-rfile.txt``, as optparse allows
    return token, None, i + 1


def _no_value_at(tokens: list[str], i: int) -> bool:
    """True when ``tokens[i]`` cannot be the value of the option before it."""
    return i >= len(tokens) or tokens[i].startswith("-")


def _entry_from_requirement(req: Requirement, number: int, unsafe: bool) -> RequirementEntry:
    specifiers = list(req.specifier)
    version: str | None = None
    if len(specifiers) == 1:
        only = specifiers[0]
        if only.operator == "===" or (only.operator == "==" and not only.version.endswith(".*")):
            version = only.version
    return RequirementEntry(
        name=canonicalize_name(req.name),
        raw_name=req.name,
        specifier=str(req.specifier),
        version=version,
        extras=tuple(sorted(req.extras)),
        marker=str(req.marker) if req.marker is not None else None,
        url=req.url,
        line=number,
        unsafe=unsafe,
    )


def _looks_like_location(text: str) -> bool:
    """A bare URL or path (one word, maybe a marker), which pip accepts instead of a name."""
    split = _URL_MARKER_RE.search(text)
    location = text[: split.start()].strip() if split is not None else text
    if not location or any(c.isspace() for c in location):
        return False
    return bool(
        has_url_scheme(location)
        or location.startswith(("file:", ".", "/", "~"))
        or "/" in location
        or "\\" in location
        or location.endswith((*_ARCHIVE_SUFFIXES, ".whl"))
    )


def _egg_fragment(location: str) -> str | None:
    """The ``#egg=`` value of a URL (pip's legacy way to name a VCS or URL requirement)."""
    _, sep, fragment = location.partition("#")
    if not sep:
        return None
    for part in fragment.split("&"):
        if part.startswith("egg="):
            return part[4:] or None
    return None


def has_url_scheme(text: str) -> bool:
    """``text`` starts with a URL's scheme and ``://`` (``https://``, ``git+ssh://``)."""
    return _URL_RE.match(text) is not None


def _name_from_location(location: str) -> str | None:
    """A project name guessed from the last component of a URL or path, None if none.

    ``git+https://host/org/Repo.git@rev`` -> ``Repo``; ``.../py2neo-2021.2.3.tar.gz`` ->
    ``py2neo``; ``file:///src/my-project`` -> ``my-project``; ``.`` -> None.
    """
    is_url = has_url_scheme(location) or location.startswith("file:")
    parts = urlsplit(location) if is_url else None
    path = parts.path if parts is not None else location.partition("#")[0]
    last = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
    if parts is not None and "+" in parts.scheme:
        last = last.partition("@")[0]  # the VCS revision
    if last.endswith(".whl"):
        try:
            return str(parse_wheel_filename(last)[0])
        except InvalidWheelFilename:
            return last.split("-", 1)[0] or None
    for suffix in _ARCHIVE_SUFFIXES:
        if last.endswith(suffix):
            try:
                return str(parse_sdist_filename(last)[0])
            except InvalidSdistFilename:
                stem = last[: -len(suffix)]
                name, sep, version = stem.rpartition("-")
                return name if sep and version[:1].isdigit() else stem or None
    last = last.removesuffix(".git")
    if last in ("", ".", ".."):
        return None
    return last
