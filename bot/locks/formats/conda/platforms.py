"""Conda platforms and lock paths: Docker-style names to conda subdirs, one lock per subdir.

Pure tables and string work, without the solver's bindings: configuration validates
platform names with them before any conda environment is compiled.
"""

from __future__ import annotations

DEFAULT_LOCK_PATTERN = "conda-{platform}.lock"
"""conda-lock's name for rendered explicit locks; ``{platform}`` is the conda subdir."""

EXPLICIT_MARKER = "@EXPLICIT"

# Docker-style platform names -> conda subdirs.
_DOCKER_PLATFORMS: dict[str, str] = {
    "linux/amd64": "linux-64",
    "linux/arm64": "linux-aarch64",
    "linux/arm64/v8": "linux-aarch64",
    "linux/ppc64le": "linux-ppc64le",
    "darwin/amd64": "osx-64",
    "darwin/arm64": "osx-arm64",
    "windows/amd64": "win-64",
}
SUBDIRS: tuple[str, ...] = (
    "linux-64",
    "linux-aarch64",
    "linux-ppc64le",
    "osx-64",
    "osx-arm64",
    "win-64",
)
"""The conda subdirs Lockwarden can lock for (it knows their virtual packages)."""


def conda_subdir(platform: str) -> str:
    """The conda subdir for a Docker-style platform (``linux/arm64`` -> ``linux-aarch64``);
    a conda subdir name is returned as it is."""
    wanted = platform.strip()
    if wanted in _DOCKER_PLATFORMS:
        return _DOCKER_PLATFORMS[wanted]
    if wanted in SUBDIRS:
        return wanted
    accepted = ", ".join((*_DOCKER_PLATFORMS, *SUBDIRS))
    raise ValueError(f"unknown platform {platform!r} for a conda lock; use one of: {accepted}")


def lock_path_for(pattern: str, platform: str) -> str:
    """The repository-relative lock path of ``platform``: ``pattern`` with ``{platform}``
    replaced by the conda subdir (``conda-{platform}.lock`` -> ``conda-linux-64.lock``)."""
    if "{platform}" not in pattern:
        raise ValueError(
            f"the conda lock pattern {pattern!r} has no '{{platform}}'; one lock is written "
            f"per platform, e.g. {DEFAULT_LOCK_PATTERN!r}"
        )
    return pattern.replace("{platform}", conda_subdir(platform))
