"""The image-pins sub-stage: base-image digests from a real registry on 127.0.0.1, apt pins
moved to the candidate of a real apt repository, and what is reported instead of changed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.images import Builder, BuildSpec
from bot.images.buildah import BuildahBuilder
from bot.images.docker import DockerBuilder
from bot.locks.modes import CompileMode
from bot.pipeline.image_pins import NO_BUILDER, refresh_image_pins, restore_pins
from bot.report.markdown import render_markdown
from bot.report.terminal import render_summary
from bot.results import CompileStageResult, DockerfilePins, PinChange, RunResult, UnpinnedPackage
from bot.sandbox.egress import EgressPolicy
from tests.support.apt_repo import apt_image, require_apt_tools
from tests.support.base_image import ToolMissing
from tests.support.daemons import start_registry
from tests.support.sandbox import SANDBOX

# The apt repository of these tests listens on 127.0.0.1, as an operator's mirror would on a
# private address: allowed, as LOCKWARDEN_ALLOWED_PRIVATE_HOSTS allows it in production.
LOCAL = EgressPolicy(("127.0.0.1",))


def write(root: Path, path: str, text: str) -> Path:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode())
    return target


def only(results: tuple[DockerfilePins, ...]) -> DockerfilePins:
    (result,) = results
    return result


def run_with(pins: DockerfilePins) -> RunResult:
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(), source=".github/lockwarden.yml"),
        mode=CompileMode(),
        compiled=CompileStageResult((), (), ()),
        image_pins=(pins,),
    )


def summary_errors(pins: DockerfilePins) -> list[str]:
    """The error lines ``lockwarden run`` prints for these pins."""
    return [
        line for line in render_summary(run_with(pins)).splitlines() if line.startswith("error:")
    ]


# -- without a registry or a builder ---------------------------------------------------------


def test_without_a_builder_pins_are_reported_not_refreshed(tmp_path: Path) -> None:
    text = "FROM debian:12\nRUN apt-get install -y curl=7.88.1-10 git \\\n    jq\n"
    path = write(tmp_path, "envs/serve/Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"envs/serve/Dockerfile": ("serve", "serve-gpu")},
            None,
            upgrade=True,
            pin_base_images=False,
            refresh_os_packages=True,
            policy=SANDBOX.policy,
        )
    )

    assert result == DockerfilePins(
        dockerfile="envs/serve/Dockerfile",
        environments=("serve", "serve-gpu"),
        changes=(),
        unpinned=(
            UnpinnedPackage("envs/serve/Dockerfile", 2, "apt", "git"),
            UnpinnedPackage("envs/serve/Dockerfile", 3, "apt", "jq"),
        ),
        unpinnable_images=(),
        errors=(f"envs/serve/Dockerfile: {NO_BUILDER}",),
        old_text=text,
        new_text=text,
    )
    assert not result.changed
    assert path.read_text() == text
    # The terminal names the file once: the error carries it.
    assert summary_errors(result) == [f"error: envs/serve/Dockerfile: {NO_BUILDER}"]


def test_switched_off_it_only_reads(tmp_path: Path) -> None:
    text = "FROM python:3.12\nRUN apt-get install -y curl=1 git\n"
    write(tmp_path, "Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            None,
            upgrade=True,
            pin_base_images=False,
            refresh_os_packages=False,
            policy=SANDBOX.policy,
        )
    )

    assert (result.changes, result.unpinned, result.errors) == ((), (), ())
    assert result.new_text == result.old_text == text


def test_without_upgrade_packages_are_only_reported(tmp_path: Path) -> None:
    write(tmp_path, "Dockerfile", "FROM alpine:3.19\nRUN apk add --no-cache curl=8.5.0-r0 git\n")

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            None,
            upgrade=False,
            pin_base_images=False,
            refresh_os_packages=True,
            policy=SANDBOX.policy,
        )
    )

    assert result.unpinned == (UnpinnedPackage("Dockerfile", 2, "apk", "git"),)
    assert result.errors == ()


def test_stages_without_a_known_base_are_errors(tmp_path: Path) -> None:
    text = (
        "ARG BASE=debian:12\n"
        "FROM ${BASE} AS one\n"
        "RUN apt-get install -y a=1\n"
        "FROM scratch\n"
        "RUN apt-get install -y b=2\n"
    )
    write(tmp_path, "Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            None,
            upgrade=True,
            pin_base_images=True,
            refresh_os_packages=True,
            policy=SANDBOX.policy,
        )
    )

    assert result.unpinnable_images == ("${BASE}",)
    assert result.errors == (
        "Dockerfile:3: a was not refreshed: its stage starts from ${BASE}, which is only known"
        " at build time",
        "Dockerfile:5: b was not refreshed: its stage starts from scratch, which has no package"
        " manager to ask",
    )
    assert result.new_text == text


def test_unreadable_dockerfiles_are_errors(tmp_path: Path) -> None:
    (tmp_path / "latin1").mkdir()
    (tmp_path / "latin1" / "Dockerfile").write_bytes(b"FROM a\nLABEL x=\xe9\n")

    results = refresh_image_pins(
        tmp_path,
        {"missing/Dockerfile": ("b",), "latin1/Dockerfile": ("a",)},
        None,
        upgrade=True,
        pin_base_images=True,
        refresh_os_packages=True,
        policy=SANDBOX.policy,
    )

    assert [(r.dockerfile, r.environments, r.errors) for r in results] == [
        ("latin1/Dockerfile", ("a",), ("latin1/Dockerfile: not UTF-8 text",)),
        (
            "missing/Dockerfile",
            ("b",),
            ("missing/Dockerfile: cannot read (No such file or directory)",),
        ),
    ]
    assert all(r.old_text == r.new_text == "" and not r.changes for r in results)


# -- base images in a real registry ----------------------------------------------------------


@dataclass(frozen=True)
class Registry:
    address: str
    builder: BuildahBuilder
    work: Path

    def push_tiny_image(self, repository_tag: str, content: str) -> str:
        """Build a one-file image FROM scratch and push it; the manifest digest."""
        context = self.work / uuid.uuid4().hex[:12]
        context.mkdir(parents=True)
        (context / "content").write_text(content)
        (context / "Dockerfile").write_text("FROM scratch\nCOPY content /content\n")
        tag = f"localhost/lockwarden-test/tiny:{uuid.uuid4().hex[:12]}"
        outcome = self.builder.build(BuildSpec(context, context / "Dockerfile", tag, timestamp=0))
        assert outcome.ok, outcome.log_tail
        try:
            return self.builder.push(tag, f"{self.address}/{repository_tag}", tls_verify=False)
        finally:
            self.builder.remove(tag)


@pytest.fixture(scope="module")
def registry(buildah_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    work = tmp_path_factory.mktemp("registry")
    try:
        address, stop = start_registry(work / "registry")
    except ToolMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield Registry(address, BuildahBuilder(os.environ, runtime="runc", pull="never"), work)
    finally:
        stop()


@pytest.mark.slow
def test_base_images_are_pinned_then_followed(registry: Registry, tmp_path: Path) -> None:
    repository = f"lockwarden/app-{uuid.uuid4().hex[:8]}"
    first = registry.push_tiny_image(f"{repository}:1", "one")
    image = f"{registry.address}/{repository}:1"
    text = (
        f"FROM --platform=linux/amd64 {image} AS app\n"
        "FROM app\n"
        f"FROM {registry.address}/{repository}:nope\n"
        f"FROM {image}\n"
    )
    path = write(tmp_path, "envs/a/Dockerfile", text)
    path.chmod(0o640)
    other = write(tmp_path, "envs/b/Dockerfile", f"FROM {image}\n")
    dockerfiles = {"envs/b/Dockerfile": ("b",), "envs/a/Dockerfile": ("a", "a2")}

    def refresh(*, upgrade: bool) -> tuple[DockerfilePins, ...]:
        return refresh_image_pins(
            tmp_path,
            dockerfiles,
            None,
            upgrade=upgrade,
            pin_base_images=True,
            refresh_os_packages=False,
            policy=SANDBOX.policy,
        )

    a, b = refresh(upgrade=False)

    assert a.dockerfile == "envs/a/Dockerfile"
    assert a.changes == (
        PinChange("base-image", "envs/a/Dockerfile", 1, image, None, first),
        PinChange("base-image", "envs/a/Dockerfile", 4, image, None, first),
    )
    (error,) = a.errors
    assert error.startswith(
        f"envs/a/Dockerfile:3: could not resolve {registry.address}/{repository}:nope: "
        f"{registry.address} has no"
        f" tag 'nope' of {repository} (404: MANIFEST_UNKNOWN"
    )
    pinned_text = text.replace(f"{image} AS", f"{image}@{first} AS").replace(
        f"FROM {image}\n", f"FROM {image}@{first}\n"
    )
    assert a.new_text == pinned_text
    assert path.read_text() == pinned_text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert b.changes == (PinChange("base-image", "envs/b/Dockerfile", 1, image, None, first),)
    assert other.read_text() == f"FROM {image}@{first}\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["Dockerfile"]

    # Pinned stays pinned, until the tag moves and an upgrade asks again.
    second = registry.push_tiny_image(f"{repository}:1", "two")
    assert second != first
    unchanged = refresh(upgrade=False)
    assert [r.changes for r in unchanged] == [(), ()]
    assert path.read_text() == pinned_text

    a, b = refresh(upgrade=True)

    assert [(c.line, c.before, c.after) for c in a.changes] == [
        (1, first, second),
        (4, first, second),
    ]
    assert path.read_text() == pinned_text.replace(first, second)
    assert other.read_text() == f"FROM {image}@{second}\n"


@pytest.mark.slow
def test_a_dockerfile_that_cannot_be_rewritten_is_left_whole(
    registry: Registry, tmp_path: Path
) -> None:
    repository = f"lockwarden/split-{uuid.uuid4().hex[:8]}"
    registry.push_tiny_image(f"{repository}:1", "one")
    # The image is split over two lines, so no digest can be written after it; the good FROM
    # is not written alone either.
    text = (
        f"FROM {registry.address}/{repository}:1 AS a\nFROM {registry.address}/\\\n{repository}:1\n"
    )
    path = write(tmp_path, "Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            None,
            upgrade=False,
            pin_base_images=True,
            refresh_os_packages=False,
            policy=SANDBOX.policy,
        )
    )

    assert result.errors == (
        "Dockerfile: not updated: line 2: the image of this FROM is split; join it",
    )
    assert (result.changes, result.new_text) == ((), text)
    assert path.read_text() == text


# -- apt pins in a real image ----------------------------------------------------------------

PACKAGES = [("lwtest-hello", "1.0-1"), ("lwtest-hello", "1.1-1"), ("lwtest-extra", "2:3.0-1")]


@dataclass(frozen=True)
class AptImage:
    builder: Builder
    tag: str


@pytest.fixture(scope="module")
def buildah_apt(buildah_base: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptImage]:
    require_apt_tools()
    builder = BuildahBuilder(os.environ, runtime="runc", pull="never", egress=LOCAL)
    with apt_image(builder, tmp_path_factory.mktemp("apt"), PACKAGES) as (_, tag):
        yield AptImage(builder, tag)


@pytest.fixture(scope="module")
def docker_apt(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AptImage]:
    require_apt_tools()
    builder = DockerBuilder(os.environ)
    with apt_image(builder, tmp_path_factory.mktemp("apt"), PACKAGES) as (_, tag):
        yield AptImage(builder, tag)


@pytest.fixture(params=["buildah_apt", "docker_apt"])
def apt_base(request: pytest.FixtureRequest) -> AptImage:
    """The apt test image, in the store of each builder."""
    image: AptImage = request.getfixturevalue(request.param)
    return image


def apt_dockerfile(base: str) -> str:
    return (
        f"FROM {base} AS build\n"
        "RUN apt-get update \\\n"
        " && apt-get install -y --no-install-recommends lwtest-hello=1.0-1 curl \\\n"
        " && rm -rf /var/lib/apt/lists/*\n"
        "FROM build\n"
        "RUN apt-get install -y lwtest-extra=2:3.0-1 lwtest-gone=0.1-1\n"
    )


def upgrade_apt_pins(root: Path, builder: Builder) -> DockerfilePins:
    """A full refresh of the OS package pins of ``root/Dockerfile``."""
    return only(
        refresh_image_pins(
            root,
            {"Dockerfile": ("app",)},
            builder,
            upgrade=True,
            pin_base_images=False,
            refresh_os_packages=True,
            timeout_s=300,
            policy=SANDBOX.policy,
        )
    )


@pytest.mark.slow
def test_apt_pins_move_to_the_candidate(buildah_apt: AptImage, tmp_path: Path) -> None:
    # buildah only: the candidate lookup reaches the apt repository on 127.0.0.1 through the
    # egress proxy, which docker containers cannot join (they never get the host's network,
    # and the test daemon has no bridge).
    apt_base = buildah_apt
    text = apt_dockerfile(apt_base.tag)
    path = write(tmp_path, "Dockerfile", text)

    result = upgrade_apt_pins(tmp_path, apt_base.builder)

    assert result.changes == (
        PinChange(
            "os-package",
            "Dockerfile",
            3,
            "lwtest-hello",
            "1.0-1",
            "1.1-1",
            manager="apt",
            image=apt_base.tag,
        ),
    )
    assert result.unpinned == (UnpinnedPackage("Dockerfile", 3, "apt", "curl"),)
    assert result.errors == (
        f"Dockerfile:6: {apt_base.tag} offers no apt package lwtest-gone; is its package source"
        " set up in the base image?",
    )
    expected = text.replace("lwtest-hello=1.0-1", "lwtest-hello=1.1-1")
    assert result.new_text == expected
    assert path.read_text() == expected
    assert summary_errors(result) == [
        f"error: Dockerfile:6: {apt_base.tag} offers no apt package lwtest-gone; is its package"
        " source set up in the base image?",
    ]
    assert "downgrade" not in render_markdown(run_with(result))


@pytest.mark.slow
def test_a_pin_ahead_of_the_candidate_is_a_marked_downgrade(
    buildah_apt: AptImage, tmp_path: Path
) -> None:
    text = f"FROM {buildah_apt.tag}\nRUN apt-get install -y lwtest-hello=1.2-1\n"
    path = write(tmp_path, "Dockerfile", text)

    result = upgrade_apt_pins(tmp_path, buildah_apt.builder)

    (change,) = result.changes
    assert (change.name, change.before, change.after, change.downgrade) == (
        "lwtest-hello",
        "1.2-1",
        "1.1-1",
        True,
    )
    assert path.read_text() == text.replace("=1.2-1", "=1.1-1")
    assert (
        "pin: Dockerfile:2: lwtest-hello 1.2-1 -> 1.1-1 (downgrade)"
        in render_summary(run_with(result)).splitlines()
    )
    markdown = render_markdown(run_with(result))
    (row,) = [line for line in markdown.splitlines() if "lwtest-hello" in line]
    assert row.startswith("| `Dockerfile:2` | apt package `lwtest-hello` | `1.2-1` | `1.1-1` ")
    assert "⬇️ **downgrade**: the package sources no longer offer the pinned version" in row


@pytest.mark.slow
def test_without_upgrade_apt_pins_stay(apt_base: AptImage, tmp_path: Path) -> None:
    text = apt_dockerfile(apt_base.tag)
    path = write(tmp_path, "Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            apt_base.builder,
            upgrade=False,
            pin_base_images=False,
            refresh_os_packages=True,
            policy=SANDBOX.policy,
        )
    )

    assert (result.changes, result.errors) == ((), ())
    assert result.unpinned == (UnpinnedPackage("Dockerfile", 3, "apt", "curl"),)
    assert path.read_text() == text


@pytest.mark.slow
def test_a_failed_lookup_leaves_the_pins(buildah_base: str, tmp_path: Path) -> None:
    image = f"localhost/lockwarden-test/no-such-image:{uuid.uuid4().hex[:12]}"
    text = (
        f"FROM {image}\n"
        "RUN apt-get install -y a=1 b=2\n"
        f"FROM {image} AS two\n"
        "RUN apt-get install -y c=3\n"
    )
    path = write(tmp_path, "Dockerfile", text)

    result = only(
        refresh_image_pins(
            tmp_path,
            {"Dockerfile": ("app",)},
            BuildahBuilder(os.environ, runtime="runc", pull="never", egress=LOCAL),
            upgrade=True,
            pin_base_images=False,
            refresh_os_packages=True,
            policy=SANDBOX.policy,
        )
    )

    (error,) = result.errors  # one lookup for the image, one error
    assert error.startswith(
        f"Dockerfile: apt pins were not refreshed: could not start a container of {image}: "
    )
    assert (result.changes, result.new_text) == ((), text)
    assert path.read_text() == text


@pytest.mark.slow
def test_candidates_come_from_the_newly_pinned_base(
    buildah_apt: AptImage, registry: Registry, tmp_path: Path
) -> None:
    repository = f"lockwarden/apt-base-{uuid.uuid4().hex[:8]}"
    image = f"{registry.address}/{repository}:1"
    digest = buildah_apt.builder.push(buildah_apt.tag, image, tls_verify=False)
    # buildah pulls the pinned base from a registry without TLS when registries.conf says so
    # (what an operator configures; docker allows loopback registries by default).
    conf = tmp_path / "registries.conf"
    conf.write_text(f'[[registry]]\nlocation = "{registry.address}"\ninsecure = true\n')
    builder = BuildahBuilder(
        {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(conf)},
        runtime="runc",
        pull="missing",
        egress=LOCAL,
    )
    write(tmp_path, "Dockerfile", f"FROM {image}\nRUN apt-get install -y lwtest-hello=1.0-1\n")

    try:
        result = only(
            refresh_image_pins(
                tmp_path,
                {"Dockerfile": ("app",)},
                builder,
                upgrade=True,
                pin_base_images=True,
                refresh_os_packages=True,
                timeout_s=300,
                policy=SANDBOX.policy,
            )
        )
    finally:
        # The pull added a name to the image; the image itself belongs to the fixture.
        subprocess.run(
            ["buildah", "rmi", f"{registry.address}/{repository}@{digest}"],
            capture_output=True,
            check=False,
        )

    assert result.errors == ()
    assert result.changes == (
        PinChange("base-image", "Dockerfile", 1, image, None, digest),
        PinChange(
            "os-package",
            "Dockerfile",
            2,
            "lwtest-hello",
            "1.0-1",
            "1.1-1",
            manager="apt",
            image=f"{image}@{digest}",
        ),
    )
    assert (tmp_path / "Dockerfile").read_text() == (
        f"FROM {image}@{digest}\nRUN apt-get install -y lwtest-hello=1.1-1\n"
    )


# -- pins restored by a rollback -------------------------------------------------------------

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


@pytest.mark.parametrize(
    ("current", "old", "expected"),
    [
        pytest.param(
            f"FROM python:3.12-slim@{D2}\nRUN apt-get install -y libgomp1=12.2-2\n",
            f"FROM python:3.12-slim@{D1}\nRUN apt-get install -y libgomp1=12.2-1\n",
            f"FROM python:3.12-slim@{D1}\nRUN apt-get install -y libgomp1=12.2-1\n",
            id="digest-and-version-back",
        ),
        pytest.param(
            f"FROM python:3.12-slim@{D2}\n# a person's note\nRUN apt-get install -y "
            "libgomp1=12.2-2 curl=8.0-2 git\nCOPY . /app\n",
            f"FROM python:3.12-slim@{D1}\nRUN apt-get install -y libgomp1=12.2-1\n",
            f"FROM python:3.12-slim@{D1}\n# a person's note\nRUN apt-get install -y "
            "libgomp1=12.2-1 curl=8.0-2 git\nCOPY . /app\n",
            id="edits-since-stay",
        ),
        pytest.param(
            f"FROM python:3.13-slim@{D2}\n",
            f"FROM python:3.12-slim@{D1}\n",
            f"FROM python:3.13-slim@{D2}\n",
            id="another-tag-is-not-restored",
        ),
        pytest.param(
            "FROM alpine:3.20\nRUN apk add --no-cache curl~8.9 zlib=1.3.1-r2\n",
            "FROM alpine:3.20\nRUN apk add --no-cache curl~8.8 zlib=1.3.1-r1\n",
            "FROM alpine:3.20\nRUN apk add --no-cache curl~8.9 zlib=1.3.1-r1\n",
            id="only-exact-pins",
        ),
        pytest.param(
            "FROM python:3.12-slim\n",
            f"FROM python:3.12-slim@{D1}\n",
            f"FROM python:3.12-slim@{D1}\n",
            id="digest-pinned-again",
        ),
        pytest.param(
            f"FROM python:3.12-slim@{D2}\n",
            "FROM python:3.12-slim\n",
            f"FROM python:3.12-slim@{D2}\n",
            id="old-had-no-digest",
        ),
    ],
)
def test_restore_pins(current: str, old: str, expected: str) -> None:
    assert restore_pins(current, old, "Dockerfile") == expected
