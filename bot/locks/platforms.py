"""Target platforms of an environment: what an image or a lock is built for.

Users write platforms the way docker does (``linux/amd64``, ``linux/arm64``). Each one maps to
the names the tools use for it: uv's ``--python-platform``, the conda subdir, the
``platform_machine`` that markers see, and the wheel tags pip accepts there. The wheel tags
follow uv's own targets (glibc 2.28 for ``*-manylinux_2_28``, macOS 13.0 for
``*-apple-darwin``), so a wheel this module accepts is one uv would lock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.tags import Tag, compatible_tags, cpython_tags, mac_platforms

OperatingSystem = Literal["linux", "darwin", "windows"]

DEFAULT_GLIBC = "2.28"
"""The newest glibc a Linux target has: uv's ``*-manylinux_2_28`` targets."""
DEFAULT_MACOS = "13.0"
"""The oldest macOS a macOS target must support: uv's default for ``*-apple-darwin``."""
_OLDEST_MANYLINUX_GLIBC = 17
"""manylinux2014 (glibc 2.17) is the oldest policy built for every architecture."""


@dataclass(frozen=True)
class TargetPlatform:
    name: str
    """Docker-style name (``linux/amd64``); ``linux/arm64/v8`` is written ``linux/arm64``."""
    os: OperatingSystem
    arch: str
    """``platform_machine`` on that platform: ``x86_64``, ``aarch64``, ``arm64`` (macOS),
    ``AMD64`` (Windows)."""
    uv_platform: str
    """uv's ``--python-platform`` value."""
    conda_subdir: str


_PLATFORMS: dict[str, TargetPlatform] = {
    p.name: p
    for p in (
        TargetPlatform("linux/amd64", "linux", "x86_64", "x86_64-manylinux_2_28", "linux-64"),
        TargetPlatform(
            "linux/arm64", "linux", "aarch64", "aarch64-manylinux_2_28", "linux-aarch64"
        ),
        TargetPlatform("darwin/amd64", "darwin", "x86_64", "x86_64-apple-darwin", "osx-64"),
        TargetPlatform("darwin/arm64", "darwin", "arm64", "aarch64-apple-darwin", "osx-arm64"),
        TargetPlatform("windows/amd64", "windows", "AMD64", "x86_64-pc-windows-msvc", "win-64"),
    )
}
# Other spellings docker accepts for the same platform.
_ALIASES = {"linux/arm64/v8": "linux/arm64"}

_SYS_PLATFORM: dict[OperatingSystem, str] = {
    "linux": "linux",
    "darwin": "darwin",
    "windows": "win32",
}
_PLATFORM_SYSTEM: dict[OperatingSystem, str] = {
    "linux": "Linux",
    "darwin": "Darwin",
    "windows": "Windows",
}
_OS_NAME: dict[OperatingSystem, str] = {"linux": "posix", "darwin": "posix", "windows": "nt"}
_PYTHON_VERSION_RE = re.compile(r"^3\.(\d{1,2})(?:\.(\d{1,2}))?$")
_TWO_PART_VERSION_RE = re.compile(r"^(\d{1,2})\.(\d{1,2})$")


def known_platforms() -> tuple[str, ...]:
    """Every platform name ``parse_platform`` accepts in its canonical spelling."""
    return tuple(_PLATFORMS)


def parse_platform(text: str) -> TargetPlatform:
    """The target platform named by ``text`` (``linux/amd64``, ``darwin/arm64``...)."""
    key = text.strip().lower()
    found = _PLATFORMS.get(_ALIASES.get(key, key))
    if found is None:
        raise ValueError(f"unknown platform '{text}'; use one of: {', '.join(_PLATFORMS)}")
    return found


def supported_tags(
    platform: TargetPlatform,
    python_version: str,
    *,
    glibc: str = DEFAULT_GLIBC,
    macos: str = DEFAULT_MACOS,
) -> tuple[Tag, ...]:
    """Wheel tags CPython ``python_version`` (``"3.11"``) accepts on ``platform``, most
    preferred first.

    ``glibc`` is the newest glibc of a Linux target; ``macos`` the oldest macOS release a
    macOS target must run on (a wheel built for a newer one is not accepted).
    """
    major, minor, _ = _python_parts(python_version)
    platforms = _platform_tags(platform, glibc=glibc, macos=macos)
    version = (major, minor)
    tags = [
        *cpython_tags(version, abis=[f"cp{major}{minor}"], platforms=platforms),
        *compatible_tags(version, interpreter=f"cp{major}{minor}", platforms=platforms),
    ]
    return tuple(dict.fromkeys(tags))


def marker_environment(platform: TargetPlatform, python_version: str) -> dict[str, str]:
    """The values environment markers see on ``platform`` under CPython ``python_version``.

    A version without a patch level (``"3.11"``) stands for its first release (``3.11.0``), as
    uv's ``--python-version`` does. Host-only values (``platform_release``,
    ``platform_version``) are empty so the host never leaks into the answer.
    """
    major, minor, patch = _python_parts(python_version)
    full = f"{major}.{minor}.{patch}"
    return {
        "sys_platform": _SYS_PLATFORM[platform.os],
        "platform_system": _PLATFORM_SYSTEM[platform.os],
        "platform_machine": platform.arch,
        "os_name": _OS_NAME[platform.os],
        "python_version": f"{major}.{minor}",
        "python_full_version": full,
        "implementation_name": "cpython",
        "implementation_version": full,
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_version": "",
    }


def _python_parts(python_version: str) -> tuple[int, int, int]:
    """``"3.11"`` -> ``(3, 11, 0)``; ``"3.11.7"`` -> ``(3, 11, 7)``."""
    match = _PYTHON_VERSION_RE.match(python_version.strip())
    if match is None:
        raise ValueError(
            f"unsupported Python version '{python_version}'; write a CPython 3 version such as 3.11"
        )
    return 3, int(match.group(1)), int(match.group(2) or 0)


def _platform_tags(platform: TargetPlatform, *, glibc: str, macos: str) -> list[str]:
    if platform.os == "linux":
        return _linux_platforms(platform.arch, _two_part(glibc, "glibc"))
    if platform.os == "darwin":
        return list(mac_platforms(_two_part(macos, "macOS"), platform.arch))
    return ["win_amd64"]


def _linux_platforms(arch: str, glibc: tuple[int, int]) -> list[str]:
    """manylinux tags from the ceiling down, each legacy alias right after the PEP 600 tag
    it stands for (as pip orders them), then plain ``linux_<arch>``."""
    major, newest = glibc
    if major != 2 or newest < _OLDEST_MANYLINUX_GLIBC:
        raise ValueError(
            f"unsupported glibc '{major}.{newest}'; manylinux needs 2.{_OLDEST_MANYLINUX_GLIBC} "
            "or newer"
        )
    oldest = 5 if arch == "x86_64" else _OLDEST_MANYLINUX_GLIBC
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags: list[str] = []
    for minor in range(newest, oldest - 1, -1):
        if minor < _OLDEST_MANYLINUX_GLIBC and minor not in legacy:
            continue  # x86_64 below 2.17: only the policies that were ever published
        tags.append(f"manylinux_2_{minor}_{arch}")
        if minor in legacy:
            tags.append(f"{legacy[minor]}_{arch}")
    tags.append(f"linux_{arch}")
    return tags


def _two_part(text: str, what: str) -> tuple[int, int]:
    match = _TWO_PART_VERSION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"unsupported {what} version '{text}'; write it as major.minor")
    return int(match.group(1)), int(match.group(2))
