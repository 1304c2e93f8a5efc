"""Tests of the image fixtures: the base image in buildah and docker, builds, runs, pushes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.base_image import (
    BASE_IMAGE,
    BUILDAH_NAMES,
    CACHE_ENV,
    HOST_CA_BUNDLE,
    RECIPE_LABEL,
    cache_dir,
    ensure_buildah_base,
    ensure_docker_base,
    recipe_id,
)

pytestmark = pytest.mark.slow

# How the bot builds and runs here (see tests/support/daemons.py for why).
BUILDAH_BUD = ["buildah", "bud", "--runtime", "runc", "--pull-never", "--network", "host"]
DOCKER_RUN_OFFLINE = [
    *("docker", "run", "--rm"),
    *("--network", "none", "--memory", "256m", "--cpus", "1"),
]

TINY_DOCKERFILE = """\
FROM python:3.11-slim-bookworm
RUN python -m venv /opt/venv && /opt/venv/bin/pip --version
"""

# Printed by the container: its network interfaces, memory limit, CA bundle digest, pip.
PROBE = """\
import hashlib, os, socket, subprocess
print("interfaces", [name for _, name in socket.if_nameindex()])
for path in ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"):
    if os.path.exists(path):
        print("memory", open(path).read().strip())
print("ca", hashlib.sha256(open(os.environ["PIP_CERT"], "rb").read()).hexdigest())
subprocess.run(["/opt/venv/bin/pip", "--version"], check=True)
"""


def run(argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def registry_tags(address: str, repository: str) -> list[str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{address}/v2/{repository}/tags/list", timeout=10) as response:
        tags: list[str] = json.load(response)["tags"]
    return tags


def unique_tag() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def tiny_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    context = tmp_path_factory.mktemp("tiny")
    (context / "Dockerfile").write_text(TINY_DOCKERFILE)
    return context


@pytest.fixture(scope="module")
def buildah_tiny(buildah_base: str, tiny_context: Path) -> Iterator[tuple[str, str]]:
    """The tiny Dockerfile built with buildah: (image name, build output)."""
    name = f"localhost/lockwarden-test/tiny:{unique_tag()}"
    proc = run([*BUILDAH_BUD, "--tag", name, str(tiny_context)])
    yield name, proc.stdout
    subprocess.run(["buildah", "rmi", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def docker_tiny(docker_host: str, tiny_context: Path) -> Iterator[tuple[str, str]]:
    """The tiny Dockerfile built with docker: (image name, build output)."""
    name = f"lockwarden-test/tiny:{unique_tag()}"
    proc = run(["docker", "build", "--network", "host", "--tag", name, str(tiny_context)])
    yield name, proc.stdout
    subprocess.run(["docker", "image", "rm", name], capture_output=True, check=False)


def test_base_image_is_in_both_stores_and_reused(
    buildah_base: str, docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in BUILDAH_NAMES:
        image = json.loads(run(["buildah", "inspect", "--type", "image", name]).stdout)
        assert image["FromImageID"] == buildah_base
        config = image["OCIv1"]["config"]
        assert config["Labels"][RECIPE_LABEL] == recipe_id()
        assert f"PIP_CERT={HOST_CA_BUNDLE}" in config["Env"]

    inspected = json.loads(run(["docker", "image", "inspect", BASE_IMAGE]).stdout)[0]
    assert inspected["Config"]["Labels"][RECIPE_LABEL] == recipe_id()
    assert f"PIP_CERT={HOST_CA_BUNDLE}" in inspected["Config"]["Env"]
    assert inspected["Config"]["Cmd"] == ["python3"]
    full_name = f"docker.io/library/{BASE_IMAGE}"
    assert (
        run(["docker", "image", "inspect", "--format", "{{.Id}}", full_name]).stdout.strip()
        == (inspected["Id"])
    )

    # A second call finds the label and imports nothing: importing needs the cache directory
    # (its lock files and the root filesystem's tarball), which is now a path nothing can create.
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocked / "cache"))
    assert ensure_buildah_base() == buildah_base
    assert ensure_docker_base(docker_host) == inspected["Id"]
    with pytest.raises(NotADirectoryError):
        cache_dir()  # what an import would have needed first


def test_buildah_builds_from_the_base(buildah_tiny: tuple[str, str]) -> None:
    name, output = buildah_tiny
    assert "from /opt/venv/lib/python3.11/site-packages/pip (python 3.11)" in output
    run(["buildah", "inspect", "--type", "image", name])


def test_docker_builds_from_the_base(docker_tiny: tuple[str, str]) -> None:
    _name, output = docker_tiny
    assert "from /opt/venv/lib/python3.11/site-packages/pip (python 3.11)" in output


def test_docker_runs_without_network_and_with_limits(docker_tiny: tuple[str, str]) -> None:
    name, _output = docker_tiny
    proc = run([*DOCKER_RUN_OFFLINE, name, "python", "-c", PROBE])
    lines = proc.stdout.splitlines()
    assert "interfaces ['lo']" in lines
    assert f"memory {256 * 1024 * 1024}" in lines
    host_ca = hashlib.sha256(HOST_CA_BUNDLE.read_bytes()).hexdigest()
    assert f"ca {host_ca}" in lines
    assert any(line.startswith("pip ") for line in lines)


def test_registry_starts_empty(registry: str) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://{registry}/v2/_catalog", timeout=10) as response:
        assert json.load(response) == {"repositories": []}


def test_buildah_pushes_to_the_registry(buildah_tiny: tuple[str, str], registry: str) -> None:
    name, _output = buildah_tiny
    run(["buildah", "push", "--quiet", "--tls-verify=false", name, f"docker://{registry}/x:b"])
    assert registry_tags(registry, "x") == ["b"]


def test_docker_pushes_to_a_loopback_registry_without_settings(
    docker_tiny: tuple[str, str], registry: str
) -> None:
    # 127.0.0.0/8 is insecure (plain HTTP) by default: no insecure-registries setting needed.
    insecure = json.loads(
        run(["docker", "info", "--format", "{{json .RegistryConfig.InsecureRegistryCIDRs}}"]).stdout
    )
    assert "127.0.0.0/8" in insecure
    name, _output = docker_tiny
    target = f"{registry}/x:d"
    run(["docker", "tag", name, target])
    try:
        run(["docker", "push", "--quiet", target])
    finally:
        subprocess.run(["docker", "image", "rm", target], capture_output=True, check=False)
    assert registry_tags(registry, "x") == ["d"]
