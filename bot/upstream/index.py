"""A client for a package index's project pages: which files each release has, when they
were uploaded and whether they are yanked.

PEP 691 JSON is asked for first (it carries PEP 700 ``upload-time``); an index that only
speaks PEP 503 HTML answers with its page, which has ``data-yanked`` but no upload times.
Each page's ``ETag`` / ``Last-Modified`` is remembered (on disk when a cache directory is
given) so the next lookup is a conditional request, and an unchanged page costs a 304. A
client made with ``fresh_for_s`` also takes a copy younger than that as it is, with no request
at all (as PyPI's own ``max-age`` of ten minutes allows, and what an index or proxy that sends
no validators needs for a second run not to download every page again); ``refresh``, which the
release watch uses, always asks.

The index URL may come from a repository's configuration, so every request and every
redirect passes the egress policy the sandbox applies (no private, loopback or link-local
address unless the operator allows the host).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bot.errors import LockwardenError
from bot.paths import write_text_inside
from bot.sandbox.egress import EgressPolicy, url_refusal

if TYPE_CHECKING:
    import httpx

ACCEPT = (
    "application/vnd.pypi.simple.v1+json, "
    "application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1"
)
PYPI_SIMPLE = "https://pypi.org/simple"
"""The index a lock or config that names none resolves from."""
_MAX_REDIRECTS = 5
_CACHE_FORMAT = 2
_URL_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


class IndexLookupError(LockwardenError):
    """A project page could not be fetched or read; the message names index and package."""

    code = "index-lookup"

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing
        """True when the index answered that it has no such project (404/410)."""


@dataclass(frozen=True)
class ReleaseFile:
    filename: str
    version: str
    """Normalized (``packaging.Version`` string form) when it is PEP 440."""
    upload_time: datetime | None
    """PEP 700 upload time (UTC); None on HTML pages and indexes that do not give it."""
    yanked: str | None
    """None: not yanked; the reason otherwise ("" when the index gives none)."""


@dataclass(frozen=True)
class ProjectPage:
    name: str
    """Canonical (PEP 503) name."""
    files: tuple[ReleaseFile, ...]
    etag: str | None
    last_modified: str | None
    fetched_at: float = 0.0
    """When the page was fetched or last revalidated (``time.time()``)."""

    def versions(self) -> tuple[str, ...]:
        """Every PEP 440 version with a file, oldest first."""
        found: dict[str, Version] = {}
        for f in self.files:
            with contextlib.suppress(InvalidVersion):
                found.setdefault(f.version, Version(f.version))
        return tuple(sorted(found, key=found.__getitem__))

    def uploaded(self, version: str) -> datetime | None:
        """The earliest upload time of the version's files (None when none has one)."""
        times = [f.upload_time for f in self._files_of(version) if f.upload_time is not None]
        return min(times) if times else None

    def yanked(self, version: str) -> str | None:
        """The reason when every file of ``version`` is yanked ("" without a reason); None
        when one file is not (an installer still picks that one) or the version is unknown."""
        files = self._files_of(version)
        if not files or any(f.yanked is None for f in files):
            return None
        return next((f.yanked for f in files if f.yanked), "")

    def _files_of(self, version: str) -> list[ReleaseFile]:
        return self._by_version.get(_version_key(normalize_version(version)), [])

    @functools.cached_property
    def _by_version(self) -> dict[str, list[ReleaseFile]]:
        # Indexed once per page: numpy's lists thousands of files, asked about many times.
        out: dict[str, list[ReleaseFile]] = {}
        for f in self.files:
            out.setdefault(_version_key(f.version), []).append(f)
        return out


_TRAILING_ZEROS = re.compile(r"^((?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*?)(?:\.0+)+(?=$|[^0-9.]|\.[a-z])")


def _version_key(version: str) -> str:
    """What a normalized version compares by: PEP 440 equality (``1.0 == 1.0.0``) is string
    equality once trailing zero release segments are dropped. String work, not a parse: a
    page such as numpy's lists thousands of files."""
    return _TRAILING_ZEROS.sub(r"\1", version)


def same_version(a: str, b: str) -> bool:
    """PEP 440 equality (``1.0 == 1.0.0``); plain string equality for other strings."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def normalize_version(version: str) -> str:
    """``version`` in its normal PEP 440 form, or unchanged when it is not PEP 440."""
    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def display_url(text: str) -> str:
    """``text`` with credentials in URLs (``https://user:token@host``) removed."""
    return _URL_USERINFO.sub("***@", text)


class SimpleIndex:
    """Project pages of one index (its "simple" root URL), with conditional requests."""

    def __init__(
        self,
        base_url: str,
        *,
        cache_dir: Path | None,
        policy: EgressPolicy,
        client: httpx.Client | None = None,
        timeout_s: float = 20,
        fresh_for_s: float = 0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.where = display_url(self.base_url)
        self._policy = policy
        self._cache_dir = cache_dir / _url_key(self.base_url) if cache_dir is not None else None
        self._own_client = client is None
        self._given_client = client
        self._timeout_s = timeout_s
        self._fresh_for_s = fresh_for_s
        self._memory: dict[str, ProjectPage] = {}
        self._lock = threading.Lock()
        self.requests = 0
        self.not_modified = 0

    @functools.cached_property
    def _client(self) -> httpx.Client:
        # Made on the first request: a run whose pages are all fresh in the cache needs no
        # client, nor httpx's import.
        import httpx

        from bot.sandbox.transport import GuardedTransport

        return self._given_client or httpx.Client(
            timeout=self._timeout_s,
            follow_redirects=False,
            transport=GuardedTransport(self._policy),
        )

    def close(self) -> None:
        if self._own_client and "_client" in self.__dict__:
            self._client.close()

    def __enter__(self) -> SimpleIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def project(self, name: str) -> ProjectPage:
        """The project's page; a conditional request when a copy is cached (a 304 returns
        the copy). Raises ``IndexLookupError`` naming the index and the package."""
        cached = self._cached(canonicalize_name(name))
        if cached is not None and time.time() - cached.fetched_at < self._fresh_for_s:
            return cached
        fresh = self._fetch(canonicalize_name(name), cached)
        return cached if fresh is None and cached is not None else _required(fresh)

    def refresh(self, name: str) -> ProjectPage | None:
        """None when the page is unchanged since the cached copy (304), else the new page."""
        canonical = canonicalize_name(name)
        return self._fetch(canonical, self._cached(canonical))

    # -- fetching -------------------------------------------------------------------------

    def _fetch(self, name: str, cached: ProjectPage | None) -> ProjectPage | None:
        headers = {"Accept": ACCEPT}
        if cached is not None and cached.etag:
            headers["If-None-Match"] = cached.etag
        if cached is not None and cached.last_modified:
            headers["If-Modified-Since"] = cached.last_modified
        response = self._get(f"{self.base_url}/{name}/", headers, name)
        if response.status_code == 304 and cached is not None:
            with self._lock:
                self.not_modified += 1
            if self._fresh_for_s:  # the copy counts as fresh again for a while
                self._store(dataclasses.replace(cached, fetched_at=time.time()))
            return None
        if response.status_code in (404, 410):
            raise IndexLookupError(
                f"{name}: {self.where} has no such project (HTTP {response.status_code}); "
                "check the package name and the index URL",
                missing=True,
            )
        if response.status_code != 200:
            raise IndexLookupError(
                f"{name}: {self.where} answered HTTP {response.status_code} for the project's "
                "page; retry later or check the index URL"
            )
        page = self._parse(name, response)
        self._store(page)
        return page

    def _get(self, url: str, headers: dict[str, str], name: str) -> httpx.Response:
        """GET ``url``, following redirects by hand so each hop passes the egress policy
        whichever client is used."""
        import httpx  # only once a page must be asked for (see ``_client``)

        for _ in range(_MAX_REDIRECTS + 1):
            refusal = url_refusal(self._policy, url)
            if refusal is not None:
                raise IndexLookupError(
                    f"{name}: refused to contact {display_url(url)}: {refusal}; an operator "
                    "can allow a private index with LOCKWARDEN_ALLOWED_PRIVATE_HOSTS"
                )
            with self._lock:
                self.requests += 1
            try:
                response = self._client.get(url, headers=headers, follow_redirects=False)
            except httpx.HTTPError as exc:
                reason = display_url(str(exc)) or type(exc).__name__
                raise IndexLookupError(
                    f"{name}: could not fetch the project's page from {self.where} ({reason}); "
                    "retry later or check the index URL"
                ) from exc
            if not response.has_redirect_location:
                return response
            url = urllib.parse.urljoin(url, response.headers.get("location", ""))
        raise IndexLookupError(f"{name}: {self.where} redirected more than {_MAX_REDIRECTS} times")

    def _parse(self, name: str, response: httpx.Response) -> ProjectPage:
        content_type = response.headers.get("content-type", "")
        try:
            if "json" in content_type:
                files = files_from_json(response.content)
            else:
                files = files_from_html(response.text)
        except ValueError as exc:
            raise IndexLookupError(
                f"{name}: cannot read the project's page on {self.where} ({exc})"
            ) from exc
        return ProjectPage(
            name=name,
            files=tuple(f for f in files if (dist_name(f.filename) or ("",))[0] == name),
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            fetched_at=time.time(),
        )

    # -- cache ----------------------------------------------------------------------------

    def _cached(self, name: str) -> ProjectPage | None:
        with self._lock:
            page = self._memory.get(name)
        if page is not None or self._cache_dir is None:
            return page
        try:
            data = json.loads((self._cache_dir / f"{name}.json").read_text(encoding="utf-8"))
            page = _page_from_cache(data)
        except (OSError, ValueError, KeyError, TypeError):
            return None  # no copy, or an unreadable one: fetch afresh
        if page.name != name:
            return None
        with self._lock:
            self._memory[name] = page
        return page

    def _store(self, page: ProjectPage) -> None:
        with self._lock:
            self._memory[page.name] = page
        if self._cache_dir is None:
            return
        if page.etag is None and page.last_modified is None and not self._fresh_for_s:
            return  # nothing to revalidate with, nor to keep for a while: never used
        # A cache that cannot be written only costs time.
        with contextlib.suppress(OSError, LockwardenError):
            self._cache_dir.mkdir(parents=True, exist_ok=True)
            write_text_inside(
                self._cache_dir, f"{page.name}.json", _page_to_cache(page), source="page cache"
            )


def _required(page: ProjectPage | None) -> ProjectPage:
    assert page is not None  # a 304 is only possible with a cached copy
    return page


def _url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:24]


def _page_to_cache(page: ProjectPage) -> str:
    files = [
        {
            "filename": f.filename,
            "version": f.version,
            "upload_time": f.upload_time.isoformat() if f.upload_time else None,
            "yanked": f.yanked,
        }
        for f in page.files
    ]
    data = {
        "format": _CACHE_FORMAT,
        "name": page.name,
        "etag": page.etag,
        "last_modified": page.last_modified,
        "fetched_at": page.fetched_at,
        "files": files,
    }
    return json.dumps(data, indent=0)


def _page_from_cache(data: dict[str, Any]) -> ProjectPage:
    if data["format"] != _CACHE_FORMAT:
        raise ValueError("another cache format")
    files = tuple(
        ReleaseFile(
            filename=str(f["filename"]),
            version=str(f["version"]),
            upload_time=_parse_time(f["upload_time"]),
            yanked=f["yanked"] if isinstance(f["yanked"], str) else None,
        )
        for f in data["files"]
    )
    fetched_at = float(data["fetched_at"])
    return ProjectPage(str(data["name"]), files, data["etag"], data["last_modified"], fetched_at)


# -- page formats -------------------------------------------------------------------------


def json_file_entries(body: bytes) -> list[dict[str, Any]]:
    """The file entries of a PEP 691 project page that have a file name (ValueError: the
    page is not such a page)."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"invalid JSON: {exc}") from exc
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list):
        raise ValueError("the JSON page has no 'files' list")
    return [i for i in files if isinstance(i, dict) and isinstance(i.get("filename"), str)]


def html_links(page: str) -> list[tuple[dict[str, str], str]]:
    """The anchors of a PEP 503 page: (attributes, text) each."""
    parser = _LinkParser()
    parser.feed(page)
    parser.close()
    return parser.links


def files_from_json(body: bytes) -> tuple[ReleaseFile, ...]:
    """The files of a PEP 691 project page (with PEP 700 upload times when given)."""
    out = []
    for item in json_file_entries(body):
        time = item.get("upload-time")
        out.append(
            ReleaseFile(
                filename=item["filename"],
                version=_version_of(item["filename"]),
                upload_time=_parse_time(time) if isinstance(time, str) else None,
                yanked=_yank_reason(item.get("yanked")),
            )
        )
    return tuple(out)


def files_from_html(page: str) -> tuple[ReleaseFile, ...]:
    """The files of a PEP 503 project page (PEP 592 ``data-yanked``; no upload times)."""
    out = []
    for attrs, text in html_links(page):
        path = urllib.parse.urlsplit(attrs.get("href") or "").path
        filename = text.strip() or urllib.parse.unquote(path.rsplit("/", 1)[-1])
        yanked = attrs.get("data-yanked")
        out.append(
            ReleaseFile(
                filename=filename,
                version=_version_of(filename),
                upload_time=None,
                yanked=yanked,
            )
        )
    return tuple(out)


class _LinkParser(HTMLParser):
    """Anchors with all their attributes (a bare ``data-yanked`` has the value "")."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str], str]] = []
        self._attrs: dict[str, str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._attrs = {key: value or "" for key, value in attrs}
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._attrs is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._attrs is not None:
            self.links.append((self._attrs, "".join(self._text)))
            self._attrs = None


def _yank_reason(value: object) -> str | None:
    """PEP 691 ``yanked``: false/absent, true, or the reason as a string."""
    if isinstance(value, str):
        return value
    return "" if value is True else None


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None  # a time nobody can read is treated as unknown, not as "now"
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@functools.lru_cache(maxsize=65536)
def dist_name(filename: str) -> tuple[str, str] | None:
    """(canonical name, normalized version) of a wheel or sdist; None for other files."""
    try:
        if filename.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(filename)
        else:
            name, version = parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None  # .egg, .exe, or a name no installer accepts either
    return canonicalize_name(name), str(version)


def _version_of(filename: str) -> str:
    parsed = dist_name(filename)
    return parsed[1] if parsed is not None else ""
