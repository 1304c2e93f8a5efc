"""Where a requirements spec sends the compiler: index options and direct references.

Real specs carry ``--index-url``, ``--extra-index-url``, ``--find-links`` and
``--trusted-host`` (a ``+cu121`` index, an internal mirror), and requirements that name a
VCS repository, a URL or a local path. They keep working, but every one is named in the
run's notes, a host in a loopback, link-local or private range is refused unless the
operator allows it, and direct references need the sandbox, because building them runs
their code.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from bot.sandbox.egress import EgressPolicy, address_kind

SourceKind = Literal["index", "find-links", "trusted-host", "vcs", "url", "path"]

_URL_OPTIONS = {
    "-i": "index",
    "--index-url": "index",
    "--extra-index-url": "index",
    "--index": "index",
    "--default-index": "index",
    "-f": "find-links",
    "--find-links": "find-links",
    "--trusted-host": "trusted-host",
}
_VCS = re.compile(r"^(git|hg|svn|bzr)\+", re.IGNORECASE)
_DIRECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*@\s*(?P<ref>\S+)")


@dataclass(frozen=True)
class SpecSource:
    """One index option or direct reference, with the file and line it came from."""

    where: str
    """``requirements/serve.in:3``, or ``the recorded command`` for the lock's header."""
    option: str
    kind: SourceKind
    value: str

    @property
    def host(self) -> str | None:
        if self.kind == "trusted-host":
            return self.value.rsplit(":", 1)[0] if self.value.count(":") == 1 else self.value
        if self.kind == "path":
            return None
        url = _VCS.sub("", self.value)
        try:
            return urlsplit(url).hostname
        except ValueError:
            return None

    def describe(self) -> str:
        return f"{self.where}: {self.option} {self.value}".rstrip()


def spec_sources(root: Path, files: Iterable[str]) -> tuple[SpecSource, ...]:
    """The index options and direct references of the given spec files (repository paths,
    already checked to stay inside ``root``)."""
    found: list[SpecSource] = []
    for relative in files:
        try:
            text = (root / relative).read_text("utf-8", errors="replace")
        except OSError:
            continue  # the compiler reports a missing file in its own words
        for number, line in _logical_lines(text):
            found.extend(_line_sources(f"{relative}:{number}", line))
    return tuple(found)


def argument_sources(where: str, args: Sequence[str]) -> tuple[SpecSource, ...]:
    """Index options among a compiler's arguments (replayed from a header, or configured)."""
    return tuple(_option_sources(where, list(args)))


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Lines with comments removed and backslash continuations joined, as pip reads them."""
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        yield start, (pending + line).strip()
        pending = ""
    if pending.strip():
        yield start, pending.strip()


def _line_sources(where: str, line: str) -> list[SpecSource]:
    if not line:
        return []
    try:
        words = shlex.split(line, posix=True)
    except ValueError:
        words = line.split()
    if words[0].startswith("-"):
        if words[0] in ("-e", "--editable") or words[0].startswith("--editable="):
            target = words[1] if len(words) > 1 else words[0].partition("=")[2]
            return [_reference(where, "-e", target)] if target else []
        return list(_option_sources(where, words))
    match = _DIRECT.match(line)
    if match:
        return [_reference(where, "@", match.group("ref"))]
    first = words[0]
    if "://" in first or _VCS.match(first) or first.startswith((".", "/", "~")):
        return [_reference(where, "", first)]
    return []


def _option_sources(where: str, words: list[str]) -> Iterable[SpecSource]:
    index = 0
    while index < len(words):
        word = words[index]
        name, eq, value = word.partition("=")
        kind = _URL_OPTIONS.get(name)
        if kind is not None and not eq and index + 1 < len(words):
            value = words[index + 1]
            index += 1
        if kind is not None and value:
            yield SpecSource(where, name, kind, value)  # type: ignore[arg-type]
        index += 1


def _reference(where: str, option: str, target: str) -> SpecSource:
    if _VCS.match(target):
        kind: SourceKind = "vcs"
    elif "://" in target and not target.startswith("file:"):
        kind = "url"
    else:
        kind = "path"
    return SpecSource(where, option or "requirement", kind, target)


@dataclass(frozen=True)
class SourceCheck:
    notes: tuple[str, ...]
    error: str | None


def check_sources(
    sources: Sequence[SpecSource], policy: EgressPolicy, *, sandboxed: bool
) -> SourceCheck:
    """Notes naming every source, and the first refusal: a host the policy does not allow,
    or a direct reference without the sandbox."""
    notes = tuple(
        dict.fromkeys(
            f"{s.describe()} ({'index option' if s.kind in _INDEX_KINDS else 'direct reference'})"
            for s in sources
        )
    )
    for source in sources:
        error = _refusal(source, policy, sandboxed=sandboxed)
        if error is not None:
            return SourceCheck(notes, error)
    return SourceCheck(notes, None)


_INDEX_KINDS = ("index", "find-links", "trusted-host")


def _refusal(source: SpecSource, policy: EgressPolicy, *, sandboxed: bool) -> str | None:
    if source.kind in ("vcs", "url", "path") and not sandboxed:
        return (
            f"{source.describe()}: a {source.kind} requirement runs its own build code, so it "
            "is compiled only inside the sandbox; install bubblewrap (see docs/security.md) "
            "or replace it with a release from the index"
        )
    host = source.host
    if host is None:
        return None
    kind = _private_kind(host, policy, resolve=not sandboxed)
    if kind is None:
        return None
    return (
        f"{source.describe()}: {host} is a {kind} address; an index there is refused unless "
        "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS lists it"
    )


def _private_kind(host: str, policy: EgressPolicy, *, resolve: bool) -> str | None:
    """The non-public range ``host`` is in, or None when it is public or allowed. Names are
    resolved only when no egress proxy will check the real connection."""
    if policy.allows_host(host):
        return None
    name = host.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "loopback"
    try:
        addresses = [ipaddress.ip_address(name)]
    except ValueError:
        if not resolve:
            return None
        try:
            infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            return None  # unresolvable: the compiler says so
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        if policy.refusal(host, address) is not None:
            return address_kind(address)
    return None
