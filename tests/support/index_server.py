"""A PEP 503 "simple" package index on 127.0.0.1, serving wheels built by ``wheels.py``.

Pages are computed from the files on disk at request time, so ``publish``, ``republish`` and
``yank_file`` take effect on the very next request.  Every response says
``Cache-Control: no-cache, max-age=0`` so pip and uv never reuse a stale page.

A release is one pure-Python wheel by default; ``publish(..., wheel_tags=..., sdist=True)``
gives platform wheels and a source distribution instead (or as well).  With
``serve_json=True`` the index also answers PEP 691 JSON to clients that ask for it in
``Accept`` (uv and pip do); by default it serves the PEP 503 HTML pages only.

JSON pages carry a PEP 700 ``upload-time`` per file: the file's modification time unless
``set_upload_time`` chose another.  ``mark_yanked`` yanks a release the PEP 592 way (JSON
``yanked``, HTML ``data-yanked``; its files stay downloadable), unlike ``yank_file``, which
deletes them.  With ``etags=True`` project pages carry an ``ETag`` and ``Last-Modified`` and a
matching ``If-None-Match`` / ``If-Modified-Since`` gets a 304; ``page_requests`` counts the
project-page requests and ``not_modified`` the 304 answers.

Layout::

    /simple/                      project list
    /simple/<normalized>/         files of one project (sha256 fragment, data-requires-python,
                                  PEP 658/714 core-metadata hash for wheels)
    /files/<wheel or sdist>       the file
    /files/<wheel>.metadata       its METADATA (PEP 658)
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import json
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tests.support.served import LocalServer, QuietHandler, QuietServer
from tests.support.wheels import (
    SDIST_SUFFIX,
    WHEEL_TAG,
    Dist,
    build_sdist,
    build_wheel,
    normalize_version,
    parse_dist_filename,
    read_metadata,
    read_sdist_metadata,
    sdist_filename,
    wheel_filename,
)

_STRIPPED_ENV_PREFIXES = ("PIP_", "UV_")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
SIMPLE_PREFIX = "/simple"
FILES_PREFIX = "/files/"
METADATA_SUFFIX = ".metadata"
NO_CACHE = "no-cache, max-age=0"
JSON_CONTENT_TYPE = "application/vnd.pypi.simple.v1+json"
_HTML_CONTENT_TYPES = ("application/vnd.pypi.simple.v1+html", "text/html")


@dataclass(frozen=True)
class _IndexedFile:
    filename: str
    version: str
    sha256: str
    requires_python: str | None
    metadata_sha256: str | None
    """PEP 658 metadata hash; None for source distributions (no metadata file served)."""
    size: int
    upload_time: datetime
    yanked: str | None


@dataclass(frozen=True)
class _Release:
    dist: Dist
    wheel_tags: tuple[str, ...]
    sdist: bool


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


class PackageIndex(LocalServer):
    """The wheels under ``root``, served over HTTP at ``url``."""

    def __init__(
        self,
        root: Path,
        *,
        serve_metadata: bool = True,
        serve_json: bool = False,
        etags: bool = False,
    ) -> None:
        self.root = root
        self.serve_metadata = serve_metadata
        self.serve_json = serve_json
        self.etags = etags
        self.page_requests = 0
        self.not_modified = 0
        self._upload_times: dict[tuple[str, str], datetime] = {}
        self._yanked: dict[tuple[str, str], str] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._releases: dict[tuple[str, str], _Release] = {}
        self._server = _IndexServer(("127.0.0.1", 0), _IndexHandler, self)
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}{SIMPLE_PREFIX}"
        super().__init__(self._server, "package-index")

    # -- content ---------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        version: str,
        requires: Sequence[str] = (),
        *,
        requires_python: str | None = None,
        extras: Mapping[str, Sequence[str]] | None = None,
        salt: str = "",
        wheel_tags: Sequence[str] = (WHEEL_TAG,),
        sdist: bool = False,
    ) -> Path:
        """Build the files of ``name==version`` and put them on the index.

        One wheel per entry of ``wheel_tags`` (each may be compressed:
        ``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64``) and, with ``sdist``, a
        source distribution. Returns the first wheel's path (the sdist's when there is no
        wheel); ``release_paths`` lists them all.
        """
        if not wheel_tags and not sdist:
            raise ValueError(f"{name}=={version}: a release needs a wheel tag or an sdist")
        dist = Dist(
            name=name,
            version=version,
            requires=tuple(requires),
            requires_python=requires_python,
            extras=None if extras is None else {k: tuple(v) for k, v in extras.items()},
        )
        release = _Release(dist, tuple(wheel_tags), sdist)
        with self._lock:
            self._releases[self._key(name, version)] = release
            return self._build(release, salt)[0]

    def republish(self, name: str, version: str, *, salt: str) -> Path:
        """Replace a published release by files with the same names and metadata but other
        bytes; returns the first one's path, as ``publish`` does."""
        with self._lock:
            try:
                release = self._releases[self._key(name, version)]
            except KeyError:
                raise KeyError(f"{name}=={version} was never published on this index") from None
            return self._build(release, salt)[0]

    def yank_file(self, name: str, version: str) -> None:
        """Remove ``name==version`` from the index (its files are deleted)."""
        with self._lock:
            release = self._releases.pop(self._key(name, version), None)
            paths = (
                self._paths(release) if release is not None else (self.wheel_path(name, version),)
            )
            for path in paths:
                path.unlink()

    def set_upload_time(self, name: str, version: str, when: datetime) -> None:
        """Serve ``when`` as the upload time of every file of ``name==version``."""
        with self._lock:
            self._upload_times[self._key(name, version)] = when.astimezone(UTC)

    def mark_yanked(self, name: str, version: str, reason: str = "") -> None:
        """Yank ``name==version`` (PEP 592): listed as yanked, files still served."""
        with self._lock:
            self._yanked[self._key(name, version)] = reason

    def count(self, *, page: bool = False, not_modified: bool = False) -> None:
        """Count a project-page request / a 304 answer (server threads call this)."""
        with self._lock:
            self.page_requests += page
            self.not_modified += not_modified

    def wheel_path(self, name: str, version: str, tag: str = WHEEL_TAG) -> Path:
        return self.root / wheel_filename(name, version, tag)

    def sdist_path(self, name: str, version: str) -> Path:
        return self.root / sdist_filename(name, version)

    def release_paths(self, name: str, version: str) -> tuple[Path, ...]:
        """Every file of a published release: its wheels in ``wheel_tags`` order, then the
        sdist."""
        with self._lock:
            try:
                release = self._releases[self._key(name, version)]
            except KeyError:
                raise KeyError(f"{name}=={version} was never published on this index") from None
            return self._paths(release)

    def _paths(self, release: _Release) -> tuple[Path, ...]:
        name, version = release.dist.name, release.dist.version
        wheels = tuple(self.wheel_path(name, version, tag) for tag in release.wheel_tags)
        return wheels + ((self.sdist_path(name, version),) if release.sdist else ())

    def _build(self, release: _Release, salt: str) -> tuple[Path, ...]:
        built = [build_wheel(release.dist, self.root, salt=salt, tag=t) for t in release.wheel_tags]
        if release.sdist:
            built.append(build_sdist(release.dist, self.root, salt=salt))
        return tuple(built)

    def project_url(self, name: str) -> str:
        return f"{self.url}/{canonicalize_name(name)}/"

    def file_url(self, filename: str) -> str:
        return f"{self.base_url}{FILES_PREFIX}{urllib.parse.quote(filename)}"

    @staticmethod
    def _key(name: str, version: str) -> tuple[str, str]:
        return canonicalize_name(name), normalize_version(version)

    # -- views (called from the server threads) -------------------------------------------

    def dist_files(self) -> list[Path]:
        return [*self.root.glob("*.whl"), *self.root.glob(f"*{SDIST_SUFFIX}")]

    def projects(self) -> list[str]:
        names = set()
        for path in self.dist_files():
            parsed = parse_dist_filename(path.name)
            if parsed is not None:
                names.add(parsed[0])
        return sorted(names)

    def files_of(self, project: str) -> list[_IndexedFile]:
        found = []
        for path in self.dist_files():
            parsed = parse_dist_filename(path.name)
            if parsed is None or parsed[0] != project:
                continue
            is_sdist = path.name.endswith(SDIST_SUFFIX)
            try:
                data = path.read_bytes()
                metadata = read_sdist_metadata(path) if is_sdist else read_metadata(path)
            except FileNotFoundError:  # yanked while listing
                continue
            message = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
            key = self._key(project, parsed[1])
            mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            found.append(
                _IndexedFile(
                    filename=path.name,
                    version=parsed[1],
                    sha256=hashlib.sha256(data).hexdigest(),
                    requires_python=message.get("Requires-Python"),
                    metadata_sha256=None if is_sdist else hashlib.sha256(metadata).hexdigest(),
                    size=len(data),
                    upload_time=self._upload_times.get(key, mtime),
                    yanked=self._yanked.get(key),
                )
            )
        found.sort(key=lambda f: (_version_key(f.version), f.filename))
        return found

    def root_page(self) -> str:
        links = "".join(
            f'    <a href="{html.escape(name)}/">{html.escape(name)}</a><br>\n'
            for name in self.projects()
        )
        return _page("Simple index", links)

    def project_page(self, project: str) -> str | None:
        files = self.files_of(project)
        if not files:
            return None
        links = []
        for f in files:
            href = f"../../files/{urllib.parse.quote(f.filename)}#sha256={f.sha256}"
            attrs = [f'href="{html.escape(href)}"']
            if f.requires_python:
                attrs.append(f'data-requires-python="{html.escape(f.requires_python)}"')
            if self.serve_metadata and f.metadata_sha256 is not None:
                attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
                attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
            if f.yanked is not None:
                attrs.append(f'data-yanked="{html.escape(f.yanked)}"')
            links.append(f"    <a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>\n")
        return _page(f"Links for {project}", "".join(links))

    def root_json(self) -> bytes:
        """The project list in the PEP 691 JSON form."""
        body = {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in self.projects()]}
        return json.dumps(body, indent=1).encode()

    def project_json(self, project: str) -> bytes | None:
        """The files of one project in the PEP 691 JSON form (API 1.1: sizes and versions)."""
        files = self.files_of(project)
        if not files:
            return None
        entries: list[dict[str, object]] = []
        for f in files:
            entry: dict[str, object] = {
                "filename": f.filename,
                "url": f"../../files/{urllib.parse.quote(f.filename)}",
                "hashes": {"sha256": f.sha256},
                "size": f.size,
                "upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            }
            if f.yanked is not None:
                entry["yanked"] = f.yanked or True
            if f.requires_python:
                entry["requires-python"] = f.requires_python
            if self.serve_metadata and f.metadata_sha256 is not None:
                entry["core-metadata"] = {"sha256": f.metadata_sha256}
                entry["dist-info-metadata"] = {"sha256": f.metadata_sha256}
            entries.append(entry)
        versions = sorted({f.version for f in files}, key=_version_key)
        body = {
            "meta": {"api-version": "1.1"},
            "name": project,
            "versions": versions,
            "files": entries,
        }
        return json.dumps(body, indent=1).encode()

    def wants_json(self, accept: str | None) -> bool:
        """PEP 691 content negotiation: JSON when this index serves it and the client's
        ``Accept`` rates it at least as high as every HTML form."""
        if not self.serve_json or not accept:
            return False
        quality = _accept_qualities(accept)
        json_q = quality.get(JSON_CONTENT_TYPE, 0.0)
        html_q = max(quality.get(t, 0.0) for t in _HTML_CONTENT_TYPES)
        return json_q > 0 and json_q >= html_q


def _accept_qualities(accept: str) -> dict[str, float]:
    """Media type -> q of an ``Accept`` header (``*/*`` is not expanded)."""
    out: dict[str, float] = {}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            out[media.lower()] = q
    return out


def _unchanged(
    if_none_match: str | None, if_modified_since: str | None, etag: str, modified: float
) -> bool:
    """RFC 9110: If-None-Match decides when present, else If-Modified-Since."""
    if if_none_match is not None:
        return etag in (tag.strip() for tag in if_none_match.split(","))
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return int(modified) <= since.timestamp()


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n"
    )


class _IndexServer(QuietServer):
    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        index: PackageIndex,
    ) -> None:
        self.index = index
        super().__init__(address, handler)


class _IndexHandler(QuietHandler):
    server: _IndexServer
    server_version = "TestPackageIndex/1.0"

    def dispatch(self, *, send_body: bool) -> None:
        index = self.server.index
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

        if path == SIMPLE_PREFIX:
            self._redirect(f"{SIMPLE_PREFIX}/", send_body)
        elif path == f"{SIMPLE_PREFIX}/":
            if index.wants_json(self.headers.get("Accept")):
                self._send_json(index.root_json(), send_body)
            else:
                self._send_html(index.root_page(), send_body)
        elif path.startswith(f"{SIMPLE_PREFIX}/"):
            self._project(path[len(SIMPLE_PREFIX) + 1 :], send_body)
        elif path.startswith(FILES_PREFIX):
            self._file(path[len(FILES_PREFIX) :], send_body)
        else:
            self._not_found(send_body)

    def _project(self, rest: str, send_body: bool) -> None:
        name, slash, tail = rest.partition("/")
        if not name or tail:
            self._not_found(send_body)
            return
        canonical = canonicalize_name(name)
        if not slash or name != canonical:
            self._redirect(f"{SIMPLE_PREFIX}/{canonical}/", send_body)
            return
        index = self.server.index
        index.count(page=True)
        if index.wants_json(self.headers.get("Accept")):
            body = index.project_json(canonical)
            content_type = JSON_CONTENT_TYPE
        else:
            page = index.project_page(canonical)
            body = None if page is None else page.encode()
            content_type = "text/html; charset=utf-8"
        if body is None:
            self._not_found(send_body)
        elif index.etags:
            self._send_conditional(body, content_type, send_body)
        else:
            self._send(HTTPStatus.OK, content_type, body, send_body)

    def _send_conditional(self, body: bytes, content_type: str, send_body: bool) -> None:
        """200 with an ETag and Last-Modified (the newest file's upload), or 304 when the
        client's validators match."""
        index = self.server.index
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        modified = max((p.stat().st_mtime for p in index.dist_files() if p.exists()), default=0.0)
        last_modified = format_datetime(datetime.fromtimestamp(int(modified), UTC), usegmt=True)
        validators = {"ETag": etag, "Last-Modified": last_modified}
        if _unchanged(
            self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since"), etag, modified
        ):
            index.count(not_modified=True)
            self._send(HTTPStatus.NOT_MODIFIED, content_type, b"", False, validators)
            return
        self._send(HTTPStatus.OK, content_type, body, send_body, validators)

    def _file(self, filename: str, send_body: bool) -> None:
        index = self.server.index
        if "/" in filename or filename.startswith("."):
            self._not_found(send_body)
            return
        want_metadata = filename.endswith(METADATA_SUFFIX)
        wheel_name = filename[: -len(METADATA_SUFFIX)] if want_metadata else filename
        if parse_dist_filename(wheel_name) is None or (
            want_metadata and (not index.serve_metadata or not wheel_name.endswith(".whl"))
        ):
            self._not_found(send_body)
            return
        try:
            path = index.root / wheel_name
            data = read_metadata(path) if want_metadata else path.read_bytes()
        except FileNotFoundError:
            self._not_found(send_body)
            return
        self._send(HTTPStatus.OK, "application/octet-stream", data, send_body)

    # -- responses -------------------------------------------------------------------------

    def _send_html(self, page: str, send_body: bool) -> None:
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", page.encode(), send_body)

    def _send_json(self, body: bytes, send_body: bool) -> None:
        self._send(HTTPStatus.OK, JSON_CONTENT_TYPE, body, send_body)

    def _not_found(self, send_body: bool) -> None:
        self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", b"Not Found\n", send_body)

    def _redirect(self, location: str, send_body: bool) -> None:
        self._send(
            HTTPStatus.MOVED_PERMANENTLY,
            "text/plain; charset=utf-8",
            f"Moved to {location}\n".encode(),
            send_body,
            extra_headers={"Location": location},
        )

    def _send(
        self,
        status: HTTPStatus,
        content_type: str,
        body: bytes,
        send_body: bool,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", NO_CACHE)
        if self.server.index.serve_json:
            self.send_header("Vary", "Accept")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def start_index(
    root: Path, *, serve_metadata: bool = True, serve_json: bool = False, etags: bool = False
) -> PackageIndex:
    """Serve the files under ``root`` on an ephemeral port of 127.0.0.1 (daemon thread)."""
    index = PackageIndex(root, serve_metadata=serve_metadata, serve_json=serve_json, etags=etags)
    index.start()
    return index


def unused_local_url() -> str:
    """An ``http://127.0.0.1:<port>/simple`` URL on which nothing listens.

    The port comes from binding a socket to port 0 and closing it again: a connection to it is
    refused (unless another process grabs the port meanwhile, which is very unlikely).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{SIMPLE_PREFIX}"


def isolated_env(cache_root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: ``os.environ``) in which pip, pip-compile and uv see no
    machine configuration: no config files, no extra indexes, find-links or constraints, no
    proxies, and caches under ``cache_root``.

    The directory of the running interpreter goes first on ``PATH`` so that ``pip-compile``,
    ``uv`` and ``python`` resolve to the test environment's tools.
    """
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if not key.upper().startswith(_STRIPPED_ENV_PREFIXES) and key.lower() not in _PROXY_VARS
    }
    env.update(
        {
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_NO_INPUT": "1",
            "PIP_CACHE_DIR": str(cache_root / "pip"),
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(cache_root / "uv"),
            "UV_PYTHON_DOWNLOADS": "never",
            "XDG_CACHE_HOME": str(cache_root / "xdg"),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    return env
