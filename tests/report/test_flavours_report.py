"""The reports for the other lock flavours and image inputs: Poetry groups and conda builds
in change rows, other platforms' locks and exports, wheel gaps, and the image-inputs
section (pins moved, unpinned packages, images that cannot be pinned, lookup errors)."""

from __future__ import annotations

from dataclasses import replace

from bot.locks.diff import LockDiff, PackageChange
from bot.locks.wheels import WheelGap
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.report.terminal import render_summary
from bot.results import DockerfilePins, OutputFile, PinChange, UnpinnedPackage
from tests.report.test_markdown import changed, run_result, section

DIGEST_1 = "sha256:" + "1" * 64
DIGEST_2 = "sha256:" + "2" * 64

MOVED = PackageChange(
    "devtool",
    "0.1.0",
    "0.1.0",
    "group",
    None,
    direct=True,
    groups=("main",),
    groups_before=("dev",),
)
IN_MAIN = PackageChange("alpha", "1.0", "1.1", "upgraded", "minor", direct=True, groups=("main",))
REBUILT = PackageChange(
    "mlcore",
    "1.1",
    "1.1",
    "rebuilt",
    None,
    direct=True,
    build_before="py311_0 (conda-forge)",
    build_after="py311_1 (conda-forge)",
)
ARM_LOCK = OutputFile(
    "conda-linux-aarch64.lock",
    "platform-lock",
    "linux-aarch64",
    "old",
    "new",
    LockDiff((REBUILT,)),
)
UNCHANGED_EXPORT = OutputFile("requirements.txt", "export", None, "same", "same", LockDiff(()))
GAP = WheelGap("native", "1.0", "linux/arm64", True, "https://index.example/simple")
NO_FILE = WheelGap("torch", "2.1.0+cu121", "linux/arm64", False, None)
PINS = DockerfilePins(
    dockerfile="Dockerfile",
    environments=("serve",),
    changes=(
        PinChange("base-image", "Dockerfile", 1, "python:3.12-slim", DIGEST_1, DIGEST_2),
        PinChange(
            "os-package",
            "Dockerfile",
            4,
            "libgomp1",
            "12.2.0-14",
            "12.2.0-14+deb12u1",
            manager="apt",
            image=f"python:3.12-slim@{DIGEST_2}",
        ),
    ),
    unpinned=(UnpinnedPackage("Dockerfile", 5, "apt", "curl"),),
    unpinnable_images=("${BASE}",),
    errors=("could not resolve registry.example/x:1: unreachable",),
    old_text="old",
    new_text="new",
)


def result_with_everything() -> object:
    poetry = replace(
        changed("serve", IN_MAIN, MOVED), backend="poetry", outputs=(UNCHANGED_EXPORT,)
    )
    conda = replace(
        changed("train", REBUILT),
        backend="conda",
        lock="conda-linux-64.lock",
        platform="linux-64",
        outputs=(ARM_LOCK,),
        old_text="linux old",
        new_text="linux new",
    )
    pip = replace(
        changed("dev", IN_MAIN),
        wheel_gaps=(GAP, NO_FILE),
        wheels_unchecked=("torch: https://index.example/simple answered 503",),
    )
    return replace(run_result(poetry, conda, pip), image_pins=(PINS,))


def test_markdown_change_rows_carry_groups_and_builds() -> None:
    markdown = render_markdown(result_with_everything())  # type: ignore[arg-type]

    serve = section(markdown, "serve")
    assert " · groups dev → main" in serve
    assert " · main" in serve
    assert "requirements.txt" not in serve  # an unchanged export is not listed
    train = section(markdown, "train")
    assert "build `py311_0 (conda-forge)` → `py311_1 (conda-forge)`" in train
    assert "**`conda-linux-aarch64.lock`** (linux-aarch64): 1 rebuilt" in train
    assert "1 moved between groups" in markdown


def test_markdown_wheel_gaps_and_image_inputs() -> None:
    markdown = render_markdown(result_with_everything())  # type: ignore[arg-type]

    assert "⚠️ **No wheel for a target platform**" in markdown
    assert "`native==1.0` on linux/arm64 (dev)" in markdown
    assert "`torch==2.1.0+cu121` on linux/arm64 (no file at all) (dev)" in markdown
    assert "Wheel check incomplete: torch" in section(markdown, "dev")
    inputs = markdown.split("### Image inputs", 1)[1]
    assert "❌ could not resolve registry.example/x:1: unreachable" in inputs
    assert "| `Dockerfile:1` | base image `python:3.12-slim` | `sha256:111111111111` |" in inputs
    assert "| `Dockerfile:4` | apt package `libgomp1` | `12.2.0-14` | `12.2.0-14+deb12u1` |" in (
        inputs
    )
    assert "`curl` (apt, `Dockerfile:5`)" in inputs
    assert "cannot be pinned (built from variables): `${BASE}`" in inputs


def test_terminal_summary_lists_outputs_gaps_and_pins() -> None:
    text = render_summary(result_with_everything())  # type: ignore[arg-type]

    assert "note: train: conda-linux-aarch64.lock: 1 rebuilt" in text
    assert "warning: dev: no wheel of native==1.0 for linux/arm64 (sdist only)" in text
    assert "warning: dev: no wheel of torch==2.1.0+cu121 for linux/arm64 (no file)" in text
    assert "note: dev: wheel check incomplete: torch" in text
    assert f"pin: Dockerfile:1: python:3.12-slim {DIGEST_1} -> {DIGEST_2}" in text
    assert "warning: Dockerfile:5: apt package curl is not pinned" in text
    assert "error: Dockerfile: could not resolve registry.example/x:1" in text


def test_json_has_outputs_gaps_and_pins() -> None:
    data = to_json(result_with_everything())  # type: ignore[arg-type]

    envs = {e["name"]: e for e in data["environments"]}
    assert envs["train"]["platform"] == "linux-64"
    assert envs["train"]["outputs"][0]["changes"][0]["build_after"] == "py311_1 (conda-forge)"
    assert envs["serve"]["outputs"] == [
        {
            "path": "requirements.txt",
            "kind": "export",
            "platform": None,
            "changed": False,
            "changes": [],
            "text_change": None,
        }
    ]
    moved = next(c for c in envs["serve"]["changes"] if c["name"] == "devtool")
    assert (moved["groups_before"], moved["groups"]) == (["dev"], ["main"])
    assert envs["dev"]["wheel_gaps"][1] == {
        "package": "torch",
        "version": "2.1.0+cu121",
        "platform": "linux/arm64",
        "sdist": False,
        "index": None,
    }
    (pins,) = data["image_pins"]
    assert pins["changed"] is True
    assert pins["changes"][1]["image"] == f"python:3.12-slim@{DIGEST_2}"
    assert pins["unpinned"] == [{"file": "Dockerfile", "line": 5, "manager": "apt", "name": "curl"}]
    assert data["failed"] is True  # a lookup error fails the run


def test_changed_files_cover_locks_outputs_and_dockerfiles() -> None:
    result = result_with_everything()
    files = result.changed_files()  # type: ignore[attr-defined]
    assert files == {
        "conda-linux-64.lock": "linux new",
        "conda-linux-aarch64.lock": "new",
        "Dockerfile": "new",
    }
