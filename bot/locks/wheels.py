"""Which pinned packages have no wheel for a target platform.

A lock compiled on one machine happily pins a release that ships wheels for x86_64 only: on
an arm64 image pip then builds the sdist (slow, needs compilers, often fails), or finds
nothing at all. ``check_wheels`` lists each pinned release's files on the package indexes
(PEP 691 JSON, PEP 503 HTML as the fallback) and reports every (package, platform) pair for
which no wheel's tags are among those the platform's Python accepts.

The indexes are consulted in the order given, and the first one that lists the pinned
version (and, for a lock with hashes, a file with one of those hashes) is the one the check
uses. Local versions (``2.1.0+cu121``) match exactly, so an accelerator build is looked up on
the extra index that serves it. Anything that keeps a package from being checked (an index
that cannot be reached, a release no index lists) becomes a message in ``unchecked``.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.tags import Tag
from packaging.utils import (
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bot.locks.lockfile import Lockfile, RequirementEntry
from bot.locks.platforms import TargetPlatform, marker_environment, supported_tags
from bot.sandbox.egress import EgressPolicy
from bot.sandbox.transport import GuardedTransport
from bot.upstream.index import display_url, dist_name, html_links, json_file_entries

ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"
"""PEP 691 content negotiation: JSON when the index has it, else the PEP 503 HTML page."""
_MAX_WORKERS = 8


@dataclass(frozen=True)
class WheelGap:
    package: str
    version: str
    platform: str
    """The target platform's name (``linux/arm64``)."""
    sdist: bool
    """True: only an sdist matches, so pip would build it in the image; False: no file of
    this release installs on the platform at all."""
    index: str | None
    """The index that lists the release's files (credentials removed)."""


@dataclass(frozen=True)
class WheelCheck:
    gaps: tuple[WheelGap, ...]
    unchecked: tuple[str, ...]
    """One message per pinned package whose files could not be listed, saying why."""
    checked: int
    """Lock entries whose files were listed and compared for at least one platform."""

    @property
    def ok(self) -> bool:
        """Every pinned package was checked and has a wheel for every platform."""
        return not self.gaps and not self.unchecked


@dataclass(frozen=True)
class _IndexFile:
    filename: str
    sha256: str | None
    """From the index's listing; None when the index gives no sha256."""


@dataclass(frozen=True)
class _Listing:
    """One project's page on one index."""

    files: tuple[_IndexFile, ...] = ()
    missing: bool = False
    """The index does not have the project (404/410)."""
    error: str | None = None


@dataclass(frozen=True)
class _Release:
    """The files of one pinned version on one index, parsed."""

    wheel_tags: tuple[frozenset[Tag], ...]
    has_sdist: bool


@dataclass(frozen=True)
class _EntryResult:
    gaps: tuple[WheelGap, ...] = ()
    unchecked: str | None = None
    checked: bool = False


@dataclass
class _ProjectJob:
    """Every entry of one project name (a universal lock may pin it twice, under markers),
    with the platforms each one must install on."""

    name: str
    entries: list[tuple[int, RequirementEntry, tuple[TargetPlatform, ...]]] = field(
        default_factory=list
    )


def check_wheels(
    lock: Lockfile,
    platforms: Sequence[TargetPlatform],
    python_version: str,
    index_urls: Sequence[str],
    *,
    policy: EgressPolicy,
    timeout_s: float = 30,
) -> WheelCheck:
    """Report the pinned releases of ``lock`` that have no wheel for one of ``platforms``.

    ``index_urls`` are the simple-index roots (``https://pypi.org/simple``) in the order the
    installer consults them. Entries pinned by URL, editable or not pinned to one version
    are skipped, and so is every platform an entry's marker excludes. Never raises for a
    package or an index: those become ``unchecked`` messages. The index URLs come from the
    repository, so every request (redirects too) is checked against ``policy``.
    """
    tags = {p.name: frozenset(supported_tags(p, python_version)) for p in platforms}
    environments = {p.name: marker_environment(p, python_version) for p in platforms}
    results: dict[int, _EntryResult] = {}
    jobs: dict[str, _ProjectJob] = {}
    for position, entry in enumerate(lock.requirements):
        if entry.version is None or entry.url is not None or entry.editable:
            continue
        try:
            wanted = _platforms_for(entry, platforms, environments)
        except ValueError as exc:
            results[position] = _EntryResult(unchecked=f"{_pin(entry)}: {exc}")
            continue
        if wanted:
            jobs.setdefault(entry.name, _ProjectJob(entry.name)).entries.append(
                (position, entry, wanted)
            )
    if jobs:
        with (
            httpx.Client(
                timeout=timeout_s,
                follow_redirects=True,
                headers={"Accept": ACCEPT},
                transport=GuardedTransport(policy),
            ) as client,
            ThreadPoolExecutor(max_workers=min(_MAX_WORKERS, len(jobs))) as pool,
        ):
            for found in pool.map(
                lambda job: _check_project(client, job, tuple(index_urls), tags), jobs.values()
            ):
                results.update(found)
    ordered = [results[position] for position in sorted(results)]
    return WheelCheck(
        gaps=tuple(gap for result in ordered for gap in result.gaps),
        unchecked=tuple(r.unchecked for r in ordered if r.unchecked is not None),
        checked=sum(1 for r in ordered if r.checked),
    )


def _platforms_for(
    entry: RequirementEntry,
    platforms: Sequence[TargetPlatform],
    environments: dict[str, dict[str, str]],
) -> tuple[TargetPlatform, ...]:
    """The platforms whose environment satisfies the entry's marker (ValueError: the marker
    cannot be read or evaluated)."""
    if not entry.marker:
        return tuple(platforms)
    try:
        marker = Marker(entry.marker)
        return tuple(p for p in platforms if marker.evaluate(environments[p.name]))
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName) as exc:
        raise ValueError(f"cannot evaluate the marker '{entry.marker}' ({exc})") from exc


def _check_project(
    client: httpx.Client,
    job: _ProjectJob,
    index_urls: tuple[str, ...],
    tags: dict[str, frozenset[Tag]],
) -> dict[int, _EntryResult]:
    listings: dict[str, _Listing] = {}

    def listing(index_url: str) -> _Listing:
        if index_url not in listings:
            listings[index_url] = _list_project(client, index_url, job.name)
        return listings[index_url]

    return {
        position: _check_entry(entry, wanted, index_urls, listing, tags)
        for position, entry, wanted in job.entries
    }


def _check_entry(
    entry: RequirementEntry,
    wanted: tuple[TargetPlatform, ...],
    index_urls: tuple[str, ...],
    listing: Callable[[str], _Listing],
    tags: dict[str, frozenset[Tag]],
) -> _EntryResult:
    assert entry.version is not None  # only pinned entries are checked
    try:
        version = Version(entry.version)
    except InvalidVersion:
        return _EntryResult(unchecked=f"{_pin(entry)}: the pinned version is not PEP 440")
    hashes = {h.partition(":")[2].lower() for h in entry.hashes if h.lower().startswith("sha256:")}
    hash_mismatch: list[str] = []
    for index_url in index_urls:
        listed = listing(index_url)
        where = display_url(index_url)
        if listed.error is not None:
            return _EntryResult(unchecked=f"{_pin(entry)}: {listed.error}")
        if listed.missing:
            continue
        files = [f for f in listed.files if _is_release_file(f.filename, entry.name, version)]
        if hashes:
            matching = [f for f in files if f.sha256 is None or f.sha256 in hashes]
            if files and not matching:
                hash_mismatch.append(where)
            files = matching
        if not files:
            continue
        release = _parse_release(files)
        gaps = tuple(
            WheelGap(entry.name, entry.version, p.name, release.has_sdist, where)
            for p in wanted
            if not any(wheel & tags[p.name] for wheel in release.wheel_tags)
        )
        return _EntryResult(gaps=gaps, checked=True)
    searched = ", ".join(display_url(u) for u in index_urls) or "no index given"
    if hash_mismatch:
        return _EntryResult(
            unchecked=f"{_pin(entry)}: no file on {', '.join(hash_mismatch)} has one of the "
            "lock's hashes; recompile the lock against these indexes"
        )
    return _EntryResult(unchecked=f"{_pin(entry)}: no index lists this release ({searched})")


def _is_release_file(filename: str, project: str, version: Version) -> bool:
    parsed = dist_name(filename)  # None: .egg, .exe, or a name no installer accepts either
    return parsed is not None and parsed[0] == project and Version(parsed[1]) == version


def _parse_release(files: Sequence[_IndexFile]) -> _Release:
    wheels = tuple(
        parse_wheel_filename(f.filename)[3] for f in files if f.filename.endswith(".whl")
    )
    return _Release(wheel_tags=wheels, has_sdist=len(wheels) < len(files))


def _list_project(client: httpx.Client, index_url: str, project: str) -> _Listing:
    url = f"{index_url.rstrip('/')}/{project}/"
    where = display_url(index_url)
    try:
        response = client.get(url)
    except httpx.HTTPError as exc:
        reason = display_url(str(exc)) or type(exc).__name__
        return _Listing(error=f"could not list its files on {where} ({reason})")
    if response.status_code in (404, 410):
        return _Listing(missing=True)
    if response.status_code != 200:
        return _Listing(
            error=f"{where} answered HTTP {response.status_code} for the project's page"
        )
    content_type = response.headers.get("content-type", "")
    try:
        if "json" in content_type:
            return _Listing(files=_files_from_json(response.content))
        return _Listing(files=_files_from_html(response.text))
    except ValueError as exc:
        return _Listing(error=f"cannot read the project's page on {where} ({exc})")


def _files_from_json(body: bytes) -> tuple[_IndexFile, ...]:
    """Files of a PEP 691 project page."""
    out = []
    for item in json_file_entries(body):
        hashes = item.get("hashes")
        sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
        out.append(
            _IndexFile(item["filename"], sha256.lower() if isinstance(sha256, str) else None)
        )
    return tuple(out)


def _files_from_html(page: str) -> tuple[_IndexFile, ...]:
    """Files of a PEP 503 project page: one anchor per file, the hash in the fragment."""
    out = []
    for attrs, text in html_links(page):
        parts = urllib.parse.urlsplit(attrs.get("href", ""))
        filename = text.strip() or urllib.parse.unquote(parts.path.rsplit("/", 1)[-1])
        fragment = urllib.parse.parse_qs(parts.fragment)
        sha256 = fragment.get("sha256", [None])[0]
        out.append(_IndexFile(filename, sha256.lower() if sha256 else None))
    return tuple(out)


def _pin(entry: RequirementEntry) -> str:
    return f"{entry.name}=={entry.version}"
