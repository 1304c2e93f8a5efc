"""Choosing the image builder, and when a run counts as failed."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.images import ImageInfo
from bot.images.buildah import BuildahBuilder
from bot.images.docker import DockerBuilder
from bot.locks.modes import CompileMode
from bot.pipeline.checkout import Workspace
from bot.progress import LoggedProgress, ProgressEvent
from bot.results import (
    CheckResult,
    CompileStageResult,
    ImageResult,
    LockResult,
    RunResult,
    TestResult,
)
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh, select_builder
from tests.pipeline.conftest import env_config, new_repo, publish_graph
from tests.support.index_server import PackageIndex

# -- select_builder --------------------------------------------------------------------------


@pytest.fixture
def availability(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Which builders answer, and which were asked: ``{"buildah": bool, "docker": bool,
    "asked": [names]}``."""
    state: dict[str, Any] = {"buildah": False, "docker": False, "asked": []}

    def fake(name: str) -> Any:
        def available(self: object) -> bool:
            state["asked"].append(name)
            return bool(state[name])

        return available

    monkeypatch.setattr(BuildahBuilder, "available", fake("buildah"))
    monkeypatch.setattr(DockerBuilder, "available", fake("docker"))
    monkeypatch.setattr("bot.images.buildah.default_runtime", lambda: None)
    return state


@pytest.mark.parametrize(
    ("setting", "buildah", "docker", "chosen", "asked"),
    [
        ("auto", True, True, "buildah", ["buildah"]),
        ("auto", True, False, "buildah", ["buildah"]),
        ("auto", False, True, "docker", ["buildah", "docker"]),
        ("auto", False, False, None, ["buildah", "docker"]),
        ("buildah", True, True, "buildah", ["buildah"]),
        ("buildah", False, True, None, ["buildah"]),  # no fallback when named
        ("docker", True, True, "docker", ["docker"]),
        ("docker", True, False, None, ["docker"]),
        ("none", True, True, None, []),
    ],
)
def test_select_builder(
    availability: dict[str, Any],
    setting: str,
    buildah: bool,
    docker: bool,
    chosen: str | None,
    asked: list[str],
) -> None:
    availability.update(buildah=buildah, docker=docker)

    builder = select_builder(Settings(builder=setting))  # type: ignore[arg-type]

    assert (builder.name if builder else None) == chosen
    assert availability["asked"] == asked


def test_buildah_gets_the_runtime_and_pull_policy(availability: dict[str, Any]) -> None:
    availability["buildah"] = True

    builder = select_builder(
        Settings(builder="buildah", buildah_runtime="crun", build_pull="never")
    )

    assert isinstance(builder, BuildahBuilder)
    assert builder._runtime == "crun"
    assert builder._pull == "never"


@pytest.mark.parametrize(("pull", "expected"), [("always", True), ("missing", False)])
def test_docker_pulls_only_when_always(
    availability: dict[str, Any], pull: str, expected: bool
) -> None:
    availability["docker"] = True

    builder = select_builder(Settings(builder="docker", build_pull=pull))  # type: ignore[arg-type]

    assert isinstance(builder, DockerBuilder)
    assert builder._pull is expected


def test_builders_see_no_credentials(
    availability: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret")
    monkeypatch.setenv("LOCKWARDEN_WEBHOOK_SECRET", "hook")
    availability.update(buildah=True, docker=True)

    buildah = select_builder(Settings(builder="buildah"))
    docker = select_builder(Settings(builder="docker"))

    assert isinstance(buildah, BuildahBuilder)
    assert isinstance(docker, DockerBuilder)
    for env in (buildah._env, docker._env):
        assert "GITHUB_TOKEN" not in env
        assert "LOCKWARDEN_WEBHOOK_SECRET" not in env


# -- RunResult.failed ------------------------------------------------------------------------


def lock(name: str, status: str) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="uv",
        status=status,  # type: ignore[arg-type]
        error="resolution failed" if status == "failed" else None,
    )


IMAGE = ImageInfo("localhost/x:1", "sha256:" + "a" * 64, 1, ())
BUILT = ImageResult("serve", "built", before=IMAGE, after=IMAGE)
SKIPPED = ImageResult("serve", "skipped", reason="no image builder available")
FAILED = ImageResult("serve", "failed", reason="Dockerfile.serve: exit status 1")
LINT_FAILED = ImageResult("serve", "built", before=IMAGE, after=IMAGE, lint_failed=True)
PASSED = TestResult(
    "serve", "passed", install_check=CheckResult("passed"), pip_check=CheckResult("passed")
)
NOT_RUN = TestResult("serve", "skipped", reason="no image was built")


def run(
    statuses: tuple[str, ...] = ("changed",),
    images: tuple[ImageResult, ...] = (),
    tests: tuple[TestResult, ...] = (),
) -> RunResult:
    results = tuple(lock(f"env{i}", s) for i, s in enumerate(statuses))
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(), source="discovery"),
        mode=CompileMode(),
        compiled=CompileStageResult(results, (), tuple(r.name for r in results)),
        images=images,
        tests=tests,
    )


@pytest.mark.parametrize(
    ("result", "failed"),
    [
        pytest.param(run(), False, id="changed"),
        pytest.param(run(("unchanged", "changed")), False, id="unchanged"),
        pytest.param(run(("changed", "failed")), True, id="compile-failed"),
        pytest.param(run(images=(BUILT,), tests=(PASSED,)), False, id="built-and-passed"),
        pytest.param(run(images=(SKIPPED,), tests=(NOT_RUN,)), False, id="image-skipped"),
        pytest.param(run(images=(FAILED,), tests=(NOT_RUN,)), True, id="image-failed"),
        pytest.param(run(images=(LINT_FAILED,), tests=(PASSED,)), True, id="lint-failed"),
        pytest.param(
            run(images=(BUILT,), tests=(TestResult("serve", "failed"),)), True, id="tests-failed"
        ),
        pytest.param(
            run(images=(BUILT,), tests=(TestResult("serve", "timed-out"),)),
            True,
            id="tests-timed-out",
        ),
        pytest.param(
            run(
                images=(BUILT,),
                tests=(TestResult("serve", "passed", install_check=CheckResult("failed")),),
            ),
            True,
            id="install-check-failed",
        ),
        pytest.param(
            run(
                images=(BUILT,),
                tests=(TestResult("serve", "skipped", pip_check=CheckResult("errored")),),
            ),
            True,
            id="pip-check-errored",
        ),
        pytest.param(
            run(
                images=(BUILT,),
                tests=(TestResult("serve", "skipped", reason="turned off with --no-test"),),
            ),
            False,
            id="no-test",
        ),
    ],
)
def test_run_failed(result: RunResult, failed: bool) -> None:
    assert result.failed is failed


# -- progress --------------------------------------------------------------------------------


@pytest.mark.slow
def test_refresh_reports_each_environments_steps_in_order(
    tmp_path: Path, package_index: PackageIndex
) -> None:
    repo = new_repo(tmp_path, publish_graph(package_index))
    repo.spec("serve", "alpha")
    repo.spec("train", "alpha", "gamma")
    repo.write("requirements/broken.in", "not a requirement ===\n")
    repo.configure(
        env_config("serve"),
        env_config("train", constraints=["serve"]),
        env_config("broken"),
    )
    events: list[ProgressEvent] = []
    lock = threading.Lock()

    def collect(event: ProgressEvent) -> None:
        with lock:
            events.append(event)

    result = refresh(
        Workspace(root=repo.root, repo="repo"),
        RefreshOptions(build=False),
        repo.settings(),
        progress=collect,
    )

    steps = {
        name: [(e.stage, e.state) for e in events if e.environment == name]
        for name in ("serve", "train", "broken")
    }
    compiled = [("compile", "queued"), ("compile", "running"), ("compile", "done")]
    assert steps["serve"] == compiled
    assert steps["train"] == compiled
    assert steps["broken"] == [("compile", "queued"), ("compile", "running"), ("compile", "failed")]
    # train is compiled against serve's new lock: it starts only once serve is done.
    assert events.index(ProgressEvent("train", "compile", "running")) > next(
        i for i, e in enumerate(events) if e.environment == "serve" and e.state == "done"
    )
    by_name = {r.name: r for r in result.compiled.results}
    for event in events:
        if event.finished:
            assert event.elapsed_s == by_name[event.environment].compile_s
    assert [e.detail for e in events if e.environment == "serve" and e.finished] == [
        "2 packages changed"
    ]


def test_logged_progress_logs_each_step(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.progress")
    progress = LoggedProgress()

    progress(ProgressEvent("serve", "compile", "running"))
    progress(ProgressEvent("serve", "build", "failed", 3.21, "Dockerfile checks"))

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "serve: compiling"),
        ("WARNING", "serve: build failed after 3.2s (Dockerfile checks)"),
    ]
    assert caplog.records[1].__dict__["duration_s"] == 3.21
    assert caplog.records[1].__dict__["environment"] == "serve"
