"""The pull request of a refresh: title, ledger commit message, body with rollback notes,
the cut that keeps a huge report under GitHub's limit, and the check run's summary."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bot.config import LoadedConfig, RepoConfig
from bot.images import Finding, ImageInfo
from bot.ledger import EnvRecord, LedgerEntry, lock_sha256, parse_trailers
from bot.locks.diff import LockDiff, PackageChange
from bot.locks.modes import CompileMode
from bot.report import messages, pull_request
from bot.report.markdown import render_markdown
from bot.report.pull_request import (
    BODY_LIMIT,
    PR_MARKER,
    Rollback,
    changed_environments,
    check_summary,
    commit_text,
    lint_findings,
    lock_records,
    pr_body,
    pr_title,
)
from bot.results import (
    CheckResult,
    CompileStageResult,
    ImageResult,
    LockResult,
    RunResult,
    TestResult,
)

GITHUB_LIMIT = 65_536
NUMPY_UP = PackageChange("numpy", "1.26.4", "2.0.0", "upgraded", "major", direct=True)
BASE_SHA = "a" * 40
COMMIT_SHA = "c0ffee" + "0" * 34
ROLLBACK = Rollback("main", BASE_SHA, COMMIT_SHA)
KNOWN_GOOD = LedgerEntry(
    commit="0123456789abcdef0123456789abcdef01234567",
    date="2024-05-01T12:00:00+02:00",
    subject="Update locks: serve",
    mode="full",
    environments=(EnvRecord("serve", "requirements/serve.txt", "sha256:" + "5" * 64),),
)


def lock(
    name: str,
    status: str = "changed",
    *,
    changes: tuple[PackageChange, ...] = (NUMPY_UP,),
    new_text: str | None = "",
    **extra: Any,
) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="uv",
        status=status,  # type: ignore[arg-type]
        diff=LockDiff(changes if status == "changed" else ()),
        new_text=(new_text or f"numpy==2.0.0\n# {name}\n") if status == "changed" else None,
        **extra,
    )


def info(char: str, *, repo_digest: str | None = None) -> ImageInfo:
    return ImageInfo(
        reference=f"localhost/lockwarden/svc:{char * 16}",
        image_id="sha256:" + char * 64,
        size=100_000_000,
        layers=("sha256:" + char * 64,),
        repo_digest=repo_digest,
    )


def built(
    name: str, before: ImageInfo | None = None, after: ImageInfo | None = None, **extra: Any
) -> ImageResult:
    return ImageResult(
        name=name,
        status="built",
        dockerfile=f"Dockerfile.{name}",
        before=before,
        after=after or info("b"),
        **extra,
    )


def outcome(name: str, status: str = "passed", log: str = "3 passed") -> TestResult:
    return TestResult(name, status, duration_s=1.0, log_tail=log)  # type: ignore[arg-type]


def run_result(
    *locks: LockResult,
    images: tuple[ImageResult, ...] = (),
    tests: tuple[TestResult, ...] = (),
    mode: CompileMode = CompileMode(),  # noqa: B008 - frozen dataclass
    known_good: LedgerEntry | None = None,
) -> RunResult:
    results = locks or (lock("serve"),)
    return RunResult(
        repo="acme/ml-service",
        config=LoadedConfig(RepoConfig(), source=".github/lockwarden.yml"),
        mode=mode,
        compiled=CompileStageResult(results, (), tuple(r.name for r in results)),
        images=images,
        tests=tests,
        builder="buildah" if images else None,
        duration_s=3.0,
        known_good=known_good,
    )


# -- title ------------------------------------------------------------------------------------


def test_title_lists_only_the_changed_environments_in_order() -> None:
    result = run_result(
        lock("serve"), lock("docs", "unchanged"), lock("train", "failed"), lock("dev")
    )
    assert changed_environments(result) == ["serve", "dev"]
    assert pr_title(result) == "Update locks: serve, dev"


@pytest.mark.parametrize(
    ("mode", "title"),
    [
        pytest.param(CompileMode("minimal"), "Update locks: serve", id="minimal"),
        pytest.param(CompileMode("targeted", ("numpy",)), "Update locks: serve", id="targeted"),
        pytest.param(CompileMode("full"), "Refresh locks: serve", id="full"),
    ],
)
def test_title_depends_on_the_mode(mode: CompileMode, title: str) -> None:
    assert pr_title(run_result(lock("serve"), mode=mode)) == title


def test_title_without_changes() -> None:
    assert pr_title(run_result(lock("serve", "unchanged"))) == "Update locks: no changes"


# -- lock records and the commit message ------------------------------------------------------


def test_lock_records_take_the_pushed_digest_then_the_image_id_and_the_test_status() -> None:
    pushed = "registry.example/svc@sha256:" + "d" * 64
    result = run_result(
        lock("serve"),
        lock("train"),
        lock("docs"),
        lock("dev"),
        lock("old", "unchanged"),
        images=(
            built("serve", after=info("b", repo_digest=pushed)),
            built("train", after=info("e")),
            ImageResult(name="dev", status="failed", reason="exit status 1"),
        ),
        tests=(outcome("serve"), outcome("train", "failed"), outcome("dev", "skipped")),
    )

    records = {r.name: r for r in lock_records(result)}

    assert list(records) == ["serve", "train", "docs", "dev"]  # unchanged ones are not committed
    assert (records["serve"].digest, records["serve"].tests) == (pushed, "passed")
    assert (records["train"].digest, records["train"].tests) == ("sha256:" + "e" * 64, "failed")
    assert (records["docs"].digest, records["docs"].tests) == (None, None)  # no image, no tests
    assert (records["dev"].digest, records["dev"].tests) == (None, "skipped")  # build failed
    assert records["serve"].lock == "requirements/serve.txt"
    assert records["serve"].text == "numpy==2.0.0\n# serve\n"


def test_a_changed_lock_without_new_text_is_not_recorded() -> None:
    changed_but_unwritten = LockResult(
        name="serve",
        spec="requirements/serve.in",
        lock="requirements/serve.txt",
        backend="uv",
        status="changed",
        diff=LockDiff((NUMPY_UP,)),
    )
    assert lock_records(run_result(changed_but_unwritten)) == []


def test_commit_message_has_subject_body_and_trailers_that_parse_back() -> None:
    result = run_result(
        lock("serve"),
        lock("train"),
        lock("docs", "unchanged"),
        images=(built("serve", after=info("b")),),
        tests=(outcome("serve"), outcome("train", "failed")),
        mode=CompileMode("full"),
    )

    text = commit_text(result)

    subject, body, trailer_block = text.rstrip("\n").split("\n\n")
    assert subject == "Refresh locks: serve, train"
    assert body == "Recompiled serve, train (full refresh) with Lockwarden."
    entry = parse_trailers("c" * 40, "2024-01-01T00:00:00+00:00", subject, trailer_block)
    assert entry is not None
    assert entry.mode == "full"
    assert [(e.name, e.lock) for e in entry.environments] == [
        ("serve", "requirements/serve.txt"),
        ("train", "requirements/train.txt"),
    ]
    serve, train = entry.environments
    assert serve.lock_sha256 == lock_sha256("numpy==2.0.0\n# serve\n")
    assert (serve.digest, serve.tests) == ("sha256:" + "b" * 64, "passed")
    assert (train.digest, train.tests) == (None, "failed")
    assert not entry.known_good


def test_commit_message_of_a_passing_minimal_refresh_is_known_good() -> None:
    result = run_result(lock("serve"), tests=(outcome("serve"),))
    subject, body, trailer_block = commit_text(result).rstrip("\n").split("\n\n")
    assert body == "Recompiled serve (minimal refresh) with Lockwarden."
    entry = parse_trailers("c" * 40, "", subject, trailer_block)
    assert entry is not None
    assert entry.known_good


# -- body ------------------------------------------------------------------------------------


def rollback_section(body: str) -> str:
    start = body.index(messages.ROLLBACK_TITLE)
    return body[start : body.index(PR_MARKER)]


def test_body_is_the_report_then_rollback_notes_then_the_marker() -> None:
    result = run_result(lock("serve"), tests=(outcome("serve"),), known_good=KNOWN_GOOD)

    body = pr_body(result, ROLLBACK)

    assert body.startswith(render_markdown(result))
    assert body.endswith(PR_MARKER)
    assert body.count(PR_MARKER) == 1
    assert "[!CAUTION]" not in body
    notes = rollback_section(body)
    assert notes == (
        "### Rollback\n"
        "\n"
        "Before merging, comment on this pull request:\n"
        "\n"
        "- `/lockwarden rollback numpy` (any packages; `--env ENV` for some environments only): "
        f"pins them back to their versions on `main` at `{BASE_SHA}` and recompiles the rest.\n"
        f"- `/lockwarden rollback`: every lock back to `main` at `{BASE_SHA}`; the pull "
        "request, left with nothing to propose, is closed. Closing it yourself does the same.\n"
        "\n"
        "After merging, comment on this pull request or on an issue:\n"
        "\n"
        "- `/lockwarden rollback --to known-good`: opens a pull request that restores every "
        "lock (and the images' base digests and OS package pins) of the known-good set "
        "0123456789ab of 2024-05-01, the newest whose tests all passed, rebuilt and retested.\n"
        f"- Or revert by hand: `git revert {COMMIT_SHA}`.\n"
        "\n"
    )


def test_without_a_known_good_set_the_rollback_notes_say_so_and_name_the_base_commit() -> None:
    notes = rollback_section(pr_body(run_result(lock("serve")), ROLLBACK))

    assert "known-good set 0" not in notes
    assert (
        "- There is no known-good set (a merged Lockwarden pull request whose tests all passed) "
        "among the recent commits of `main`, so `/lockwarden rollback --to known-good` would "
        f"refuse unless an older one exists. `/lockwarden rollback --to {BASE_SHA}` opens a pull "
        "request that restores the locks from before this one, rebuilt and retested.\n"
    ) in notes
    assert "`/lockwarden rollback numpy`" in notes
    assert "- `/lockwarden rollback`: every lock back to `main`" in notes


def test_the_rollback_example_names_a_changed_package_only_when_it_is_a_plain_name() -> None:
    odd = PackageChange("`evil` @x", "1", "2", "upgraded", "major", direct=True)
    plain = rollback_section(pr_body(run_result(lock("serve", changes=(odd, NUMPY_UP))), ROLLBACK))
    none = rollback_section(pr_body(run_result(lock("serve", changes=(odd,))), ROLLBACK))

    assert "`/lockwarden rollback numpy`" in plain
    assert "evil" not in plain
    assert "`/lockwarden rollback PACKAGE`" in none
    assert "evil" not in none


def test_a_known_good_commit_that_is_not_a_sha_is_shown_as_code() -> None:
    odd = replace(KNOWN_GOOD, commit="@someone #1", date="[x](y)")
    notes = rollback_section(pr_body(run_result(lock("serve"), known_good=odd), ROLLBACK))

    assert "known-good set `@someone #1` of \\[x\\](y)," in notes


def test_body_without_a_commit_has_no_revert_line() -> None:
    body = pr_body(run_result(lock("serve")), Rollback("develop", BASE_SHA))
    notes = rollback_section(body)
    assert f"`develop` at `{BASE_SHA}`" in notes
    assert "/lockwarden rollback" in notes
    assert "git revert" not in notes


def test_body_lists_the_previous_image_digests_to_redeploy() -> None:
    pushed = "registry.example/svc@sha256:" + "9" * 64
    result = run_result(
        lock("serve"),
        lock("train"),
        lock("dev"),
        lock("docs"),
        images=(
            built("serve", before=info("a", repo_digest=pushed)),
            built("train", before=info("1")),
            built("dev"),  # a new image: nothing to go back to
            ImageResult(name="docs", status="failed", reason="boom", before=info("2")),
        ),
    )

    notes = rollback_section(pr_body(result, ROLLBACK))

    assert messages.ROLLBACK_IMAGES in notes
    assert f"- `serve`: `{pushed}`" in notes
    assert f"- `train`: `sha256:{'1' * 64}`" in notes
    assert "`dev`:" not in notes
    assert "`docs`:" not in notes  # its build failed: the old image is still the current one


def test_failed_tests_put_a_caution_and_the_log_tail_first() -> None:
    log = "\n".join(f"line {i}" for i in range(1, 31))
    result = run_result(
        lock("serve"),
        lock("train"),
        lock("dev"),
        tests=(outcome("serve", "failed", log), outcome("train"), outcome("dev", "errored", "")),
    )

    body = pr_body(result, ROLLBACK)

    assert pull_request.tests_failed(result)
    assert body.startswith("> [!CAUTION]\n> **Tests failed** in serve, dev:")
    excerpt = body[: body.index(messages.TITLE.format(repo="`acme/ml-service`"))]
    assert "<details open><summary>serve</summary>" in excerpt
    assert "line 11\n" in excerpt
    assert "line 30\n" in excerpt
    assert "line 10\n" not in excerpt  # only the last 20 lines
    assert "<details open><summary>dev</summary>\n\n```text\n(no output)\n```" in excerpt
    assert "<summary>train</summary>" not in excerpt
    assert body.endswith(PR_MARKER)


def test_failed_install_check_counts_as_failed_tests() -> None:
    failing = TestResult("serve", "passed", install_check=CheckResult("failed", "conflict"))
    result = run_result(lock("serve"), tests=(failing,))
    assert pull_request.tests_failed(result)
    assert "[!CAUTION]" in pr_body(result, ROLLBACK)


def huge_result(*, failing_tests: bool = False) -> RunResult:
    changes = tuple(
        PackageChange(f"package-{i:04d}", "1.0.0", "1.0.1", "upgraded", "patch", direct=False)
        for i in range(3000)
    )
    broken = lock(
        "broken",
        "failed",
        error="no release of ghost matches",
        tool_output="ERROR: ghost\n" * 10,
    )
    tests = (outcome("serve", "failed", "AssertionError: boom"),) if failing_tests else ()
    return run_result(broken, lock("serve", changes=changes), tests=tests)


def test_a_huge_report_is_collapsed_and_cut_to_fit_with_a_pointer_to_the_check_run() -> None:
    result = huge_result()
    assert len(render_markdown(result)) > 3 * GITHUB_LIMIT
    assert "<details open>" in render_markdown(result)

    body = pr_body(result, ROLLBACK, check_url="https://github.example/acme/svc/runs/7")

    assert len(body) <= BODY_LIMIT <= GITHUB_LIMIT
    assert "<details open>" not in body
    assert "<details><summary><b>broken</b>" in body
    pointer = messages.PR_TRUNCATED.format(where="https://github.example/acme/svc/runs/7")
    assert pointer in body
    assert "package-2999" not in body
    notes = rollback_section(body)
    assert f"`git revert {COMMIT_SHA}`" in notes
    assert body.endswith(PR_MARKER)
    # the cut falls between lines, and the section it fell in is closed before the pointer
    before_pointer = body[: body.index(pointer)].rstrip("\n")
    assert before_pointer.endswith("</details>")
    assert (
        before_pointer.removesuffix("</details>")
        .rstrip("\n")
        .rsplit("\n", 1)[-1]
        .startswith("| [package-")
    )
    assert_blocks_closed_before_the_rollback_notes(body)


def assert_blocks_closed_before_the_rollback_notes(body: str) -> None:
    """Nothing the cut left open may swallow the rollback notes."""
    head = body[: body.index(messages.ROLLBACK_TITLE)]
    lines = head.splitlines()
    assert sum(line.startswith("```") for line in lines) % 2 == 0
    assert sum(line.startswith("<details") for line in lines) == sum(
        line.startswith("</details>") for line in lines
    )


def test_a_cut_inside_a_failure_log_closes_the_code_block_and_the_section() -> None:
    log = "".join(f"error line {i}: something <went> wrong\n" for i in range(5000))
    result = run_result(lock("serve"), lock("broken", "failed", error="boom", tool_output=log))

    body = pr_body(result, ROLLBACK)

    assert len(body) <= BODY_LIMIT
    assert "error line 4999" not in body
    pointer = messages.PR_TRUNCATED.format(where="the lockwarden check run")
    before_pointer = body[: body.index(pointer)].rstrip("\n")
    assert before_pointer.endswith("```\n\n</details>")
    assert_blocks_closed_before_the_rollback_notes(body)
    assert body.endswith(PR_MARKER)


def many_failures(padding: int) -> RunResult:
    """100 failed environments (each an open section); the last one's output is padded."""
    locks = [
        lock(f"env{i:03d}", "failed", error="boom", tool_output="x" * (padding if i == 99 else 10))
        for i in range(100)
    ]
    return run_result(*locks)


def test_a_report_just_over_the_limit_is_collapsed_and_not_cut() -> None:
    # Collapsing 100 open sections saves 500 characters: enough to fit without a cut.
    fitting = len(pr_body(many_failures(10), ROLLBACK))
    assert fitting < BODY_LIMIT
    result = many_failures(10 + BODY_LIMIT - fitting + 1)
    report = render_markdown(result)
    assert report.count("<details open>") == 100

    body = pr_body(result, ROLLBACK)

    assert len(body) <= BODY_LIMIT
    assert "<details open>" not in body
    assert body.count("<details>") == 100
    assert body.replace("<details>", "<details open>").startswith(report)  # nothing cut
    assert "The report is cut here" not in body
    assert body.endswith(PR_MARKER)


def test_a_huge_report_without_a_check_url_points_at_the_check_run_by_name() -> None:
    body = pr_body(huge_result(), ROLLBACK)
    assert len(body) <= BODY_LIMIT
    assert messages.PR_TRUNCATED.format(where="the lockwarden check run") in body


def test_a_huge_report_keeps_the_failure_excerpt_open() -> None:
    body = pr_body(huge_result(failing_tests=True), ROLLBACK)
    assert len(body) <= BODY_LIMIT
    assert body.startswith("> [!CAUTION]")
    assert "<details open><summary>serve</summary>" in body  # the excerpt, above the report
    assert body.count("<details open>") == 1
    assert "AssertionError: boom" in body
    assert_blocks_closed_before_the_rollback_notes(body)
    assert body.endswith(PR_MARKER)


# -- check run -------------------------------------------------------------------------------


def test_check_summary_of_a_passing_run() -> None:
    result = run_result(
        lock("serve"),
        lock("train"),
        lock("docs", "unchanged"),
        images=(built("serve"), built("train")),
        tests=(outcome("serve"), outcome("train")),
    )
    title, summary = check_summary(result)
    assert title == "Locks of 2 environment(s) refreshed; images built and tested"
    assert summary == render_markdown(result)


def test_check_summary_names_every_failure_once_sorted() -> None:
    result = run_result(
        lock("train", "failed", error="no release of ghost"),
        lock("serve"),
        lock("dev"),
        lock("docs"),
        images=(
            built("serve"),
            ImageResult(name="dev", status="failed", reason="exit status 1"),
            built("docs"),
        ),
        tests=(outcome("serve", "failed"), outcome("dev", "skipped"), outcome("docs")),
    )
    title, _ = check_summary(result)
    assert title == "Failed: dev, serve, train"


def test_lint_findings_of_every_image_in_order() -> None:
    first = Finding("LW001", "error", "Dockerfile.serve", 3, "lock not installed")
    second = Finding("DL3008", "warning", "Dockerfile.serve", 5, "pin apt", source="hadolint")
    third = Finding("LW006", "info", "Dockerfile.train", 1, "unpinned pip")
    result = run_result(
        lock("serve"),
        lock("train"),
        images=(
            built("serve", findings=(first, second)),
            built("train", findings=(third,)),
            ImageResult(name="docs", status="skipped", reason="no Dockerfile"),
        ),
    )
    assert lint_findings(result) == [first, second, third]
    assert lint_findings(run_result()) == []
