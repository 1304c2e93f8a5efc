"""``lockwarden run`` on a repository whose image drifts outside the lock: the base image is
pinned to its digest from a registry on 127.0.0.1, a pinned apt package moves to the
candidate of an apt repository on 127.0.0.1 on a full refresh (never on a plain run), an
unpinned one is reported, and the image digest change shows it. Real buildah builds."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.images.buildah import BuildahBuilder
from tests.support.apt_repo import AptRepository, apt_image, require_apt_tools
from tests.support.base_image import ToolMissing
from tests.support.daemons import start_registry
from tests.support.index_server import PackageIndex

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Scene:
    apt: AptRepository
    image: str
    """``<registry>/lockwarden/apt-base:1``: the apt test image, pushed."""
    digest: str
    registries_conf: Path


@pytest.fixture(scope="module")
def scene(buildah_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    require_apt_tools()
    work = tmp_path_factory.mktemp("image-inputs")
    try:
        address, stop = start_registry(work / "registry")
    except ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    builder = BuildahBuilder(os.environ, runtime="runc", pull="never")
    packages = [("lwtest-hello", "1.0-1"), ("lwtest-extra", "1.0-1")]
    try:
        with apt_image(builder, work / "apt", packages) as (apt, tag):
            image = f"{address}/lockwarden/apt-base-{uuid.uuid4().hex[:8]}:1"
            digest = builder.push(tag, image, tls_verify=False)
            conf = work / "registries.conf"
            conf.write_text(f'[[registry]]\nlocation = "{address}"\ninsecure = true\n')
            try:
                yield Scene(apt, image, digest, conf)
            finally:
                name = image.rsplit(":", 1)[0]
                for reference in (image, f"{name}@{digest}"):
                    subprocess.run(["buildah", "rmi", reference], capture_output=True, check=False)
    finally:
        stop()


def lockwarden(root: Path, scene: Scene, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", str(root), *args],
        env={
            "LOCKWARDEN_CACHE_DIR": str(root.parent / "cache"),
            "LOCKWARDEN_BUILDER": "buildah",
            # Where an operator tells buildah that this registry speaks plain HTTP.
            "CONTAINERS_REGISTRIES_CONF": str(scene.registries_conf),
        },
        catch_exceptions=False,
    )


def report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_base_digest_and_apt_pins_are_refreshed_on_purpose(
    scene: Scene, package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.publish("beta", "1.0.0")
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    (root / "requirements/serve.in").write_text("beta\n")
    (root / ".github").mkdir()
    (root / ".github/lockwarden.yml").write_text(
        f"index_url: {package_index.url}\n"
        "pin_base_images: true\n"
        "environments:\n"
        "  - name: serve\n"
        "    spec: requirements/serve.in\n"
        "    backend: uv\n"
        "    dockerfile: Dockerfile\n"
        "    test_command: [dpkg-query, -W, lwtest-hello]\n"
        f"    build_args: {{PIP_INDEX_URL: '{package_index.url}'}}\n"
    )
    (root / "Dockerfile").write_text(
        f"FROM {scene.image}\n"
        "ARG SOURCE_DATE_EPOCH\n"
        "RUN apt-get update \\\n"
        " && apt-get install -y --no-install-recommends lwtest-hello=1.0-1 lwtest-extra \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "ARG PIP_INDEX_URL\n"
        "COPY requirements/serve.txt /srv/requirements.txt\n"
        "RUN python -m venv /opt/venv \\\n"
        " && /opt/venv/bin/pip install --require-hashes --no-deps -r /srv/requirements.txt\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
    )
    out = tmp_path / "first.json"

    first = lockwarden(root, scene, "--json", str(out))

    assert first.exit_code == 0, first.output
    dockerfile = (root / "Dockerfile").read_text()
    assert dockerfile.startswith(f"FROM {scene.image}@{scene.digest}\n")
    assert "lwtest-hello=1.0-1" in dockerfile  # a plain run moves no pin
    (pins,) = report(out)["image_pins"]
    assert [(c["kind"], c["from"], c["to"]) for c in pins["changes"]] == [
        ("base-image", None, scene.digest)
    ]
    assert [(u["name"], u["line"]) for u in pins["unpinned"]] == [("lwtest-extra", 4)]
    assert "warning: Dockerfile:4: apt package lwtest-extra is not pinned" in first.output

    scene.apt.add("lwtest-hello", "1.1-1")
    out = tmp_path / "full.json"

    full = lockwarden(
        root, scene, "--upgrade", "--json", str(out), "--report", str(tmp_path / "r.md")
    )

    assert full.exit_code == 0, full.output
    assert "lwtest-hello=1.1-1" in (root / "Dockerfile").read_text()
    data = report(out)
    (pins,) = data["image_pins"]
    assert [(c["kind"], c["name"], c["from"], c["to"], c["line"]) for c in pins["changes"]] == [
        ("os-package", "lwtest-hello", "1.0-1", "1.1-1", 4)
    ]
    assert "Dockerfile" in data["written"]
    image = data["environments"][0]["image"]
    assert image["status"] == "built", image
    assert image["before"] != image["after"]  # the new package version is in the image
    tests = data["environments"][0]["tests"]
    assert tests["status"] == "passed"
    assert "1.1-1" in tests["log_tail"]
    markdown = (tmp_path / "r.md").read_text("utf-8")
    assert "### Image inputs" in markdown
    assert "| `Dockerfile:4` | apt package `lwtest-hello` | `1.0-1` | `1.1-1` |" in markdown
