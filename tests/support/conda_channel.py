"""A tiny conda channel built at test time, served on 127.0.0.1 and readable as ``file://``.

Packages are real conda archives: ``.tar.bz2`` (a bzip2 tar) or ``.conda`` (a stored zip of
two zstandard tars, written with raw zstd blocks, so no compressor library is needed). Each
holds ``info/index.json``, ``info/paths.json`` and one small file. Bytes are deterministic:
fixed modification times, owners and order, so a package published twice hashes the same
unless ``salt`` changes its payload.

Layout (``root`` is the channel directory)::

    <subdir>/repodata.json          packages and packages.conda, with md5, sha256 and size
    <subdir>/<name>-<version>-<build>.tar.bz2 | .conda

``repodata.json`` is rewritten on every ``publish`` / ``yank``; responses say
``Cache-Control: no-cache`` so a client revalidates on its next solve.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import struct
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal

from tests.support.served import LocalServer, QuietHandler, QuietServer

ArchiveFormat = Literal["tar.bz2", "conda"]

SUBDIRS = ("noarch", "linux-64", "linux-aarch64", "osx-64", "osx-arm64", "win-64")
"""Subdirs whose ``repodata.json`` always exists (possibly empty), as on a real channel."""

TIMESTAMP_MS = 1_700_000_000_000
"""The build timestamp of every package (2023-11-14), in milliseconds as conda writes it."""
_MTIME = TIMESTAMP_MS // 1000
_ZIP_DATE = (2023, 11, 14, 22, 13, 20)
NO_CACHE = "no-cache, max-age=0"

_ARCH = {
    "linux-64": ("x86_64", "linux"),
    "linux-aarch64": ("aarch64", "linux"),
    "osx-64": ("x86_64", "osx"),
    "osx-arm64": ("arm64", "osx"),
    "win-64": ("x86_64", "win"),
}


@dataclass(frozen=True)
class Published:
    """One archive on the channel."""

    name: str
    version: str
    build: str
    subdir: str
    filename: str
    path: Path
    md5: str
    sha256: str
    size: int
    record: dict[str, Any]
    """Its ``repodata.json`` entry."""


def zstd_frame(data: bytes) -> bytes:
    """``data`` as one zstandard frame of raw (stored) blocks: valid zstd, not compressed."""
    out = bytearray(struct.pack("<I", 0xFD2FB528))
    # Frame header: 8-byte content size, single segment (no window descriptor), no checksum.
    out.append(0b1110_0000)
    out += struct.pack("<Q", len(data))
    block_max = 128 * 1024
    chunks = [data[i : i + block_max] for i in range(0, len(data), block_max)] or [b""]
    for index, chunk in enumerate(chunks):
        last = 1 if index == len(chunks) - 1 else 0
        header = (len(chunk) << 3) | (0 << 1) | last  # block type 0: raw
        out += header.to_bytes(3, "little")
        out += chunk
    return bytes(out)


def _tar(members: Iterable[tuple[str, bytes]], compression: Literal["", "bz2"]) -> bytes:
    buffer = io.BytesIO()
    mode: Literal["w:", "w:bz2"] = "w:bz2" if compression == "bz2" else "w:"
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(members):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = _MTIME
            info.mode = 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _json_bytes(value: object) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True) + "\n").encode()


def build_package(
    directory: Path,
    *,
    name: str,
    version: str,
    build: str,
    build_number: int,
    subdir: str,
    depends: Sequence[str],
    constrains: Sequence[str] = (),
    archive: ArchiveFormat = "tar.bz2",
    salt: str = "",
    extra_files: Sequence[tuple[str, bytes]] = (),
) -> tuple[Path, dict[str, Any]]:
    """Write one conda package into ``directory``; return its path and its ``index.json``.

    Besides ``share/<name>/VERSION`` the package holds ``extra_files`` (path, bytes)."""
    index: dict[str, Any] = {
        "build": build,
        "build_number": build_number,
        "depends": list(depends),
        "license": "MIT",
        "name": name,
        "subdir": subdir,
        "timestamp": TIMESTAMP_MS,
        "version": version,
    }
    if constrains:
        index["constrains"] = list(constrains)
    if subdir == "noarch":
        index["noarch"] = "generic"
    else:
        index["arch"], index["platform"] = _ARCH.get(subdir, (None, None))
    payload_name = f"share/{name}/VERSION"
    payload = f"{name} {version} {build} {subdir}{salt}\n".encode()
    files = [(payload_name, payload), *extra_files]
    paths = {
        "paths": [
            {
                "_path": file_name,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(data).hexdigest(),
                "size_in_bytes": len(data),
            }
            for file_name, data in sorted(files)
        ],
        "paths_version": 1,
    }
    info = [("info/index.json", _json_bytes(index)), ("info/paths.json", _json_bytes(paths))]
    stem = f"{name}-{version}-{build}"
    directory.mkdir(parents=True, exist_ok=True)
    if archive == "tar.bz2":
        path = directory / f"{stem}.tar.bz2"
        path.write_bytes(_tar([*info, *files], "bz2"))
    else:
        path = directory / f"{stem}.conda"
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive_zip:
            members = (
                ("metadata.json", _json_bytes({"conda_pkg_format_version": 2})),
                (f"info-{stem}.tar.zst", zstd_frame(_tar(info, ""))),
                (f"pkg-{stem}.tar.zst", zstd_frame(_tar(files, ""))),
            )
            for member, data in members:
                entry = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
                entry.external_attr = 0o644 << 16
                archive_zip.writestr(entry, data)
        path.write_bytes(buffer.getvalue())
    return path, index


class CondaChannel(LocalServer):
    """A conda channel under ``root``: ``publish`` packages, then solve against ``url`` (HTTP,
    after ``start``) or ``file_url``."""

    def __init__(self, root: Path, *, name: str = "testing") -> None:
        self.root = root
        self.name = name
        self._lock = threading.Lock()
        self._published: dict[tuple[str, str], Published] = {}
        self._server = _ChannelServer(("127.0.0.1", 0), _ChannelHandler, self)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}/{name}"
        self.file_url = root.resolve().as_uri()
        super().__init__(self._server, "conda-channel")
        root.mkdir(parents=True, exist_ok=True)
        for subdir in SUBDIRS:
            self._write_repodata(subdir)

    # -- content ---------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        version: str,
        build: str = "0",
        depends: Sequence[str] = (),
        subdirs: Sequence[str] = ("noarch",),
        *,
        build_number: int = 0,
        constrains: Sequence[str] = (),
        archive: ArchiveFormat = "tar.bz2",
        salt: str = "",
    ) -> list[Published]:
        """Build ``name-version-build`` for each subdir and list it in that subdir's
        ``repodata.json``; return what was written."""
        out: list[Published] = []
        with self._lock:
            for subdir in subdirs:
                path, index = build_package(
                    self.root / subdir,
                    name=name,
                    version=version,
                    build=build,
                    build_number=build_number,
                    subdir=subdir,
                    depends=depends,
                    constrains=constrains,
                    archive=archive,
                    salt=salt,
                )
                data = path.read_bytes()
                record = dict(index)
                record["md5"] = hashlib.md5(data).hexdigest()  # noqa: S324 - conda's own hash
                record["sha256"] = hashlib.sha256(data).hexdigest()
                record["size"] = len(data)
                published = Published(
                    name=name,
                    version=version,
                    build=build,
                    subdir=subdir,
                    filename=path.name,
                    path=path,
                    md5=record["md5"],
                    sha256=record["sha256"],
                    size=len(data),
                    record=record,
                )
                self._published[(subdir, path.name)] = published
                out.append(published)
                self._write_repodata(subdir)
        return out

    def yank(self, name: str, version: str, build: str = "0") -> None:
        """Remove every archive of ``name-version-build`` from the channel."""
        stem = f"{name}-{version}-{build}"
        with self._lock:
            for (subdir, filename), published in list(self._published.items()):
                if filename in (f"{stem}.tar.bz2", f"{stem}.conda"):
                    del self._published[(subdir, filename)]
                    published.path.unlink(missing_ok=True)
                    self._write_repodata(subdir)

    def package_url(self, published: Published, *, base: str | None = None) -> str:
        """The URL of an archive on this channel (HTTP by default)."""
        return f"{base or self.url}/{published.subdir}/{published.filename}"

    def find(self, name: str, version: str, subdir: str) -> Published:
        for (pub_subdir, _), published in self._published.items():
            if (published.name, published.version, pub_subdir) == (name, version, subdir):
                return published
        raise KeyError(f"{name} {version} was never published for {subdir}")

    def _write_repodata(self, subdir: str) -> None:
        packages: dict[str, dict[str, Any]] = {}
        conda_packages: dict[str, dict[str, Any]] = {}
        for (pub_subdir, filename), published in self._published.items():
            if pub_subdir != subdir:
                continue
            target = conda_packages if filename.endswith(".conda") else packages
            target[filename] = published.record
        repodata = {
            "info": {"subdir": subdir},
            "packages": dict(sorted(packages.items())),
            "packages.conda": dict(sorted(conda_packages.items())),
            "removed": [],
            "repodata_version": 1,
        }
        directory = self.root / subdir
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "repodata.json").write_bytes(_json_bytes(repodata))


def publish_graph(channel: CondaChannel) -> None:
    """The package graph most conda tests solve against.

    - ``python`` 3.11.0 and 3.12.0 on linux-64 and linux-aarch64;
    - ``mathlib`` 1.0 and 1.2 (noarch); ``mlcore`` 1.0 and 1.1 (noarch, ``mathlib >=1.0``,
      ``python >=3.11``; 1.1 is a ``.conda`` archive); ``mlcore`` 2.0 is left for tests to
      publish (``publish_mlcore_2``);
    - ``pytool`` 0.5 (noarch, depends on ``python``);
    - ``fastkernel`` 0.3 on linux-64 only.
    """
    for version in ("3.11.0", "3.12.0"):
        channel.publish("python", version, "h0_0", subdirs=("linux-64", "linux-aarch64"))
    channel.publish("mathlib", "1.0")
    channel.publish("mathlib", "1.2")
    channel.publish("mlcore", "1.0", depends=("mathlib >=1.0", "python >=3.11"))
    channel.publish("mlcore", "1.1", depends=("mathlib >=1.0", "python >=3.11"), archive="conda")
    channel.publish("pytool", "0.5", depends=("python",))
    channel.publish("fastkernel", "0.3", "h1_0", depends=("python",), subdirs=("linux-64",))


def publish_mlcore_2(channel: CondaChannel) -> None:
    """``mlcore`` 2.0: needs ``mathlib >=1.2``."""
    channel.publish("mlcore", "2.0", depends=("mathlib >=1.2", "python >=3.11"))


def start_channel(root: Path, *, name: str = "testing") -> CondaChannel:
    """An empty channel under ``root``, served on an ephemeral port of 127.0.0.1."""
    return CondaChannel(root, name=name).start()


def unused_channel_url() -> str:
    """An ``http://127.0.0.1:<port>/testing`` URL on which nothing listens."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/testing"


class _ChannelServer(QuietServer):
    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        channel: CondaChannel,
    ) -> None:
        self.channel = channel
        super().__init__(address, handler)


class _ChannelHandler(QuietHandler):
    server: _ChannelServer
    server_version = "TestCondaChannel/1.0"

    def dispatch(self, *, send_body: bool) -> None:
        channel = self.server.channel
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        prefix = f"/{channel.name}/"
        parts = path[len(prefix) :].split("/") if path.startswith(prefix) else []
        # Only <subdir>/<file>: no directory listings, no way out of the channel.
        if len(parts) != 2 or not all(parts) or any(p.startswith(".") for p in parts):
            self._send(HTTPStatus.NOT_FOUND, b"Not Found\n", send_body, "text/plain")
            return
        with channel._lock:
            try:
                data = (channel.root / parts[0] / parts[1]).read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                data = None
        if data is None:
            self._send(HTTPStatus.NOT_FOUND, b"Not Found\n", send_body, "text/plain")
            return
        kind = "application/json" if parts[1].endswith(".json") else "application/octet-stream"
        self._send(HTTPStatus.OK, data, send_body, kind)

    def _send(self, status: HTTPStatus, body: bytes, send_body: bool, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", NO_CACHE)
        self.end_headers()
        if send_body:
            self.wfile.write(body)
