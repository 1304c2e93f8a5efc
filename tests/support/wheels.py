"""Build tiny, deterministic, pure-Python wheels for tests.

The wheels are real enough for pip, pip-compile and uv to resolve and install them: a module
with ``__version__`` plus a ``.dist-info`` directory with METADATA, WHEEL and RECORD.  The same
inputs always give byte-identical files, so their sha256 is stable within a test run.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

GENERATOR = "tests.support.wheels 1.0"
WHEEL_TAG = "py3-none-any"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644 << 16


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


def wheel_filename(name: str, version: str) -> str:
    return f"{escape_name(name)}-{normalize_version(version)}-{WHEEL_TAG}.whl"


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


def render_wheel_file() -> str:
    lines = [
        "Wheel-Version: 1.0",
        f"Generator: {GENERATOR}",
        "Root-Is-Purelib: true",
        f"Tag: {WHEEL_TAG}",
    ]
    return "\n".join(lines) + "\n"


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def wheel_contents(dist: Dist, *, salt: str = "") -> list[tuple[str, bytes]]:
    """The (archive path, bytes) members of the wheel, in archive order, RECORD last."""
    module = escape_name(dist.name)
    info = dist_info_dir(dist.name, dist.version)
    init = f'"""Test package {dist.name}."""\n\n__version__ = "{dist.version}"\n'
    if salt:
        init += f"# salt: {salt}\n"
    members = [
        (f"{module}/__init__.py", init.encode()),
        (f"{info}/METADATA", render_metadata(dist).encode()),
        (f"{info}/WHEEL", render_wheel_file().encode()),
    ]
    record_path = f"{info}/RECORD"
    record_lines = [f"{path},{_record_hash(data)},{len(data)}" for path, data in members]
    record_lines.append(f"{record_path},,")
    members.append((record_path, ("\n".join(record_lines) + "\n").encode()))
    return members


def build_wheel(dist: Dist, dest_dir: Path, *, salt: str = "") -> Path:
    """Write ``dist`` as a wheel into ``dest_dir`` and return its path.

    Fixed timestamps, permissions and member order make the output byte-identical for the same
    inputs.  A non-empty ``salt`` changes the bytes (and so the hash) without changing anything
    a resolver looks at, like a re-upload of the same version.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / wheel_filename(dist.name, dist.version)
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for member, data in wheel_contents(dist, salt=salt):
            info = zipfile.ZipInfo(member, date_time=_ZIP_EPOCH)
            info.create_system = 3
            info.external_attr = _FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=6)
    tmp.replace(path)
    return path


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
