"""The terminal summary says what a run changed in the Dockerfiles as well as in the locks,
and the live and plain progress show each environment's steps."""

from __future__ import annotations

import io
import threading
from dataclasses import replace

from rich.console import Console

from bot.progress import ProgressEvent
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.report.terminal import LiveProgress, PlainProgress, render_summary
from bot.results import DockerfilePins, PinChange, UnpinnedPackage
from bot.worker import OS_PINS_NOT_REFRESHED
from tests.report.test_markdown import NUMPY_UP, changed, run_result, unchanged

DIGEST = "sha256:" + "ab" * 32
OLD_DIGEST = "sha256:" + "cd" * 32
TEXT = "FROM python:3.12-slim\n"


def pins(*changes: PinChange, **extra: object) -> DockerfilePins:
    return DockerfilePins(
        "Dockerfile",
        ("serve",),
        changes,
        (),
        (),
        (),
        TEXT,
        TEXT + "# changed\n" if changes else TEXT,
        **extra,  # type: ignore[arg-type]
    )


FIRST_PIN = PinChange("base-image", "Dockerfile", 1, "python:3.12-slim", None, DIGEST)
MOVED_PIN = PinChange("base-image", "Dockerfile", 1, "python:3.12-slim", OLD_DIGEST, DIGEST)


def test_a_run_that_only_pins_a_base_image_is_not_summarised_as_unchanged() -> None:
    result = replace(
        run_result(unchanged("serve"), unchanged("eval")), image_pins=(pins(FIRST_PIN),)
    )

    lines = render_summary(result).splitlines()

    assert lines[:4] == [
        "environment  status     changes            compile",
        "serve        changed    Dockerfile: 1 pin     0.5s",
        "eval         unchanged  none                  0.5s",
        "2 environments: 0 locks changed, 1 Dockerfile pin changed (Dockerfile)",
    ]
    assert f"pin: Dockerfile:1: python:3.12-slim pinned to {DIGEST}" in lines
    assert not any("None" in line for line in lines)
    # The pull request's summary line counts it too.
    assert "2 environments · 1 changed · 0 failed" in render_markdown(result)


def test_a_lock_and_pin_change_are_both_shown() -> None:
    result = replace(run_result(changed("serve", NUMPY_UP)), image_pins=(pins(MOVED_PIN),))

    lines = render_summary(result).splitlines()

    assert lines[1].split(None, 2)[:2] == ["serve", "changed"]
    assert "1 upgraded; Dockerfile: 1 pin" in lines[1]
    assert f"pin: Dockerfile:1: python:3.12-slim {OLD_DIGEST} -> {DIGEST}" in lines


def test_a_run_without_pin_changes_keeps_the_plain_table() -> None:
    result = replace(run_result(unchanged("serve")), image_pins=(pins(),))

    assert render_summary(result).splitlines() == [
        "environment  status     changes  compile",
        "serve        unchanged  none        0.5s",
    ]


def test_os_pins_not_refreshed_without_a_builder_is_said_everywhere() -> None:
    unpinned = UnpinnedPackage("Dockerfile", 2, "apt", "curl")
    skipped = replace(pins(), unpinned=(unpinned,), notes=(OS_PINS_NOT_REFRESHED,))
    result = replace(run_result(unchanged("serve")), image_pins=(skipped,))

    summary = render_summary(result)
    data = to_json(result)
    markdown = render_markdown(result)

    assert f"note: Dockerfile: {OS_PINS_NOT_REFRESHED}" in summary
    assert "warning: Dockerfile:2: apt package curl is not pinned" in summary
    assert data["image_pins"][0]["notes"] == [OS_PINS_NOT_REFRESHED]
    assert data["image_pins"][0]["errors"] == []
    assert data["failed"] is False
    assert "OS package pins were not refreshed" in markdown
    assert "run again with a builder" in OS_PINS_NOT_REFRESHED  # says what to do


# -- progress --------------------------------------------------------------------------------

STEPS = (
    ProgressEvent("serve", "compile", "queued"),
    ProgressEvent("eval", "compile", "queued"),
    ProgressEvent("serve", "compile", "running"),
    ProgressEvent("serve", "compile", "done", 2.44, "unchanged"),
    ProgressEvent("eval", "compile", "running"),
    ProgressEvent("eval", "compile", "failed", 1.0, "not-found"),
    ProgressEvent("serve", "build", "running"),
    ProgressEvent("serve", "build", "done", 31.0),
    ProgressEvent("serve", "test", "skipped", None, "no test_command configured"),
)


def test_plain_progress_writes_one_line_per_step() -> None:
    out = io.StringIO()

    progress = PlainProgress(out)
    for event in STEPS:
        progress(event)

    assert out.getvalue().splitlines() == [
        "serve: queued",
        "eval: queued",
        "serve: compiling",
        "serve: compiled in 2.4s (unchanged)",
        "eval: compiling",
        "eval: compile failed after 1.0s (not-found)",
        "serve: building",
        "serve: built in 31.0s",
        "serve: test skipped (no test_command configured)",
    ]


def test_plain_progress_keeps_lines_whole_across_threads() -> None:
    out = io.StringIO()
    progress = PlainProgress(out)

    def report(name: str) -> None:
        for _ in range(200):
            progress(ProgressEvent(name, "compile", "running"))

    threads = [threading.Thread(target=report, args=(f"env{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = out.getvalue().splitlines()
    assert len(lines) == 800
    assert set(lines) == {f"env{i}: compiling" for i in range(4)}


def test_live_progress_draws_each_environment_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(force_terminal=True, file=out, width=120, color_system=None)

    with LiveProgress(console) as progress:
        for event in STEPS[:3]:
            progress(event)
        drawn_while_compiling = out.getvalue()
        for event in STEPS[3:]:
            progress(event)

    assert "serve" in drawn_while_compiling
    assert "compiling 0s" in drawn_while_compiling
    final = out.getvalue()[len(drawn_while_compiling) :]
    last_table = final[final.rindex("lockwarden run") :]
    assert "compiled in 2.4s (unchanged) · built in 31.0s" in last_table
    assert "compile failed after 1.0s (not-found)" in last_table
    assert "done" in last_table
    assert "\x1b[" in out.getvalue()  # redrawn in place: cursor movements
