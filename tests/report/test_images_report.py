"""Images, tests and Dockerfile findings in the Markdown report and in the JSON report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.images import Finding, ImageInfo
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.results import (
    CheckResult,
    CompileStageResult,
    ImageResult,
    LockResult,
    RunResult,
    TestResult,
)


def lock(name: str, status: str = "changed") -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="uv",
        status=status,  # type: ignore[arg-type]
        diff=LockDiff(
            (PackageChange("numpy", "1.26.4", "2.0.0", "upgraded", "major", direct=True),)
        )
        if status == "changed"
        else LockDiff(()),
        compile_s=1.0,
    )


def image(reference: str, char: str, size: int, layers: int = 3, **extra: Any) -> ImageInfo:
    return ImageInfo(
        reference=reference,
        image_id="sha256:" + char * 64,
        size=size,
        layers=tuple(f"sha256:{i}" + char * 63 for i in range(layers)),
        **extra,
    )


BEFORE = image("localhost/lockwarden/ml-service-serve:1111111111111111", "a", 182_000_000)
AFTER = image("localhost/lockwarden/ml-service-serve:2222222222222222", "b", 183_250_000)
FINDING = Finding(
    "LW006",
    "warning",
    "Dockerfile.serve",
    4,
    "`pip install --upgrade pip` takes whatever version is <newest> | unpinned",
)
HADOLINT = Finding(
    "DL3059", "info", "Dockerfile.serve", 4, "Multiple consecutive `RUN`", source="hadolint"
)

SERVE = ImageResult(
    name="serve",
    status="built",
    dockerfile="Dockerfile.serve",
    before=BEFORE,
    after=AFTER,
    before_cached=True,
    reproducible=True,
    findings=(FINDING, HADOLINT),
    build_s=12.34567,
    log_tail="COMMIT localhost/lockwarden/ml-service-serve:2222222222222222",
)
TRAIN = ImageResult(
    name="train",
    status="failed",
    reason='Dockerfile.train: building at STEP "RUN pip install -r a|b <x>": exit status 1',
    dockerfile="Dockerfile.train",
    build_s=3.0,
    log_tail="STEP 2/2: RUN pip install\n```\nERROR: No matching distribution found for ghost",
)
DOCS = ImageResult(
    name="docs",
    status="skipped",
    reason="no Dockerfile configured or discovered",
)
SERVE_TESTS = TestResult(
    "serve",
    "passed",
    duration_s=7.891,
    log_tail="3 passed in 0.12s",
    install_check=CheckResult("passed", "Would install numpy-2.0.0"),
    pip_check=CheckResult("passed", "No broken requirements found."),
)
TRAIN_TESTS = TestResult("train", "skipped", reason="no image was built")
DOCS_TESTS = TestResult("docs", "skipped", reason="no image was built")


def run_result(
    images: tuple[ImageResult, ...] = (SERVE, TRAIN, DOCS),
    tests: tuple[TestResult, ...] = (SERVE_TESTS, TRAIN_TESTS, DOCS_TESTS),
    locks: tuple[LockResult, ...] | None = None,
) -> RunResult:
    results = locks or tuple(lock(i.name) for i in images) or (lock("serve"),)
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(), source=".github/lockwarden.yml"),
        mode=CompileMode(),
        compiled=CompileStageResult(results, (), tuple(r.name for r in results)),
        images=images,
        tests=tests,
        builder="buildah",
        duration_s=30.0,
    )


def markdown(**kwargs: Any) -> str:
    return render_markdown(run_result(**kwargs))


def images_section(text: str) -> str:
    return text.split("### Images", 1)[1]


# -- Markdown: the table ---------------------------------------------------------------------


def test_no_images_no_section() -> None:
    assert "### Images" not in markdown(images=(), tests=(), locks=(lock("serve"),))


def test_table_rows_per_status() -> None:
    text = markdown()

    assert "### Images" in text
    assert (
        "| environment | before | after | size | change | layers | reproducible | tests |"
    ) in text
    rows = [line for line in images_section(text).splitlines() if line.startswith("| `")]
    assert rows[:3] == [
        "| `serve` | `sha256:aaaaaaaaaaaa` (cached) | `sha256:bbbbbbbbbbbb` | 183.2 MB "
        "| +1.2 MB | 3 | ✅ yes | ✅ passed |",
        "| `train` | | ❌ build failed | | | | | Dockerfile.train: building at STEP "
        '"RUN pip install -r a\\|b &lt;x&gt;": exit status 1 |',
        "| `docs` | | | | | | | skipped: no Dockerfile configured or discovered |",
    ]


def test_images_come_after_the_lock_sections() -> None:
    text = markdown()
    assert text.index("<details><summary><b>serve</b>") < text.index("### Images")


@pytest.mark.parametrize(
    ("before", "after", "delta"),
    [
        (182_000_000, 183_250_000, "+1.2 MB"),
        (183_250_000, 182_750_000, "-0.5 MB"),
        (183_250_000, 183_250_000, "+0.0 MB"),
        (1_000_000_000, 3_500_000, "-996.5 MB"),
        (None, 183_250_000, "new"),
    ],
)
def test_size_and_signed_delta(before: int | None, after: int, delta: str) -> None:
    built = ImageResult(
        name="serve",
        status="built",
        before=image("localhost/x:1", "a", before) if before is not None else None,
        after=image("localhost/x:2", "b", after),
    )

    row = next(
        line
        for line in images_section(markdown(images=(built,), tests=())).splitlines()
        if "`serve` |" in line
    )

    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == f"{after / 1_000_000:.1f} MB"
    assert cells[4] == delta
    if before is None:
        assert cells[1] == ""


def test_cached_marker_only_when_cached() -> None:
    fresh = ImageResult(name="serve", status="built", before=BEFORE, after=AFTER)
    text = markdown(images=(fresh,), tests=())
    assert "(cached)" not in text
    assert "| `sha256:aaaaaaaaaaaa` | `sha256:bbbbbbbbbbbb` |" in text


def test_unchanged_lock_shows_the_same_digest_twice() -> None:
    same = ImageResult(name="serve", status="built", before=AFTER, after=AFTER)
    text = markdown(images=(same,), tests=())
    assert "| `sha256:bbbbbbbbbbbb` | `sha256:bbbbbbbbbbbb` | 183.2 MB | +0.0 MB |" in text


def test_pushed_images_show_their_repo_digests() -> None:
    registry = "127.0.0.1:5000/acme/ml-service-serve"
    pushed = ImageResult(
        name="serve",
        status="built",
        before=image("localhost/x:1", "a", 1, repo_digest=f"{registry}@sha256:" + "c" * 64),
        after=image("localhost/x:2", "b", 1, repo_digest=f"{registry}@sha256:" + "d" * 64),
    )

    text = markdown(images=(pushed,), tests=())

    assert f"`{registry}@sha256:cccccccccccc`" in text
    assert f"`{registry}@sha256:dddddddddddd`" in text
    assert "sha256:bbbbbbbbbbbb" not in text


@pytest.mark.parametrize(
    ("reproducible", "cell"),
    [(True, "✅ yes"), (False, "⚠️ **no**"), (None, "not checked")],
)
def test_reproducible_cell(reproducible: bool | None, cell: str) -> None:
    built = ImageResult(
        name="serve", status="built", before=BEFORE, after=AFTER, reproducible=reproducible
    )
    assert f"| 3 | {cell} |" in markdown(images=(built,), tests=())


def test_tests_cell() -> None:
    failing = TestResult("serve", "timed-out", duration_s=600.0)
    assert "| ✅ yes | ⏱️ timed out |" in markdown(images=(SERVE,), tests=(failing,))
    assert "| ✅ yes |  |" in markdown(images=(SERVE,), tests=())


# -- Markdown: warnings and details ----------------------------------------------------------


def test_non_reproducible_warning_block() -> None:
    flaky = ImageResult(
        name="serve",
        status="built",
        before=BEFORE,
        after=AFTER,
        reproducible=False,
        differences=("layer 3: sha256:2bbbbbbbbbbb vs sha256:ffffffffffff", "a|b <c>"),
    )

    section = images_section(markdown(images=(flaky, DOCS), tests=()))

    assert (
        "> [!WARNING]\n> **Not reproducible**: rebuilding `serve` without cache gave a "
        "different image: layer 3: sha256:2bbbbbbbbbbb vs sha256:ffffffffffff; "
        "a\\|b &lt;c&gt;."
    ) in section
    assert section.index("[!WARNING]") < section.index("| environment |")
    assert section.count("[!WARNING]") == 1


def test_no_warning_when_reproducible_or_not_checked() -> None:
    unchecked = ImageResult(name="docs", status="built", before=BEFORE, after=AFTER)
    assert "Not reproducible" not in markdown(images=(SERVE, unchecked), tests=())


def test_build_failure_details() -> None:
    section = images_section(markdown())

    assert (
        "<details open><summary><b>train</b>: image build failed</summary>\n\n"
        '**Dockerfile.train: building at STEP "RUN pip install -r a\\|b &lt;x&gt;": '
        "exit status 1**\n\n````text\nSTEP 2/2: RUN pip install\n```\n"
        "ERROR: No matching distribution found for ghost\n````\n</details>"
    ) in section
    assert section.count("image build failed") == 1


def test_build_failure_without_output() -> None:
    broken = ImageResult(name="train", status="failed", reason="Dockerfile.train: boom")
    assert "```text\n(no output)\n```" in markdown(images=(broken,), tests=())


def test_passing_tests_details_are_closed_and_show_only_the_tests_log() -> None:
    section = images_section(markdown())

    assert (
        "<details><summary><b>serve</b>: tests ✅ passed in 7.9 s; lock install check "
        "✅ passed, pip check ✅ passed</summary>\n\n```text\n3 passed in 0.12s\n```\n"
        "</details>"
    ) in section
    assert "Would install" not in section


def test_failing_tests_details_are_open_with_every_log() -> None:
    failing = TestResult(
        "serve",
        "failed",
        duration_s=2.0,
        log_tail="FAILED tests/test_model.py::test_predict",
        install_check=CheckResult("failed", "ERROR: numpy==2.0.0 is not installed"),
        pip_check=CheckResult("passed", "No broken requirements found."),
    )

    section = images_section(markdown(images=(SERVE,), tests=(failing,)))

    assert (
        "<details open><summary><b>serve</b>: tests ❌ failed in 2.0 s; lock install check "
        "❌ failed, pip check ✅ passed</summary>\n\n```text\n"
        "FAILED tests/test_model.py::test_predict\n"
        "ERROR: numpy==2.0.0 is not installed\n"
        "No broken requirements found.\n```\n</details>"
    ) in section


def test_failing_check_opens_the_details_of_passing_tests() -> None:
    broken = TestResult(
        "serve",
        "passed",
        log_tail="3 passed",
        install_check=CheckResult("passed"),
        pip_check=CheckResult("failed", "torch 2.3.0 requires numpy<2, but you have 2.0.0"),
    )

    section = images_section(markdown(images=(SERVE,), tests=(broken,)))

    assert "<details open><summary><b>serve</b>: tests ✅ passed" in section
    assert "```text\n3 passed\ntorch 2.3.0 requires numpy<2" in section


def test_check_log_equal_to_the_tests_log_is_not_repeated() -> None:
    log = "ok"
    same = TestResult(
        "serve",
        "passed",
        log_tail=log,
        install_check=CheckResult("passed", log),
        pip_check=CheckResult("passed", log),
    )

    section = images_section(markdown(images=(SERVE,), tests=(same,)))

    assert "```text\nok\n```" in section


def test_skipped_tests_with_checks_show_the_reason() -> None:
    no_test = TestResult(
        "serve",
        "skipped",
        reason="turned off with --no-test",
        install_check=CheckResult("passed", "Would install numpy-2.0.0"),
        pip_check=CheckResult("passed", "No broken requirements found."),
    )

    section = images_section(markdown(images=(SERVE,), tests=(no_test,)))

    assert (
        "<details><summary><b>serve</b>: tests skipped (turned off with --no-test); "
        "lock install check "
        "✅ passed, pip check ✅ passed</summary>\n\n```text\nturned off with --no-test\n```"
    ) in section


def test_skipped_tests_without_checks_have_no_details() -> None:
    section = images_section(markdown())
    assert "<b>train</b>: tests" not in section
    assert "<b>docs</b>: tests" not in section


def test_timed_out_tests_without_output() -> None:
    hung = TestResult(
        "serve",
        "timed-out",
        duration_s=600.0,
        install_check=CheckResult("passed"),
        pip_check=CheckResult("passed"),
    )
    section = images_section(markdown(images=(SERVE,), tests=(hung,)))
    assert "<details open><summary><b>serve</b>: tests ⏱️ timed out in 600.0 s" in section
    assert "```text\n(no output)\n```" in section


def test_findings_table() -> None:
    section = images_section(markdown())

    assert "### Dockerfile findings" in section
    assert "| where | rule | severity | finding |\n|---|---|---|---|" in section
    assert (
        "| `Dockerfile.serve:4` | LW006 | warning | `pip install --upgrade pip` takes "
        "whatever version is &lt;newest&gt; \\| unpinned |"
    ) in section
    assert "| `Dockerfile.serve:4` | DL3059 | info | Multiple consecutive `RUN` |" in section
    assert section.index("### Dockerfile findings") > section.index("image build failed")


def test_no_findings_no_table() -> None:
    clean = ImageResult(name="serve", status="built", before=BEFORE, after=AFTER)
    assert "### Dockerfile findings" not in markdown(images=(clean,), tests=())


def test_findings_of_several_images_in_order() -> None:
    other = Finding("LW003", "warning", "Dockerfile.train", 3, "lock installed without hashes")
    failed = ImageResult(name="train", status="failed", reason="x", findings=(other,))

    section = images_section(markdown(images=(SERVE, failed), tests=()))

    table = section.split("### Dockerfile findings", 1)[1]
    assert table.index("LW006") < table.index("DL3059") < table.index("LW003")


# -- JSON ------------------------------------------------------------------------------------


def environments(**kwargs: Any) -> dict[str, dict[str, Any]]:
    data = to_json(run_result(**kwargs))
    return {e["name"]: e for e in data["environments"]}


def test_json_built_image() -> None:
    serve = environments()["serve"]

    assert serve["image"] == {
        "status": "built",
        "reason": None,
        "dockerfile": "Dockerfile.serve",
        "before": "sha256:" + "a" * 64,
        "after": "sha256:" + "b" * 64,
        "size_before": 182_000_000,
        "size_after": 183_250_000,
        "layers": 3,
        "reproducible": True,
        "differences": [],
        "pushed": {"before": None, "after": None},
        "before_cached": True,
        "log_tail": None,
    }


def test_json_failed_image_has_its_log() -> None:
    train = environments()["train"]

    assert train["image"] == {
        "status": "failed",
        "reason": TRAIN.reason,
        "dockerfile": "Dockerfile.train",
        "before": None,
        "after": None,
        "size_before": None,
        "size_after": None,
        "layers": None,
        "reproducible": None,
        "differences": [],
        "pushed": {"before": None, "after": None},
        "before_cached": False,
        "log_tail": TRAIN.log_tail,
    }


def test_json_skipped_image() -> None:
    docs = environments()["docs"]
    assert docs["image"]["status"] == "skipped"
    assert docs["image"]["reason"] == "no Dockerfile configured or discovered"
    assert docs["image"]["dockerfile"] is None
    assert docs["lint"] == []


def test_json_pushed_and_not_reproducible() -> None:
    registry = "127.0.0.1:5000/acme/ml-service-serve"
    pushed = ImageResult(
        name="serve",
        status="built",
        before=image("localhost/x:1", "a", 1, repo_digest=f"{registry}@sha256:" + "c" * 64),
        after=image("localhost/x:2", "b", 1, repo_digest=f"{registry}@sha256:" + "d" * 64),
        reproducible=False,
        differences=("same layers, different image configuration (labels, history or dates)",),
    )

    data = environments(images=(pushed,), tests=())["serve"]["image"]

    assert data["pushed"] == {
        "before": f"{registry}@sha256:" + "c" * 64,
        "after": f"{registry}@sha256:" + "d" * 64,
    }
    assert data["reproducible"] is False
    assert data["differences"] == [
        "same layers, different image configuration (labels, history or dates)"
    ]


def test_json_new_image_has_no_before() -> None:
    new = ImageResult(name="serve", status="built", after=AFTER)
    data = environments(images=(new,), tests=())["serve"]["image"]
    assert data["before"] is None
    assert data["size_before"] is None
    assert data["pushed"] == {"before": None, "after": None}


def test_json_tests() -> None:
    envs = environments()

    assert envs["serve"]["tests"] == {
        "status": "passed",
        "reason": None,
        "duration_s": 7.891,
        "log_tail": "3 passed in 0.12s",
        "install_check": {"status": "passed", "log_tail": "Would install numpy-2.0.0"},
        "pip_check": {"status": "passed", "log_tail": "No broken requirements found."},
    }
    assert envs["train"]["tests"] == {
        "status": "skipped",
        "reason": "no image was built",
        "duration_s": 0.0,
        "log_tail": "",
        "install_check": {"status": "skipped", "log_tail": ""},
        "pip_check": {"status": "skipped", "log_tail": ""},
    }


def test_json_lint() -> None:
    assert environments()["serve"]["lint"] == [
        {
            "rule": "LW006",
            "severity": "warning",
            "file": "Dockerfile.serve",
            "line": 4,
            "message": FINDING.message,
            "source": "lockwarden",
        },
        {
            "rule": "DL3059",
            "severity": "info",
            "file": "Dockerfile.serve",
            "line": 4,
            "message": "Multiple consecutive `RUN`",
            "source": "hadolint",
        },
    ]


def test_json_timings() -> None:
    envs = environments()
    assert envs["serve"]["timings"] == {"compile_s": 1.0, "build_s": 12.346, "test_s": 7.891}
    assert envs["train"]["timings"] == {"compile_s": 1.0, "build_s": 3.0, "test_s": 0.0}


def test_json_without_images() -> None:
    serve = environments(images=(), tests=(), locks=(lock("serve"),))["serve"]
    assert serve["image"] is None
    assert serve["tests"] is None
    assert serve["lint"] == []
    assert serve["timings"] == {"compile_s": 1.0}


def test_json_environment_without_an_image_among_others() -> None:
    envs = environments(images=(SERVE,), tests=(SERVE_TESTS,), locks=(lock("serve"), lock("lib")))
    assert envs["lib"]["image"] is None
    assert envs["lib"]["tests"] is None
    assert envs["serve"]["image"]["status"] == "built"


def test_json_builder_and_failed_flag() -> None:
    data = to_json(run_result())
    assert data["builder"] == "buildah"
    assert data["failed"] is True  # the train image failed
    assert to_json(run_result(images=(SERVE, DOCS), tests=(SERVE_TESTS,)))["failed"] is False
    json.dumps(data)  # plain JSON
