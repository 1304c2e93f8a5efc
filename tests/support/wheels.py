"""Build tiny, deterministic wheels (and source distributions) for tests.

The wheels are real enough for pip, pip-compile and uv to resolve and install them: a module
with ``__version__`` plus a ``.dist-info`` directory with METADATA, WHEEL and RECORD.  The same
inputs always give byte-identical files, so their sha256 is stable within a test run.

By default a wheel is pure Python (``py3-none-any``); an explicit tag such as
``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64`` gives a platform wheel with the same
contents, so an index can offer a release for some platforms only.  ``build_sdist`` writes a
``.tar.gz`` with a PKG-INFO: enough to be listed and read, not to be built.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name
from packaging.version import Version

GENERATOR = "tests.support.wheels 1.0"
WHEEL_TAG = "py3-none-any"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16
SDIST_SUFFIX = ".tar.gz"


@dataclass(frozen=True)
class Dist:
    """One release of one project: what goes into the wheel's METADATA."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    requires_python: str | None = None
    extras: dict[str, tuple[str, ...]] | None = None


def escape_name(name: str) -> str:
    """The project name as it appears in wheel file names (``Foo.Bar-baz`` -> ``foo_bar_baz``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def normalize_version(version: str) -> str:
    """The version as it appears in wheel file names (PEP 440 normal form)."""
    return str(Version(version))


def wheel_filename(name: str, version: str, tag: str = WHEEL_TAG) -> str:
    """``tag`` may be compressed (``cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64``)."""
    return f"{escape_name(name)}-{normalize_version(version)}-{tag}.whl"


def sdist_filename(name: str, version: str) -> str:
    """The PEP 625 name of a source distribution (``foo_bar-1.0.tar.gz``)."""
    return f"{escape_name(name)}-{normalize_version(version)}{SDIST_SUFFIX}"


def dist_info_dir(name: str, version: str) -> str:
    return f"{escape_name(name)}-{normalize_version(version)}.dist-info"


def parse_wheel_filename(filename: str) -> tuple[str, str] | None:
    """Return (canonical project name, version) of a wheel file name, or None if it is not one."""
    if not filename.endswith(".whl"):
        return None
    parts = filename[: -len(".whl")].split("-")
    if len(parts) not in (5, 6):
        return None
    return canonicalize_name(parts[0]), parts[1]


def parse_dist_filename(filename: str) -> tuple[str, str] | None:
    """Like ``parse_wheel_filename``, and also for ``.tar.gz`` source distributions."""
    if not filename.endswith(SDIST_SUFFIX):
        return parse_wheel_filename(filename)
    name, dash, version = filename[: -len(SDIST_SUFFIX)].rpartition("-")
    if not dash or not name or not version:
        return None
    return canonicalize_name(name), version


def is_pure_tag(tag: str) -> bool:
    """True when every tag in the (possibly compressed) ``tag`` is ``*-none-any``."""
    return all(t.abi == "none" and t.platform == "any" for t in parse_tag(tag))


def _extra_requirement(requirement: str, extra: str) -> str:
    req = Requirement(requirement)
    marker = f'extra == "{canonicalize_name(extra)}"'
    if req.marker is not None:
        marker = f"({req.marker}) and {marker}"
    req.marker = None
    return f"{req}; {marker}"


def render_metadata(dist: Dist) -> str:
    """The METADATA file (core metadata 2.1) of ``dist``."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {dist.name}",
        f"Version: {normalize_version(dist.version)}",
        f"Summary: Test distribution {dist.name}",
    ]
    if dist.requires_python is not None:
        lines.append(f"Requires-Python: {dist.requires_python}")
    lines.extend(f"Requires-Dist: {Requirement(req)}" for req in dist.requires)
    for extra, requirements in (dist.extras or {}).items():
        lines.append(f"Provides-Extra: {canonicalize_name(extra)}")
        lines.extend(f"Requires-Dist: {_extra_requirement(req, extra)}" for req in requirements)
    return "\n".join(lines) + "\n"


def render_wheel_file(tag: str = WHEEL_TAG) -> str:
    """The WHEEL file; a compressed ``tag`` is written as one ``Tag:`` line per tag."""
    purelib = "true" if is_pure_tag(tag) else "false"
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: {GENERATOR}",
        f"Root-Is-Purelib: {purelib}",
    ]
    lines.extend(f"Tag: {t}" for t in _expanded_tags(tag))
    return "\n".join(lines) + "\n"


def _expanded_tags(tag: str) -> list[str]:
    """The tags of a compressed tag set, in the order they are written in it."""
    interpreters, abis, platforms = (part.split(".") for part in tag.split("-"))
    return [f"{i}-{a}-{p}" for i in interpreters for a in abis for p in platforms]


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wheel_contents(dist: Dist, *, salt: str = "", tag: str = WHEEL_TAG) -> list[tuple[str, bytes]]:
    """The (archive path, bytes) members of the wheel, in archive order, RECORD last."""
    module = escape_name(dist.name)
    info = dist_info_dir(dist.name, dist.version)
    init = f'"""Test package {dist.name}."""\n\n__version__ = "{dist.version}"\n'
    if salt:
        init += f"# salt: {salt}\n"
    members = [
        (f"{module}/__init__.py", init.encode()),
        (f"{info}/METADATA", render_metadata(dist).encode()),
        (f"{info}/WHEEL", render_wheel_file(tag).encode()),
    ]
    record_path = f"{info}/RECORD"
    record_lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members]
    record_lines.append(f"{record_path},,")
    members.append((record_path, ("\n".join(record_lines) + "\n").encode()))
    return members


def build_wheel(dist: Dist, dest_dir: Path, *, salt: str = "", tag: str = WHEEL_TAG) -> Path:
    """Write ``dist`` as a wheel into ``dest_dir`` and return its path.

    Fixed timestamps, permissions and member order make the output byte-identical for the same
    inputs.  A non-empty ``salt`` changes the bytes (and so the hash) without changing anything
    a resolver looks at, like a re-upload of the same version.  ``tag`` names the wheel's
    compatibility tags (pure Python by default).
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / wheel_filename(dist.name, dist.version, tag)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for member, data in wheel_contents(dist, salt=salt, tag=tag):
            info = zipfile.ZipInfo(member, date_time=_ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    tmp.replace(path)
    return path


def build_sdist(dist: Dist, dest_dir: Path, *, salt: str = "") -> Path:
    """Write ``dist`` as a ``.tar.gz`` source distribution into ``dest_dir``; return its path.

    It holds the module and a PKG-INFO (the same metadata as the wheel's), with fixed
    timestamps and owners, so the same inputs give the same bytes.  It has no build system:
    it is for indexes and listings, not for installing.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / sdist_filename(dist.name, dist.version)
    top = f"{escape_name(dist.name)}-{normalize_version(dist.version)}"
    init = f'"""Test package {dist.name}."""\n\n__version__ = "{dist.version}"\n'
    if salt:
        init += f"# salt: {salt}\n"
    members = [
        (f"{top}/PKG-INFO", render_metadata(dist).encode()),
        (f"{top}/{escape_name(dist.name)}/__init__.py", init.encode()),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for member, data in members:
            info = tarfile.TarInfo(member)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(gzip.compress(buffer.getvalue(), compresslevel=6, mtime=0))
    tmp.replace(path)
    return path


def read_sdist_metadata(sdist: Path) -> bytes:
    """The raw PKG-INFO at the top of ``sdist``."""
    with tarfile.open(sdist, mode="r:gz") as archive:
        for member in archive.getmembers():
            if member.name.partition("/")[2] == "PKG-INFO":
                extracted = archive.extractfile(member)
                if extracted is not None:
                    return extracted.read()
    raise ValueError(f"{sdist.name} has no PKG-INFO")


def read_metadata(wheel: Path) -> bytes:
    """The raw METADATA file inside ``wheel``."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.namelist():
            top, _, rest = member.partition("/")
            if top.endswith(".dist-info") and rest == "METADATA":
                return archive.read(member)
    raise ValueError(f"{wheel.name} has no .dist-info/METADATA")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, as pip-compile and uv write it after ``--hash=sha256:``."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
