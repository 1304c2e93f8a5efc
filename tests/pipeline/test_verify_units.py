"""The verify stage's decisions, with a fake builder that records the containers it runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import EnvironmentConfig, RepoConfig
from bot.images import (
    Builder,
    BuilderName,
    BuildOutcome,
    BuildSpec,
    ImageInfo,
    Mount,
    RunOutcome,
    RunSpec,
    TestStatus,
)
from bot.pipeline.verify import CHECK_TIMEOUT_S, INSTALL_CHECK, LOCK_MOUNT, PIP_CHECK, verify_images
from bot.results import CheckResult, ImageResult, TestResult

TEST_COMMAND = ("python", "-m", "pytest", "-q", "tests")


@dataclass
class FakeBuilder:
    """A ``Builder`` that only runs containers: ``answer`` says how each command ends."""

    answer: Callable[[RunSpec], RunOutcome] = lambda spec: RunOutcome("passed", 0, 0.5, "ok")
    runs: list[RunSpec] = field(default_factory=list)
    name: BuilderName = "buildah"

    def available(self) -> bool:
        return True

    def build(self, spec: BuildSpec) -> BuildOutcome:
        raise AssertionError("verify never builds")

    def inspect(self, reference: str) -> ImageInfo | None:
        raise AssertionError("verify never inspects")

    def run(self, spec: RunSpec) -> RunOutcome:
        self.runs.append(spec)
        return self.answer(spec)

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        raise AssertionError("verify never pushes")

    def remove(self, reference: str) -> None:
        raise AssertionError("verify never removes")

    def tag(self, reference: str, name: str) -> bool:
        raise AssertionError("verify never removes")

    def names(self, reference: str) -> tuple[str, ...] | None:
        raise AssertionError("verify never removes")

    def untag(self, reference: str) -> bool:
        raise AssertionError("verify never removes")

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        raise AssertionError("verify never exports")

    def run_of(self, command: tuple[str, ...]) -> RunSpec:
        (spec,) = [s for s in self.runs if s.command == command]
        return spec


def answers(
    *, install: TestStatus = "passed", pip: TestStatus = "passed", tests: TestStatus = "passed"
) -> Callable[[RunSpec], RunOutcome]:
    def answer(spec: RunSpec) -> RunOutcome:
        if spec.command == INSTALL_CHECK:
            return outcome(install, "Would install beta-1.0.1")
        if spec.command == PIP_CHECK:
            return outcome(pip, "No broken requirements found.")
        return outcome(tests, "3 passed in 0.10s", duration=7.5)

    return answer


def outcome(status: TestStatus, log: str, duration: float = 0.5) -> RunOutcome:
    code = {"passed": 0, "failed": 1, "errored": 2}.get(status)
    return RunOutcome(status, code, duration, log)


def _check_protocol(fake: FakeBuilder) -> Builder:
    return fake  # mypy checks that the fake implements the protocol


AFTER = ImageInfo(
    reference="localhost/lockwarden/ml-service-serve:0123456789abcdef",
    image_id="sha256:" + "a" * 64,
    size=183_000_000,
    layers=("sha256:" + "b" * 64,),
)


def env(name: str = "serve", **extra: Any) -> EnvironmentConfig:
    extra.setdefault("dockerfile", f"Dockerfile.{name}")
    extra.setdefault("test_command", TEST_COMMAND)
    return EnvironmentConfig(name=name, spec=f"requirements/{name}.in", **extra)


def built(name: str = "serve", after: ImageInfo = AFTER) -> ImageResult:
    return ImageResult(name=name, status="built", before=after, after=after)


def verify(
    tmp_path: Path,
    builder: Builder | None,
    *environments: EnvironmentConfig,
    images: tuple[ImageResult, ...] = (),
    run_tests: bool = True,
) -> tuple[TestResult, ...]:
    repo_config = RepoConfig(environments=environments or (env(),))
    return verify_images(tmp_path, repo_config, images or (built(),), builder, run_tests=run_tests)


# -- skipped ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image",
    [
        ImageResult(name="serve", status="skipped", reason="no Dockerfile"),
        ImageResult(name="serve", status="failed", reason="Dockerfile.serve: exit 1"),
        ImageResult(name="serve", status="built", after=None),
    ],
    ids=["skipped", "failed", "no-image"],
)
def test_skipped_when_no_image_was_built(tmp_path: Path, image: ImageResult) -> None:
    fake = FakeBuilder()

    (result,) = verify(tmp_path, fake, images=(image,))

    assert result.status == "skipped"
    assert result.reason == "no image was built"
    assert result.install_check.status == "skipped"
    assert result.pip_check.status == "skipped"
    assert result.ok
    assert fake.runs == []


def test_skipped_without_a_builder(tmp_path: Path) -> None:
    (result,) = verify(tmp_path, None)
    assert result.status == "skipped"
    assert result.reason == "no image was built"


def test_no_test_skips_the_tests_but_not_the_checks(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    (result,) = verify(tmp_path, fake, run_tests=False)

    assert result.status == "skipped"
    assert result.reason == "turned off with --no-test"
    assert result.install_check.status == "passed"
    assert result.pip_check.status == "passed"
    assert [s.command for s in fake.runs] == [INSTALL_CHECK, PIP_CHECK]


def test_no_test_command(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    (result,) = verify(tmp_path, fake, env(test_command=None))

    assert result.status == "skipped"
    assert result.reason == "no test_command configured"
    assert result.install_check.status == "passed"
    assert len(fake.runs) == 2


def test_each_image_gets_its_result(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())
    train_image = ImageInfo("localhost/lockwarden/ml-service-train:1", "sha256:" + "c" * 64, 1, ())

    results = verify(
        tmp_path,
        fake,
        env("serve"),
        env("train"),
        images=(built("serve"), ImageResult(name="train", status="built", after=train_image)),
    )

    assert [r.name for r in results] == ["serve", "train"]
    assert {s.image for s in fake.runs} == {AFTER.reference, train_image.reference}


# -- the checks ------------------------------------------------------------------------------


def test_install_check_mounts_the_lock_read_only(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    verify(tmp_path, fake, env(lock="locks/serve.lock.txt"))

    install = fake.run_of(INSTALL_CHECK)
    assert install.image == AFTER.reference
    assert install.mounts == (Mount(tmp_path / "locks/serve.lock.txt", LOCK_MOUNT),)
    assert install.mounts[0].read_only is True
    assert LOCK_MOUNT == "/tmp/lockwarden/requirements.txt"
    assert install.command[-2:] == ("-r", LOCK_MOUNT)
    assert {"--no-index", "--require-hashes", "--no-deps", "--dry-run"} <= set(install.command)
    assert install.network is False
    assert install.env == {}
    assert install.timeout_s == CHECK_TIMEOUT_S


def test_pip_check_has_no_mounts(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    verify(tmp_path, fake)

    pip_check = fake.run_of(PIP_CHECK)
    assert pip_check.image == AFTER.reference
    assert pip_check.mounts == ()
    assert pip_check.network is False
    assert pip_check.timeout_s == CHECK_TIMEOUT_S


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("passed", "passed"),
        ("failed", "failed"),
        ("errored", "errored"),
        ("timed-out", "errored"),
        ("skipped", "errored"),
    ],
)
def test_check_statuses(tmp_path: Path, status: TestStatus, expected: TestStatus) -> None:
    (install_result,) = verify(tmp_path, FakeBuilder(answers(install=status)))
    (pip_result,) = verify(tmp_path, FakeBuilder(answers(pip=status)))

    assert install_result.install_check == CheckResult(expected, "Would install beta-1.0.1")
    assert install_result.pip_check.status == "passed"
    assert pip_result.pip_check == CheckResult(expected, "No broken requirements found.")
    assert pip_result.install_check.status == "passed"
    assert install_result.ok is (expected == "passed")
    assert pip_result.ok is (expected == "passed")


# -- the tests -------------------------------------------------------------------------------


def test_test_run_spec_from_the_environment(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    (result,) = verify(
        tmp_path,
        fake,
        env(test_network=True, test_memory="512m", test_cpus=2.5, test_timeout_s=90),
    )

    tests = fake.run_of(TEST_COMMAND)
    assert tests.image == AFTER.reference
    assert tests.network is True
    assert tests.memory == "512m"
    assert tests.cpus == 2.5
    assert tests.timeout_s == 90
    assert tests.mounts == ()
    assert tests.env == {}  # nothing of the bot's environment
    assert result.status == "passed"
    assert result.duration_s == 7.5
    assert result.log_tail == "3 passed in 0.10s"
    assert result.reason is None
    assert result.ok


def test_test_run_spec_defaults(tmp_path: Path) -> None:
    fake = FakeBuilder(answers())

    verify(tmp_path, fake, env(test_command="pytest -x 'tests/unit tests'"))

    tests = fake.run_of(("pytest", "-x", "tests/unit tests"))
    assert tests.network is False
    assert tests.memory == "2g"
    assert tests.cpus == 1.0
    assert tests.timeout_s == 600


@pytest.mark.parametrize("status", ["passed", "failed", "errored", "timed-out"])
def test_test_status_is_passed_through(tmp_path: Path, status: TestStatus) -> None:
    (result,) = verify(tmp_path, FakeBuilder(answers(tests=status)))

    assert result.status == status
    assert result.install_check.status == "passed"
    assert result.ok is (status == "passed")


# -- TestResult.ok ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "install", "pip", "ok"),
    [
        ("passed", "passed", "passed", True),
        ("skipped", "skipped", "skipped", True),
        ("skipped", "passed", "passed", True),
        ("passed", "skipped", "skipped", True),
        ("failed", "passed", "passed", False),
        ("errored", "passed", "passed", False),
        ("timed-out", "passed", "passed", False),
        ("passed", "failed", "passed", False),
        ("passed", "passed", "errored", False),
        ("skipped", "failed", "passed", False),
    ],
)
def test_result_ok(status: TestStatus, install: TestStatus, pip: TestStatus, ok: bool) -> None:
    result = TestResult(
        "serve", status, install_check=CheckResult(install), pip_check=CheckResult(pip)
    )
    assert result.ok is ok


def test_result_defaults() -> None:
    result = TestResult("serve", "passed")
    assert result.install_check == CheckResult("skipped")
    assert result.pip_check == CheckResult("skipped")
    assert result.duration_s == 0.0
    assert result.ok
