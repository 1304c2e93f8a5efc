"""A PEP 503 "simple" package index on 127.0.0.1, serving wheels built by ``wheels.py``.

Pages are computed from the wheels on disk at request time, so ``publish``, ``republish`` and
``yank_file`` take effect on the very next request.  Every response says
``Cache-Control: no-cache, max-age=0`` so pip and uv never reuse a stale page.

Layout::

    /simple/                      project list
    /simple/<normalized>/         files of one project (sha256 fragment, data-requires-python,
                                  PEP 658/714 core-metadata hash)
    /files/<wheel>                the wheel
    /files/<wheel>.metadata       its METADATA (PEP 658)
"""

from __future__ import annotations

import email.parser
import hashlib
import html
import os
import socket
import sys
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from tests.support.wheels import (
    Dist,
    build_wheel,
    normalize_version,
    parse_wheel_filename,
    read_metadata,
    wheel_filename,
)

_STRIPPED_ENV_PREFIXES = ("PIP_", "UV_")
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "ftp_proxy")
SIMPLE_PREFIX = "/simple"
FILES_PREFIX = "/files/"
METADATA_SUFFIX = ".metadata"
NO_CACHE = "no-cache, max-age=0"


@dataclass(frozen=True)
class _IndexedFile:
    filename: str
    version: str
    sha256: str
    requires_python: str | None
    metadata_sha256: str


def _version_key(version: str) -> tuple[int, Version | str]:
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


class PackageIndex:
    """The wheels under ``root``, served over HTTP at ``url``."""

    def __init__(self, root: Path, *, serve_metadata: bool = True) -> None:
        self.root = root
        self.serve_metadata = serve_metadata
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._dists: dict[tuple[str, str], Dist] = {}
        self._server = _IndexServer(("127.0.0.1", 0), _IndexHandler, self)
        port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{port}"
        self.url = f"{self.base_url}{SIMPLE_PREFIX}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"package-index-{port}",
            daemon=True,
        )
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
    ) -> Path:
        """Build a wheel for ``name==version`` and put it on the index; return its path."""
        dist = Dist(
            name=name,
            version=version,
            requires=tuple(requires),
            requires_python=requires_python,
            extras=None if extras is None else {k: tuple(v) for k, v in extras.items()},
        )
        with self._lock:
            self._dists[self._key(name, version)] = dist
            return build_wheel(dist, self.root, salt=salt)

    def republish(self, name: str, version: str, *, salt: str) -> Path:
        """Replace a published wheel by one with the same name and metadata but other bytes."""
        with self._lock:
            try:
                dist = self._dists[self._key(name, version)]
            except KeyError:
                raise KeyError(f"{name}=={version} was never published on this index") from None
            return build_wheel(dist, self.root, salt=salt)

    def yank_file(self, name: str, version: str) -> None:
        """Remove ``name==version`` from the index (the wheel is deleted)."""
        with self._lock:
            self._dists.pop(self._key(name, version), None)
            self.wheel_path(name, version).unlink()

    def wheel_path(self, name: str, version: str) -> Path:
        return self.root / wheel_filename(name, version)

    def project_url(self, name: str) -> str:
        return f"{self.url}/{canonicalize_name(name)}/"

    def file_url(self, filename: str) -> str:
        return f"{self.base_url}{FILES_PREFIX}{urllib.parse.quote(filename)}"

    @staticmethod
    def _key(name: str, version: str) -> tuple[str, str]:
        return canonicalize_name(name), normalize_version(version)

    # -- views (called from the server threads) -------------------------------------------

    def projects(self) -> list[str]:
        names = set()
        for path in self.root.glob("*.whl"):
            parsed = parse_wheel_filename(path.name)
            if parsed is not None:
                names.add(parsed[0])
        return sorted(names)

    def files_of(self, project: str) -> list[_IndexedFile]:
        found = []
        for path in self.root.glob("*.whl"):
            parsed = parse_wheel_filename(path.name)
            if parsed is None or parsed[0] != project:
                continue
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # yanked while listing
                continue
            metadata = read_metadata(path)
            message = email.parser.BytesParser().parsebytes(metadata, headersonly=True)
            found.append(
                _IndexedFile(
                    filename=path.name,
                    version=parsed[1],
                    sha256=hashlib.sha256(data).hexdigest(),
                    requires_python=message.get("Requires-Python"),
                    metadata_sha256=hashlib.sha256(metadata).hexdigest(),
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
            if self.serve_metadata:
                attrs.append(f'data-dist-info-metadata="sha256={f.metadata_sha256}"')
                attrs.append(f'data-core-metadata="sha256={f.metadata_sha256}"')
            links.append(f"    <a {' '.join(attrs)}>{html.escape(f.filename)}</a><br>\n")
        return _page(f"Links for {project}", "".join(links))


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="1.0">\n'
        f"    <title>{html.escape(title)}</title>\n  </head>\n  <body>\n"
        f"    <h1>{html.escape(title)}</h1>\n{body}  </body>\n</html>\n"
    )


class _IndexServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # the default (5) drops connections when uv opens many at once

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        index: PackageIndex,
    ) -> None:
        self.index = index
        super().__init__(address, handler)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Clients (pip, uv) drop keep-alive connections whenever they like; nothing to report.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class _IndexHandler(BaseHTTPRequestHandler):
    server: _IndexServer
    protocol_version = "HTTP/1.1"
    server_version = "TestPackageIndex/1.0"
    timeout = 30
    disable_nagle_algorithm = True  # headers and body go out as separate small writes

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _dispatch(self, *, send_body: bool) -> None:
        index = self.server.index
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)

        if path == SIMPLE_PREFIX:
            self._redirect(f"{SIMPLE_PREFIX}/", send_body)
        elif path == f"{SIMPLE_PREFIX}/":
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
        page = self.server.index.project_page(canonical)
        if page is None:
            self._not_found(send_body)
        else:
            self._send_html(page, send_body)

    def _file(self, filename: str, send_body: bool) -> None:
        index = self.server.index
        if "/" in filename or filename.startswith("."):
            self._not_found(send_body)
            return
        want_metadata = filename.endswith(METADATA_SUFFIX)
        wheel_name = filename[: -len(METADATA_SUFFIX)] if want_metadata else filename
        if parse_wheel_filename(wheel_name) is None or (want_metadata and not index.serve_metadata):
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
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def start_index(root: Path, *, serve_metadata: bool = True) -> PackageIndex:
    """Serve the wheels under ``root`` on an ephemeral port of 127.0.0.1 (daemon thread)."""
    index = PackageIndex(root, serve_metadata=serve_metadata)
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
