"""A tiny apt repository on 127.0.0.1, with real ``.deb`` packages built at test time.

Packages are made with ``dpkg-deb --build`` (architecture ``all``, one file each, owned by
root) and indexed with ``dpkg-scanpackages --multiversion`` into ``Packages`` and
``Packages.gz``, so every version added stays installable, as on a real mirror. The
directory is a flat repository served over HTTP; an image uses it with the sources line
:attr:`AptRepository.source_line` (``deb [trusted=yes] http://127.0.0.1:PORT/ ./``: no
``Release`` file, no signature).

:func:`apt_base_dockerfile` is a Dockerfile for an image whose apt sources are this
repository only, so ``apt-get update`` in it never reaches the internet. Containers reach
the repository through the host network (``RunSpec(network=True)``, ``--network=host``).
"""

from __future__ import annotations

import functools
import gzip
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.images import Builder, BuildSpec
from tests.support.base_image import BASE_IMAGE, ToolMissing, require_tool
from tests.support.served import LocalServer


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    path: Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class AptRepository(LocalServer):
    """The ``.deb`` files under ``root``, served at ``url``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._build_dir = root.parent / f"{root.name}-build"
        self._lock = threading.Lock()
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        super().__init__(self._server, "apt-repository")
        self.index()

    @property
    def source_line(self) -> str:
        return f"deb [trusted=yes] {self.url}/ ./"

    def add(self, name: str, version: str, *, depends: str | None = None) -> Deb:
        """Build ``name`` ``version`` (a package holding one small file) and re-index."""
        deb = build_deb(self._build_dir, self.root, name, version, depends=depends)
        self.index()
        return deb

    def remove(self, name: str, version: str) -> None:
        (self.root / deb_filename(name, version)).unlink()
        self.index()

    def index(self) -> None:
        """Write ``Packages`` and ``Packages.gz`` for the ``.deb`` files present."""
        scan = require_tool("dpkg-scanpackages")
        with self._lock:
            proc = subprocess.run(
                [scan, "--multiversion", ".", "/dev/null"],
                cwd=self.root,
                capture_output=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"dpkg-scanpackages failed:\n{proc.stderr.decode()[-2000:]}")
            for name, data in (
                ("Packages", proc.stdout),
                ("Packages.gz", gzip.compress(proc.stdout, mtime=0)),
            ):
                partial = self.root / f".{name}.partial"
                partial.write_bytes(data)
                partial.replace(self.root / name)


def deb_filename(name: str, version: str) -> str:
    # Debian file names leave out the epoch.
    return f"{name}_{version.partition(':')[2] or version}_all.deb"


def build_deb(
    work: Path, destination: Path, name: str, version: str, *, depends: str | None = None
) -> Deb:
    """A real ``.deb`` of ``name`` ``version`` (architecture ``all``) in ``destination``."""
    dpkg_deb = require_tool("dpkg-deb")
    tree = work / f"{name}-{version}"
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    payload = tree / "usr" / "share" / name
    payload.mkdir(parents=True, exist_ok=True)
    (payload / "version").write_text(f"{version}\n")
    control = [
        f"Package: {name}",
        f"Version: {version}",
        "Architecture: all",
        "Maintainer: Lockwarden tests <tests@lockwarden.invalid>",
        *([f"Depends: {depends}"] if depends else []),
        f"Description: test package {name} {version}",
    ]
    (tree / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    target = destination / deb_filename(name, version)
    proc = subprocess.run(
        [dpkg_deb, "--root-owner-group", "--build", str(tree), str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"dpkg-deb failed for {name} {version}:\n{proc.stderr[-2000:]}")
    return Deb(name, version, target)


def require_apt_tools() -> None:
    """Skip the test on a developer machine without ``dpkg-dev``; fail it in CI."""
    try:
        require_tool("dpkg-deb")
        require_tool("dpkg-scanpackages")
    except ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


def start_apt_repository(root: Path) -> AptRepository:
    """An empty repository at ``root``, served on an ephemeral port of 127.0.0.1."""
    repository = AptRepository(root)
    repository.start()
    return repository


def apt_base_dockerfile(source_line: str, base: str = BASE_IMAGE) -> str:
    """A Dockerfile for ``base`` with ``source_line`` as its only apt source."""
    return (
        f"FROM {base}\n"
        "RUN rm -f /etc/apt/sources.list /etc/apt/sources.list.d/* \\\n"
        f" && echo '{source_line}' > /etc/apt/sources.list.d/lockwarden-test.list\n"
    )


@contextmanager
def apt_image(
    builder: Builder, root: Path, packages: Sequence[tuple[str, str]]
) -> Iterator[tuple[AptRepository, str]]:
    """A repository under ``root`` holding ``packages`` ((name, version) pairs), and an image
    built with ``builder`` whose only apt source it is; the image is removed afterwards."""
    with start_apt_repository(root / "repo") as repository:
        for name, version in packages:
            repository.add(name, version)
        tag = f"localhost/lockwarden-test/apt-base:{uuid.uuid4().hex[:12]}"
        build_apt_base(builder, repository.source_line, root / "context", tag)
        try:
            yield repository, tag
        finally:
            builder.remove(tag)


def build_apt_base(builder: Builder, source_line: str, context: Path, tag: str) -> str:
    """Build :func:`apt_base_dockerfile` as ``tag`` with ``builder``; the tag."""
    context.mkdir(parents=True, exist_ok=True)
    dockerfile = context / "Dockerfile"
    dockerfile.write_text(apt_base_dockerfile(source_line))
    outcome = builder.build(BuildSpec(context, dockerfile, tag, timestamp=0, timeout_s=300))
    if not outcome.ok:
        raise RuntimeError(f"building {tag} failed: {outcome.error}\n{outcome.log_tail}")
    return tag
