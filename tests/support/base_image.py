"""The ``python:3.11-slim-bookworm`` base image, made here: no image registry is reachable.

The example Dockerfiles (and the ones the tests write) start ``FROM python:3.11-slim-bookworm``.
That image is stood in for by a Debian bookworm ``minbase`` root filesystem made with
``debootstrap`` from Debian's package mirror, with ``python3``, ``python3-venv``,
``python-is-python3`` and ``ca-certificates``: ``python`` is Python 3.11 and
``python -m venv`` brings pip, which is all the Dockerfiles rely on.  ``apt-get update`` works
in it (``sources.list`` names Debian's mirror; the package lists are stripped like in the real
slim image).

The host's CA bundle replaces the image's own ``/etc/ssl/certs/ca-certificates.crt`` and
``PIP_CERT`` / ``SSL_CERT_FILE`` point at it, so pip inside a build trusts whatever the host
trusts (a TLS-intercepting mirror in front of PyPI included).

Caching, in :func:`cache_dir` (``$LOCKWARDEN_TEST_CACHE``, else ``/var/cache/lockwarden-test``):

* ``base-<recipe>.tar`` is the root filesystem, tarred with numeric owners.  ``<recipe>`` is
  :data:`RECIPE_VERSION` plus a digest of the host's CA bundle, so a change to either makes a
  new tarball (and drops the old one); otherwise ``debootstrap`` runs once per machine.
* The image is imported into buildah's and docker's stores with the label
  ``org.lockwarden.test-base=<recipe>``; an image that already carries the label is reused.

Every step that creates something holds an exclusive lock file in the cache directory, so
parallel pytest processes wait for one another instead of racing.

Cold (``debootstrap`` from the mirror, about 60-90 s) then warm (label found, well under 1 s):
only the first run on a machine pays for the root filesystem.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

BASE_IMAGE = "python:3.11-slim-bookworm"
# buildah resolves the short name of a FROM line to docker.io/library/...; both names are tagged.
BUILDAH_NAMES = (f"localhost/{BASE_IMAGE}", f"docker.io/library/{BASE_IMAGE}")
# Bump whenever what goes into the root filesystem or the image config changes.
RECIPE_VERSION = "1"
RECIPE_LABEL = "org.lockwarden.test-base"

DEFAULT_CACHE_DIR = Path("/var/cache/lockwarden-test")
CACHE_ENV = "LOCKWARDEN_TEST_CACHE"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
# Emptied after debootstrap to keep the image small: package lists, documentation.
_EMPTIED_DIRS = ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info")
# Only the files go (apt and dpkg expect the directories): caches of .debs and logs.
_FILES_REMOVED_UNDER = ("var/cache/apt", "var/log")
# Kept as empty directories in the tarball: the container runtime mounts its own.
_RUNTIME_DIRS = ("dev", "proc", "sys", "run", "tmp")

IMAGE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "PIP_CERT": str(HOST_CA_BUNDLE),
    "SSL_CERT_FILE": str(HOST_CA_BUNDLE),
}
IMAGE_CMD = "python3"


class ToolMissing(RuntimeError):
    """A program that a test fixture needs is not installed (``.ci/setup`` installs it)."""


def cache_dir() -> Path:
    """Where the base tarball, lock files, daemon logs and docker's data live."""
    path = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def find_tool(name: str) -> str | None:
    """The full path of ``name`` on PATH or in the sbin directories (runc, dockerd live there)."""
    search = os.pathsep.join([os.environ.get("PATH", os.defpath), "/usr/sbin", "/sbin"])
    return shutil.which(name, path=search)


def require_tool(name: str) -> str:
    """The full path of ``name``, or :class:`ToolMissing`."""
    found = find_tool(name)
    if found is None:
        raise ToolMissing(f"{name} is not installed (.ci/setup installs it)")
    return found


def recipe_id() -> str:
    """The version of the base image: the recipe constant and the host's CA bundle."""
    if HOST_CA_BUNDLE.is_file():
        ca = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()[:12]
    else:
        ca = "no-host-ca"
    return f"{RECIPE_VERSION}-{ca}"


def _run(argv: list[str], *, env: Mapping[str, str] | None = None, timeout: float = 600) -> str:
    """Run ``argv``; its stdout, or a RuntimeError carrying both streams."""
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc.stdout


# -- the root filesystem ---------------------------------------------------------------------


def base_rootfs_tarball() -> Path:
    """The bookworm root filesystem as a tarball; made with debootstrap on first use."""
    cache = cache_dir()
    tarball = cache / f"base-{recipe_id()}.tar"
    if tarball.is_file():
        return tarball
    with locked(cache / "base.lock"):
        if not tarball.is_file():
            _build_tarball(tarball)
            for stale in cache.glob("base-*.tar"):
                if stale != tarball:
                    stale.unlink(missing_ok=True)
    return tarball


def _build_tarball(tarball: Path) -> None:
    debootstrap = require_tool("debootstrap")
    if os.geteuid() != 0:
        raise ToolMissing("debootstrap needs root to make the base image's root filesystem")
    work = tarball.parent / "rootfs.partial"
    _remove_tree(work)
    log = tarball.parent / "debootstrap.log"
    argv = [
        debootstrap,
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(work),
        MIRROR,
    ]
    with log.open("wb") as out:
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        _remove_tree(work)
        raise RuntimeError(f"debootstrap exited {proc.returncode}; end of {log}:\n{tail}")
    try:
        _trim(work)
        if HOST_CA_BUNDLE.is_file():
            target = work / HOST_CA_BUNDLE.relative_to("/")
            target.unlink(missing_ok=True)
            shutil.copyfile(HOST_CA_BUNDLE, target)
            target.chmod(0o644)
        partial = tarball.with_name(tarball.name + ".partial")
        excludes = [f"--exclude=./{name}/*" for name in _RUNTIME_DIRS]
        tar = ["tar", "--numeric-owner", "--xattrs", *excludes, "-C", str(work)]
        _run([*tar, "-cf", str(partial), "."])
        partial.replace(tarball)
    finally:
        _remove_tree(work)


def _trim(root: Path) -> None:
    for rel in _EMPTIED_DIRS:
        top = root / rel
        if top.is_dir():
            for child in top.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
    for rel in _FILES_REMOVED_UNDER:
        for dirpath, _dirnames, filenames in os.walk(root / rel):
            for name in filenames:
                Path(dirpath, name).unlink()
    # debootstrap copied the build machine's; container runtimes mount their own over these.
    for rel in ("etc/hostname", "etc/resolv.conf"):
        (root / rel).unlink(missing_ok=True)
        (root / rel).write_text("")


def _remove_tree(path: Path) -> None:
    """Remove ``path``, first unmounting anything an interrupted debootstrap left mounted."""
    if not path.exists():
        return
    for mountpoint in sorted(_mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], check=False, capture_output=True)
    left = _mounts_under(path)
    if left:
        # Never recurse into a mounted /proc, /sys or /dev.
        raise RuntimeError(f"cannot unmount {', '.join(left)}; remove {path} by hand")
    shutil.rmtree(path)


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve()) + "/"
    lines = Path("/proc/self/mounts").read_text().splitlines()
    # Mount points are the second field, with spaces escaped as \040.
    return [line.split()[1] for line in lines if line.split()[1].startswith(prefix)]


# -- buildah ---------------------------------------------------------------------------------


def _buildah_label(name: str) -> tuple[str, str] | None:
    """(image id, recipe label) of the image called ``name`` in buildah's store, if any."""
    proc = subprocess.run(
        [
            "buildah",
            "inspect",
            "--type",
            "image",
            "--format",
            f'{{{{.FromImageID}}}} {{{{index .OCIv1.Config.Labels "{RECIPE_LABEL}"}}}}',
            name,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        return None
    image_id, _, label = proc.stdout.strip().partition(" ")
    return image_id, label


def _buildah_current(recipe: str) -> str | None:
    """The id of the image that every name points at, if it was made by this recipe."""
    found = {_buildah_label(name) for name in BUILDAH_NAMES}
    if len(found) == 1:
        (only,) = found
        if only is not None and only[1] == recipe:
            return only[0]
    return None


def ensure_buildah_base() -> str:
    """The base image in buildah's store under both names; its image id."""
    require_tool("buildah")
    recipe = recipe_id()
    current = _buildah_current(recipe)
    if current is not None:
        return current
    tarball = base_rootfs_tarball()
    with locked(cache_dir() / "buildah.lock"):
        current = _buildah_current(recipe)
        if current is not None:
            return current
        found = [_buildah_label(name) for name in BUILDAH_NAMES]
        image_id = _import_into_buildah(tarball, recipe)
        for old in {item[0] for item in found if item is not None and item[1]} - {image_id}:
            # An older import of ours that nothing uses any more; kept if still in use.
            subprocess.run(["buildah", "rmi", old], capture_output=True, check=False)
        return image_id


def _import_into_buildah(tarball: Path, recipe: str) -> str:
    container = _run(["buildah", "from", "scratch"]).strip()
    try:
        _run(["buildah", "add", "--quiet", container, str(tarball), "/"])
        config = ["buildah", "config"]
        for key, value in IMAGE_ENV.items():
            config += ["--env", f"{key}={value}"]
        config += ["--cmd", IMAGE_CMD, "--label", f"{RECIPE_LABEL}={recipe}", container]
        _run(config)
        image_id = _run(
            ["buildah", "commit", "--quiet", "--timestamp", "0", container, BUILDAH_NAMES[0]]
        ).strip()
    finally:
        subprocess.run(["buildah", "rm", container], capture_output=True, check=False)
    for name in BUILDAH_NAMES[1:]:
        _run(["buildah", "tag", image_id, name])
    return image_id


# -- docker ----------------------------------------------------------------------------------


def _docker_env(docker_host: str | None) -> dict[str, str] | None:
    if docker_host is None:
        return None
    return {**os.environ, "DOCKER_HOST": docker_host}


def _docker_label(env: Mapping[str, str] | None) -> tuple[str, str] | None:
    proc = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{.Id}}}} {{{{index .Config.Labels "{RECIPE_LABEL}"}}}}',
            BASE_IMAGE,
        ],
        capture_output=True,
        text=True,
        check=False,
        env=None if env is None else dict(env),
    )
    if proc.returncode != 0:
        return None
    image_id, _, label = proc.stdout.strip().partition(" ")
    return image_id, label


def ensure_docker_base(docker_host: str | None = None) -> str:
    """The base image in the docker daemon at ``docker_host`` ($DOCKER_HOST if None); its id."""
    require_tool("docker")
    env = _docker_env(docker_host)
    recipe = recipe_id()
    found = _docker_label(env)
    if found is not None and found[1] == recipe:
        return found[0]
    tarball = base_rootfs_tarball()
    with locked(cache_dir() / "docker-import.lock"):
        found = _docker_label(env)
        if found is not None and found[1] == recipe:
            return found[0]
        argv = ["docker", "import"]
        for key, value in IMAGE_ENV.items():
            argv += ["--change", f"ENV {key}={value}"]
        argv += [
            "--change",
            f'CMD ["{IMAGE_CMD}"]',
            "--change",
            f"LABEL {RECIPE_LABEL}={recipe}",
            str(tarball),
            BASE_IMAGE,
        ]
        image_id = _run(argv, env=env).strip()
        if found is not None and found[1]:
            # The import this one replaces, if nothing still uses it.
            subprocess.run(
                ["docker", "image", "rm", found[0]],
                capture_output=True,
                check=False,
                env=None if env is None else dict(env),
            )
        return image_id


# -- tidying up ------------------------------------------------------------------------------


def buildah_names(prefix: str) -> list[str]:
    """Every image name in buildah's store that starts with ``prefix``."""
    listed = _run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"])
    return [name for name in listed.split() if name.startswith(prefix)]


def remove_buildah_images(prefix: str) -> None:
    """Remove every image named ``prefix...`` (a test's own, unique prefix): its images go
    with their last name, so a test run leaves none behind."""
    for name in buildah_names(prefix):
        subprocess.run(["buildah", "rmi", "--force", name], capture_output=True, check=False)
