"""Target platforms: parsing docker-style names, the wheel tags each platform accepts, and the
marker environment a lock's markers are evaluated in."""

from __future__ import annotations

import pytest
from packaging.markers import Marker
from packaging.tags import Tag, parse_tag
from packaging.utils import parse_wheel_filename

from bot.locks.platforms import (
    TargetPlatform,
    known_platforms,
    marker_environment,
    parse_platform,
    supported_tags,
)

# -- parse_platform -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "linux/amd64",
            TargetPlatform("linux/amd64", "linux", "x86_64", "x86_64-manylinux_2_28", "linux-64"),
        ),
        (
            "linux/arm64",
            TargetPlatform(
                "linux/arm64", "linux", "aarch64", "aarch64-manylinux_2_28", "linux-aarch64"
            ),
        ),
        (
            "linux/arm64/v8",
            TargetPlatform(
                "linux/arm64", "linux", "aarch64", "aarch64-manylinux_2_28", "linux-aarch64"
            ),
        ),
        (
            "darwin/amd64",
            TargetPlatform("darwin/amd64", "darwin", "x86_64", "x86_64-apple-darwin", "osx-64"),
        ),
        (
            "darwin/arm64",
            TargetPlatform("darwin/arm64", "darwin", "arm64", "aarch64-apple-darwin", "osx-arm64"),
        ),
        (
            "windows/amd64",
            TargetPlatform("windows/amd64", "windows", "AMD64", "x86_64-pc-windows-msvc", "win-64"),
        ),
        (
            " Linux/AMD64 ",
            TargetPlatform("linux/amd64", "linux", "x86_64", "x86_64-manylinux_2_28", "linux-64"),
        ),
    ],
)
def test_parse_platform(text: str, expected: TargetPlatform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize(
    "text", ["linux/386", "linux", "amd64", "darwin/arm64/v8", "freebsd/amd64", "", "linux/x86_64"]
)
def test_parse_platform_rejects_unknown_names(text: str) -> None:
    with pytest.raises(ValueError, match=r"^unknown platform") as caught:
        parse_platform(text)
    assert str(caught.value) == (
        f"unknown platform '{text}'; use one of: linux/amd64, linux/arm64, darwin/amd64, "
        "darwin/arm64, windows/amd64"
    )


def test_known_platforms_parse_to_themselves() -> None:
    assert [parse_platform(name).name for name in known_platforms()] == list(known_platforms())


# -- supported_tags -------------------------------------------------------------------------

X86_MANYLINUX = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM_MANYLINUX = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"


def fits(wheel_tag: str, platform: str, python: str = "3.11", **kwargs: str) -> bool:
    accepted = set(supported_tags(parse_platform(platform), python, **kwargs))
    return bool(parse_tag(wheel_tag) & accepted)


@pytest.mark.parametrize(
    ("wheel_tag", "platform", "python", "expected"),
    [
        pytest.param("py3-none-any", "linux/amd64", "3.11", True, id="pure-linux"),
        pytest.param("py3-none-any", "windows/amd64", "3.11", True, id="pure-windows"),
        pytest.param("py2.py3-none-any", "darwin/arm64", "3.11", True, id="py2.py3"),
        pytest.param(X86_MANYLINUX, "linux/amd64", "3.11", True, id="x86-wheel-on-amd64"),
        pytest.param(X86_MANYLINUX, "linux/arm64", "3.11", False, id="x86-wheel-on-arm64"),
        pytest.param(ARM_MANYLINUX, "linux/arm64", "3.11", True, id="arm-wheel-on-arm64"),
        pytest.param(ARM_MANYLINUX, "linux/amd64", "3.11", False, id="arm-wheel-on-amd64"),
        pytest.param(X86_MANYLINUX, "linux/amd64", "3.12", False, id="other-python"),
        pytest.param(X86_MANYLINUX, "darwin/amd64", "3.11", False, id="linux-wheel-on-mac"),
        pytest.param("cp311-cp311-manylinux_2_28_x86_64", "linux/amd64", "3.11", True, id="2.28"),
        pytest.param(
            "cp311-cp311-manylinux_2_31_x86_64", "linux/amd64", "3.11", False, id="above-2.28"
        ),
        pytest.param("cp311-cp311-manylinux1_x86_64", "linux/amd64", "3.11", True, id="manylinux1"),
        pytest.param(
            "cp311-cp311-manylinux2010_x86_64", "linux/amd64", "3.11", True, id="manylinux2010"
        ),
        pytest.param("cp311-cp311-linux_x86_64", "linux/amd64", "3.11", True, id="plain-linux"),
        pytest.param("cp311-cp311-musllinux_1_1_x86_64", "linux/amd64", "3.11", False, id="musl"),
        pytest.param("cp38-abi3-manylinux2014_aarch64", "linux/arm64", "3.11", True, id="abi3"),
        pytest.param(
            "cp312-abi3-manylinux2014_x86_64", "linux/amd64", "3.11", False, id="abi3-new"
        ),
        pytest.param("cp311-cp311-macosx_11_0_arm64", "darwin/arm64", "3.11", True, id="mac-arm"),
        pytest.param("cp311-cp311-macosx_11_0_arm64", "darwin/amd64", "3.11", False, id="mac-x86"),
        pytest.param(
            "cp311-cp311-macosx_10_9_universal2", "darwin/arm64", "3.11", True, id="universal2"
        ),
        pytest.param(
            "cp311-cp311-macosx_10_9_x86_64", "darwin/amd64", "3.11", True, id="mac-intel"
        ),
        pytest.param("cp311-cp311-macosx_14_0_arm64", "darwin/arm64", "3.11", False, id="mac-14"),
        pytest.param("cp311-cp311-win_amd64", "windows/amd64", "3.11", True, id="windows"),
        pytest.param("cp311-cp311-win_amd64", "linux/amd64", "3.11", False, id="windows-on-linux"),
        pytest.param("cp311-cp311-win32", "windows/amd64", "3.11", False, id="win32"),
        pytest.param("cp311-none-any", "linux/arm64", "3.11", True, id="cp311-none-any"),
        pytest.param("cp310-cp310-win_amd64", "windows/amd64", "3.11", False, id="other-abi"),
    ],
)
def test_supported_tags(wheel_tag: str, platform: str, python: str, expected: bool) -> None:
    assert fits(wheel_tag, platform, python) is expected


@pytest.mark.parametrize(
    ("wheel_tag", "platform", "kwargs", "expected"),
    [
        pytest.param(
            "cp311-cp311-manylinux_2_31_x86_64", "linux/amd64", {"glibc": "2.31"}, True, id="2.31"
        ),
        pytest.param(
            "cp311-cp311-manylinux_2_28_aarch64", "linux/arm64", {"glibc": "2.17"}, False, id="2.17"
        ),
        pytest.param(
            "cp311-cp311-macosx_14_0_arm64", "darwin/arm64", {"macos": "14.0"}, True, id="mac-14"
        ),
    ],
)
def test_supported_tags_with_other_targets(
    wheel_tag: str, platform: str, kwargs: dict[str, str], expected: bool
) -> None:
    assert fits(wheel_tag, platform, **kwargs) is expected


def test_supported_tags_prefer_the_most_specific_wheel() -> None:
    tags = supported_tags(parse_platform("linux/amd64"), "3.11")
    assert tags[0] == Tag("cp311", "cp311", "manylinux_2_28_x86_64")
    assert tags.index(Tag("cp311", "cp311", "manylinux2014_x86_64")) < tags.index(
        Tag("cp311", "abi3", "manylinux_2_28_x86_64")
    )
    assert tags.index(Tag("cp311", "none", "linux_x86_64")) < tags.index(Tag("py3", "none", "any"))
    assert len(tags) == len(set(tags))


def test_supported_tags_do_not_depend_on_the_host() -> None:
    """Explicit ABIs and platforms: a darwin/arm64 answer on this Linux host is the same on
    any host (no debug or free-threaded ABI, no host glibc)."""
    tags = supported_tags(parse_platform("darwin/arm64"), "3.13")
    assert {t.abi for t in tags} == {"cp313", "abi3", "none"}
    assert all(
        t.platform == "any" or "arm64" in t.platform or "universal2" in t.platform for t in tags
    )


def test_a_real_wheel_name_fits() -> None:
    _, _, _, wheel_tags = parse_wheel_filename("torch-2.1.0+cu121-cp311-cp311-linux_x86_64.whl")
    assert wheel_tags & set(supported_tags(parse_platform("linux/amd64"), "3.11"))
    assert not wheel_tags & set(supported_tags(parse_platform("linux/arm64"), "3.11"))


@pytest.mark.parametrize(
    ("python", "kwargs", "message"),
    [
        ("2.7", {}, "unsupported Python version '2.7'"),
        ("3", {}, "unsupported Python version '3'"),
        ("cp311", {}, "unsupported Python version 'cp311'"),
        ("3.11", {"glibc": "2.12"}, "unsupported glibc '2.12'"),
        ("3.11", {"glibc": "3.1"}, "unsupported glibc '3.1'"),
        ("3.11", {"glibc": "latest"}, "unsupported glibc version 'latest'"),
    ],
)
def test_supported_tags_rejects_bad_versions(
    python: str, kwargs: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        supported_tags(parse_platform("linux/amd64"), python, **kwargs)


def test_bad_macos_version_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported macOS version '13'"):
        supported_tags(parse_platform("darwin/arm64"), "3.11", macos="13")


# -- marker_environment ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "python", "expected"),
    [
        (
            "linux/amd64",
            "3.11",
            {
                "sys_platform": "linux",
                "platform_system": "Linux",
                "platform_machine": "x86_64",
                "os_name": "posix",
                "python_version": "3.11",
                "python_full_version": "3.11.0",
            },
        ),
        (
            "linux/arm64/v8",
            "3.12.4",
            {
                "sys_platform": "linux",
                "platform_machine": "aarch64",
                "python_version": "3.12",
                "python_full_version": "3.12.4",
                "implementation_version": "3.12.4",
            },
        ),
        (
            "darwin/arm64",
            "3.11",
            {
                "sys_platform": "darwin",
                "platform_system": "Darwin",
                "platform_machine": "arm64",
                "os_name": "posix",
            },
        ),
        (
            "windows/amd64",
            "3.10",
            {
                "sys_platform": "win32",
                "platform_system": "Windows",
                "platform_machine": "AMD64",
                "os_name": "nt",
                "implementation_name": "cpython",
                "platform_python_implementation": "CPython",
            },
        ),
    ],
)
def test_marker_environment(platform: str, python: str, expected: dict[str, str]) -> None:
    environment = marker_environment(parse_platform(platform), python)
    assert {key: environment[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("marker", "satisfied_on"),
    [
        ("platform_machine == 'aarch64'", {"linux/arm64"}),
        ("platform_machine == 'x86_64'", {"linux/amd64", "darwin/amd64"}),
        ("sys_platform == 'linux'", {"linux/amd64", "linux/arm64"}),
        ("sys_platform == 'darwin' and platform_machine == 'arm64'", {"darwin/arm64"}),
        ("platform_system == 'Windows'", {"windows/amd64"}),
        ("os_name == 'nt'", {"windows/amd64"}),
        (
            "sys_platform != 'win32' and python_version >= '3.11'",
            {"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"},
        ),
        ("python_full_version < '3.11.1'", set(known_platforms())),
        ("python_version < '3.11'", set()),
        ("platform_python_implementation == 'PyPy'", set()),
    ],
)
def test_markers_evaluate_per_platform(marker: str, satisfied_on: set[str]) -> None:
    parsed = Marker(marker)
    found = {
        name
        for name in known_platforms()
        if parsed.evaluate(marker_environment(parse_platform(name), "3.11"))
    }
    assert found == satisfied_on


def test_marker_environment_hides_the_host() -> None:
    environment = marker_environment(parse_platform("linux/amd64"), "3.11")
    assert environment["platform_release"] == ""
    assert environment["platform_version"] == ""


def test_marker_environment_rejects_bad_versions() -> None:
    with pytest.raises(ValueError, match="unsupported Python version"):
        marker_environment(parse_platform("linux/amd64"), "three")
