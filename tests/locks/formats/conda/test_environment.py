"""Conda environments: ``environment.yml``, explicit locks, platform names, pins in specs."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest
from rattler.explicit_environment import ExplicitEnvironmentSpec

from bot.errors import ConfigError, LockfileParseError
from bot.locks.diff import diff_locks
from bot.locks.formats.base import SpecEntry
from bot.locks.formats.conda.environment import (
    CondaDependency,
    CondaEnvironmentSpec,
    environment_entry,
    parse_environment_yml,
    parse_explicit_lock,
    parse_package_url,
    pin_in_environment,
    read_environment_yml,
    render_explicit_lock,
    unpin_in_environment,
)
from bot.locks.formats.conda.platforms import (
    DEFAULT_LOCK_PATTERN,
    SUBDIRS,
    conda_subdir,
    lock_path_for,
)
from bot.locks.lockfile import LockHeader, RequirementEntry
from bot.locks.pin_notes import PIN_NOTE_RE, pin_note

MD5_A = "a" * 32
MD5_B = "b" * 32
SHA = "c" * 64

# -- platforms and lock paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "subdir"),
    [
        ("linux/amd64", "linux-64"),
        ("linux/arm64", "linux-aarch64"),
        ("linux/arm64/v8", "linux-aarch64"),
        ("linux/ppc64le", "linux-ppc64le"),
        ("darwin/amd64", "osx-64"),
        ("darwin/arm64", "osx-arm64"),
        ("windows/amd64", "win-64"),
        ("linux-64", "linux-64"),
        ("linux-aarch64", "linux-aarch64"),
        ("osx-arm64", "osx-arm64"),
        ("win-64", "win-64"),
        (" linux-64 ", "linux-64"),
    ],
)
def test_conda_subdir(platform: str, subdir: str) -> None:
    assert conda_subdir(platform) == subdir


@pytest.mark.parametrize("platform", ["linux/386", "noarch", "linux", "Linux-64", "", "osx-32"])
def test_conda_subdir_rejects_unknown_platforms(platform: str) -> None:
    with pytest.raises(ValueError, match=r"use one of: linux/amd64, .*linux-64, .*win-64"):
        conda_subdir(platform)


def test_every_subdir_maps_to_itself() -> None:
    assert [conda_subdir(s) for s in SUBDIRS] == list(SUBDIRS)


@pytest.mark.parametrize(
    ("pattern", "platform", "path"),
    [
        (DEFAULT_LOCK_PATTERN, "linux/amd64", "conda-linux-64.lock"),
        (DEFAULT_LOCK_PATTERN, "osx-arm64", "conda-osx-arm64.lock"),
        ("envs/train/{platform}.lock", "linux/arm64", "envs/train/linux-aarch64.lock"),
        ("locks/{platform}/{platform}.txt", "win-64", "locks/win-64/win-64.txt"),
    ],
)
def test_lock_path_for(pattern: str, platform: str, path: str) -> None:
    assert lock_path_for(pattern, platform) == path


def test_lock_path_for_needs_the_placeholder() -> None:
    with pytest.raises(ValueError, match=r"has no '\{platform\}'"):
        lock_path_for("conda.lock", "linux-64")
    with pytest.raises(ValueError, match="unknown platform"):
        lock_path_for(DEFAULT_LOCK_PATTERN, "plan9/amd64")


# -- environment.yml ---------------------------------------------------------------------------

ENVIRONMENT = """\
# Training environment
name: train
channels:
  - conda-forge
  - nodefaults
dependencies:
  - python=3.11
  - numpy>=1.20   # array maths
  - "pytorch 2.1.*"
  - conda-forge::scipy
  - _openmp_mutex
  - Pillow
  - pip
  - pip:
    - requests==2.31.0
    - -e .
platforms:
  - linux-64
  - darwin/arm64
  - osx-arm64
"""


def test_read_environment_yml(tmp_path: Path) -> None:
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "environment.yml").write_text(ENVIRONMENT)
    spec = read_environment_yml(tmp_path, "envs/environment.yml")
    assert spec == CondaEnvironmentSpec(
        path="envs/environment.yml",
        name="train",
        channels=("conda-forge",),
        dependencies=(
            CondaDependency("python=3.11", "python", 7),
            CondaDependency("numpy>=1.20", "numpy", 8),
            CondaDependency("pytorch 2.1.*", "pytorch", 9),
            CondaDependency("conda-forge::scipy", "scipy", 10),
            CondaDependency("_openmp_mutex", "_openmp_mutex", 11),
            CondaDependency("Pillow", "pillow", 12),
            CondaDependency("pip", "pip", 13),
        ),
        pip=("requests==2.31.0", "-e ."),
        platforms=("linux-64", "osx-arm64"),
    )
    assert spec.direct_names == frozenset(
        {"python", "numpy", "pytorch", "scipy", "-openmp-mutex", "pillow", "pip"}
    )


def test_minimal_environment() -> None:
    spec = parse_environment_yml("channels: [conda-forge]\ndependencies: [python]\n", "e.yml")
    assert spec.name is None
    assert spec.platforms == ()
    assert spec.pip == ()
    assert spec.dependencies == (CondaDependency("python", "python", 2),)


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        pytest.param("channels: [a\n", 2, None, "invalid YAML", id="yaml-syntax"),
        pytest.param("a: 1\n\tb: 2\n", 2, None, "invalid YAML", id="yaml-tab"),
        pytest.param("name: x\x07\n", 1, None, "invalid YAML", id="yaml-bad-char"),
        pytest.param("", 1, None, "the file is empty", id="empty"),
        pytest.param("- python\n", 1, None, "top level must be a mapping", id="top-list"),
        pytest.param(
            "channels: [c]\n", 1, "dependencies", "'dependencies' is missing", id="no-deps"
        ),
        pytest.param(
            "channels: [c]\ndependencies: python\n",
            2,
            "dependencies",
            "must be a list",
            id="deps-not-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - python\n  - 3.5\n",
            4,
            "dependencies[1]",
            "3.5 (float) is not a match spec",
            id="entry-number",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - python\n  -\n",
            4,
            "dependencies[1]",
            "an empty entry is not a match spec",
            id="entry-empty",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - [a, b]\n",
            3,
            "dependencies[0]",
            "a list is not a match spec",
            id="entry-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - python\n  - conda: [x]\n",
            4,
            "dependencies[1]",
            "must be the 'pip:' sub-list alone",
            id="entry-mapping",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - pip: requests\n",
            3,
            "dependencies[0].pip",
            "must be a list of pip requirements",
            id="pip-not-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - pip:\n    - requests\n    - 7\n",
            5,
            "dependencies[0].pip[1]",
            "must be a pip requirement",
            id="pip-entry-number",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - python\n  - numpy>>1.2\n",
            4,
            "dependencies[1]",
            "'numpy>>1.2' is not a valid conda match spec",
            id="invalid-spec",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - ==1.0\n",
            3,
            "dependencies[0]",
            "'==1.0' is not a valid conda match spec",
            id="spec-without-name",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - 'numpy*'\n",
            3,
            "dependencies[0]",
            "is not a valid conda match spec",
            id="spec-pattern",
        ),
        pytest.param(
            "name: x\ndependencies: [python]\n", 1, "channels", "no channels", id="no-channels"
        ),
        pytest.param(
            "channels:\ndependencies: [python]\n", 1, "channels", "no channels", id="channels-null"
        ),
        pytest.param(
            "channels: conda-forge\ndependencies: [python]\n",
            1,
            "channels",
            "must be a list of channel names",
            id="channels-not-list",
        ),
        pytest.param(
            "channels:\n  - conda-forge\n  - {url: x}\ndependencies: [python]\n",
            3,
            "channels[1]",
            "must be a channel name or URL",
            id="channel-mapping",
        ),
        pytest.param(
            "channels:\n  - nodefaults\ndependencies: [python]\n",
            2,
            "channels",
            "list at least one",
            id="only-nodefaults",
        ),
        pytest.param(
            "channels: []\ndependencies: [python]\n",
            1,
            "channels",
            "list at least one",
            id="channels-empty",
        ),
        pytest.param(
            "1: one\nchannels: [c]\nchannels: [d]\nname: [x]\ndependencies: [python]\n",
            4,
            "name",
            "must be a string",
            id="odd-keys-then-name-list",
        ),
        pytest.param(
            "name: [x]\nchannels: [c]\ndependencies: [python]\n",
            1,
            "name",
            "must be a string",
            id="name-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies: [python]\nplatforms: linux-64\n",
            3,
            "platforms",
            "must be a list of platforms",
            id="platforms-not-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies: [python]\nplatforms:\n  - linux-64\n  - sparc\n",
            5,
            "platforms[1]",
            "unknown platform 'sparc'",
            id="platform-unknown",
        ),
        pytest.param(
            "channels: [c]\ndependencies: [python]\nplatforms: [64]\n",
            3,
            "platforms[0]",
            "64 (int) is not a platform name",
            id="platform-number",
        ),
    ],
)
def test_environment_errors_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str | None, message: str
) -> None:
    (tmp_path / "environment.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        read_environment_yml(tmp_path, "environment.yml")
    error = caught.value
    assert error.path == "environment.yml"
    assert error.line == line
    assert error.field == field
    assert message in error.user_message
    assert error.user_message.startswith(f"environment.yml:{line}")


def test_missing_environment_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"envs/environment\.yml: file not found"):
        read_environment_yml(tmp_path, "envs/environment.yml")


def test_unreadable_environment_file(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_bytes(b"name: \xff\n")
    with pytest.raises(ConfigError, match=r"environment\.yml: cannot read the file"):
        read_environment_yml(tmp_path, "environment.yml")


# -- explicit locks: parsing -------------------------------------------------------------------

CONDA_LOCK_STYLE = f"""\
# Generated by conda-lock.
# platform: linux-64
# input_hash: 1f2e3d
@EXPLICIT
https://conda.anaconda.org/conda-forge/linux-64/_libgcc_mutex-0.1-conda_forge.tar.bz2#{MD5_A}
https://conda.anaconda.org/conda-forge/linux-64/ca-certificates-2024.2.2-hbcca054_0.conda#{MD5_B}

# a comment between packages
https://conda.anaconda.org/conda-forge/noarch/python_abi-3.11-4_cp311.conda#sha256:{SHA}
https://repo.anaconda.com/pkgs/main/linux-64/python-3.11.7-h955ad1f_0.conda
https://conda.anaconda.org/pytorch/label/nightly/linux-64/pytorch-2.3.0-py3.11_cuda12.1_0.tar.bz2#{MD5_A.upper()}
http://127.0.0.1:8080/testing/noarch/mlcore-1.1-0.conda#{MD5_B}
file:///srv/channel/noarch/mathlib-1.2-0.tar.bz2#{MD5_A}
"""


def entry(
    name: str,
    raw: str,
    version: str,
    build: str,
    channel: str,
    line: int,
    hashes: tuple[str, ...] = (),
) -> RequirementEntry:
    return RequirementEntry(
        name=name,
        raw_name=raw,
        specifier=f"=={version}",
        version=version,
        hashes=hashes,
        line=line,
        build=build,
        channel=channel,
    )


def test_parse_explicit_lock() -> None:
    lock = parse_explicit_lock(CONDA_LOCK_STYLE, "conda-linux-64.lock")
    assert lock.path == "conda-linux-64.lock"
    assert lock.flavour == "conda"
    assert lock.platform == "linux-64"
    assert lock.header == LockHeader(
        tool="other",
        python_version="3.11",
        command=(),
        text="# Generated by conda-lock.\n# platform: linux-64\n# input_hash: 1f2e3d",
    )
    assert lock.requirements == (
        entry(
            "-libgcc-mutex",
            "_libgcc_mutex",
            "0.1",
            "conda_forge",
            "conda-forge",
            5,
            (f"md5:{MD5_A}",),
        ),
        entry(
            "ca-certificates",
            "ca-certificates",
            "2024.2.2",
            "hbcca054_0",
            "conda-forge",
            6,
            (f"md5:{MD5_B}",),
        ),
        entry(
            "python-abi",
            "python_abi",
            "3.11",
            "4_cp311",
            "conda-forge",
            9,
            (f"sha256:{SHA}",),
        ),
        entry("python", "python", "3.11.7", "h955ad1f_0", "main", 10),
        entry(
            "pytorch",
            "pytorch",
            "2.3.0",
            "py3.11_cuda12.1_0",
            "pytorch/label/nightly",
            11,
            (f"md5:{MD5_A}",),
        ),
        entry(
            "mlcore",
            "mlcore",
            "1.1",
            "0",
            "http://127.0.0.1:8080/testing",
            12,
            (f"md5:{MD5_B}",),
        ),
        entry("mathlib", "mathlib", "1.2", "0", "file:///srv/channel", 13, (f"md5:{MD5_A}",)),
    )
    assert lock.versions()["python"] == "3.11.7"
    assert lock.has_hashes


@pytest.mark.parametrize(
    ("text", "tool", "platform", "python"),
    [
        pytest.param("@EXPLICIT\n", "none", None, None, id="bare"),
        pytest.param("\n\n@EXPLICIT\n\n", "none", None, None, id="blank-lines"),
        pytest.param(
            "# platform: osx-arm64\r\n@EXPLICIT\r\n", "other", "osx-arm64", None, id="crlf"
        ),
        pytest.param(
            f"#platform:win-64\n@EXPLICIT\nhttps://x.org/c/win-64/python-3.12.1-0.conda#{MD5_A}\n",
            "other",
            "win-64",
            "3.12",
            id="python",
        ),
    ],
)
def test_parse_explicit_lock_headers(
    text: str, tool: str, platform: str | None, python: str | None
) -> None:
    lock = parse_explicit_lock(text, "x.lock")
    assert (lock.header.tool, lock.platform, lock.header.python_version) == (
        tool,
        platform,
        python,
    )


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("# only comments\n", 1, "there is no @EXPLICIT line", id="no-explicit"),
        pytest.param("", 1, "there is no @EXPLICIT line", id="empty"),
        pytest.param(
            "numpy==1.26.4\n--hash=sha256:abc\n",
            1,
            "not a conda explicit lock",
            id="requirements-file",
        ),
        pytest.param(
            f"# platform: linux-64\nhttps://c.org/x/noarch/a-1-0.conda#{MD5_A}\n@EXPLICIT\n",
            2,
            "a package URL before the @EXPLICIT line",
            id="url-before-explicit",
        ),
        pytest.param("@EXPLICIT\nnumpy=1.26\n", 2, "not a package URL", id="spec-line"),
        pytest.param(
            "@EXPLICIT\nhttps://c.org/x/noarch/a-1-0.whl\n", 2, "not a package URL", id="wheel"
        ),
        pytest.param(
            "@EXPLICIT\nhttps://c.org/x/noarch/a-1.conda\n",
            2,
            "not a package URL",
            id="no-build-in-name",
        ),
        pytest.param(
            "@EXPLICIT\nhttps://c.org/a-1-0.conda\n", 2, "not a package URL", id="no-subdir"
        ),
        pytest.param(
            "@EXPLICIT\nhttps://c.org/x/noarch/a-1-0.conda#abc\n",
            2,
            "malformed hash 'abc'",
            id="short-md5",
        ),
        pytest.param(
            f"@EXPLICIT\n\nhttps://c.org/x/noarch/a-1-0.conda#sha256:{MD5_A}\n",
            3,
            "malformed hash",
            id="short-sha256",
        ),
        pytest.param(
            f"@EXPLICIT\nhttps://c.org/x/noarch/a-1-0.conda#md5={MD5_A}\n",
            2,
            "malformed hash",
            id="md5-prefix",
        ),
    ],
)
def test_parse_explicit_lock_errors(text: str, line: int, message: str) -> None:
    with pytest.raises(LockfileParseError) as caught:
        parse_explicit_lock(text, "conda-linux-64.lock")
    assert caught.value.path == "conda-linux-64.lock"
    assert caught.value.line == line
    assert message in caught.value.user_message
    assert caught.value.user_message.startswith(f"conda-linux-64.lock:{line}: ")


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        (
            "https://conda.anaconda.org/conda-forge/noarch/typing-extensions-4.9.0-hd8ed1ab_0.conda",
            ("typing-extensions", "4.9.0", "hd8ed1ab_0", "noarch", "conda-forge"),
        ),
        (
            "https://repo.anaconda.com/pkgs/r/linux-64/r-base-4.2.0-h1ae530e_0.tar.bz2",
            ("r-base", "4.2.0", "h1ae530e_0", "linux-64", "r"),
        ),
        (
            "https://repo.anaconda.com/linux-64/x-1-0.conda",
            ("x", "1", "0", "linux-64", "https://repo.anaconda.com"),
        ),
        (
            "https://conda.anaconda.org/linux-64/x-1-0.conda",
            ("x", "1", "0", "linux-64", "https://conda.anaconda.org"),
        ),
        (
            "http://conda.anaconda.org/conda-forge/linux-64/x-1-0.conda",
            ("x", "1", "0", "linux-64", "http://conda.anaconda.org/conda-forge"),
        ),
        (
            "https://prefix.dev/conda-forge/osx-arm64/libcxx-17.0.6-h5f092b4_0.conda",
            ("libcxx", "17.0.6", "h5f092b4_0", "osx-arm64", "https://prefix.dev/conda-forge"),
        ),
    ],
)
def test_parse_package_url(url: str, parts: tuple[str, ...]) -> None:
    parsed = parse_package_url(url)
    assert parsed is not None
    assert (parsed.name, parsed.version, parsed.build, parsed.subdir, parsed.channel) == parts
    assert parsed.filename == url.rsplit("/", 1)[1]


# -- explicit locks: rendering -----------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    url: str
    md5: bytes | None
    sha256: bytes | None = None


BASE = "https://conda.anaconda.org/conda-forge"
RECORDS = [
    Record(f"{BASE}/noarch/pytool-0.5-0.tar.bz2", bytes.fromhex(MD5_A), bytes.fromhex(SHA)),
    Record(f"{BASE}/linux-64/python-3.11.0-h0_0.conda", bytes.fromhex(MD5_B)),
    Record(f"{BASE}/linux-64/_openmp_mutex-4.5-2_gnu.tar.bz2", bytes.fromhex(MD5_A)),
    Record(f"{BASE}/noarch/mlcore-1.1-0.conda", None, bytes.fromhex(SHA)),
    Record(f"{BASE}/noarch/mathlib-1.2-0.tar.bz2", None, None),
]
RENDERED = f"""\
# This file is generated by Lockwarden from envs/environment.yml; do not edit by hand.
# platform: linux-aarch64
# solved with rattler 0.28.0
@EXPLICIT
{BASE}/linux-64/_openmp_mutex-4.5-2_gnu.tar.bz2#{MD5_A}
{BASE}/noarch/mathlib-1.2-0.tar.bz2
{BASE}/noarch/mlcore-1.1-0.conda#sha256:{SHA}
{BASE}/linux-64/python-3.11.0-h0_0.conda#{MD5_B}
{BASE}/noarch/pytool-0.5-0.tar.bz2#{MD5_A}
"""


def test_render_explicit_lock() -> None:
    text = render_explicit_lock(
        platform="linux/arm64",
        records=RECORDS,
        spec_path="envs/environment.yml",
        tool_line="solved with rattler 0.28.0",
    )
    assert text == RENDERED
    # Input order does not matter.
    assert (
        render_explicit_lock(
            platform="linux-aarch64",
            records=list(reversed(RECORDS)),
            spec_path="envs/environment.yml",
            tool_line="solved with rattler 0.28.0",
        )
        == text
    )


def test_render_parse_round_trip() -> None:
    lock = parse_explicit_lock(RENDERED, "conda-linux-aarch64.lock")
    assert lock.platform == "linux-aarch64"
    assert lock.header.tool == "other"
    assert lock.header.python_version == "3.11"
    assert lock.header.text == "\n".join(RENDERED.splitlines()[:3])
    assert [(e.raw_name, e.version, e.build, e.hashes) for e in lock.requirements] == [
        ("_openmp_mutex", "4.5", "2_gnu", (f"md5:{MD5_A}",)),
        ("mathlib", "1.2", "0", ()),
        ("mlcore", "1.1", "0", (f"sha256:{SHA}",)),
        ("python", "3.11.0", "h0_0", (f"md5:{MD5_B}",)),
        ("pytool", "0.5", "0", (f"md5:{MD5_A}",)),
    ]
    assert all(e.url is None and e.channel == "conda-forge" for e in lock.requirements)
    # rattler's own reader agrees on platform and packages.
    theirs = ExplicitEnvironmentSpec.from_str(RENDERED)
    assert str(theirs.platform) == "linux-aarch64"
    assert [p.url.split("#")[0] for p in theirs.packages] == [
        line.split("#")[0] for line in RENDERED.splitlines()[4:]
    ]


def test_render_rejects_non_package_urls() -> None:
    with pytest.raises(ValueError, match="not a conda package URL"):
        render_explicit_lock(
            platform="linux-64",
            records=[Record("https://example.org/archive.zip", None)],
            spec_path="environment.yml",
            tool_line="x",
        )


def test_explicit_locks_diff_by_version() -> None:
    before = parse_explicit_lock(RENDERED, "conda-linux-aarch64.lock")
    after_text = (
        RENDERED.replace("mlcore-1.1-0.conda", "mlcore-2.0-0.conda")
        .replace("python-3.11.0-h0_0", "python-3.11.0-h1_0")
        .replace(f"h1_0.conda#{MD5_B}", f"h1_0.conda#{MD5_A}")
        .replace(f"{BASE}/noarch/pytool-0.5-0.tar.bz2#{MD5_A}\n", "")
        + f"{BASE}/noarch/newdep-0.1-0.conda#{MD5_B}\n"
    )
    after = parse_explicit_lock(after_text, "conda-linux-aarch64.lock")
    diff = diff_locks(before, after, direct_names=frozenset({"mlcore", "python"}))
    changes = {c.name: (c.change, c.before, c.after, c.kind, c.direct) for c in diff.changes}
    assert changes == {
        "mlcore": ("upgraded", "1.1", "2.0", "major", True),
        # Another build of the same version.
        "python": ("rebuilt", "3.11.0", "3.11.0", None, True),
        "pytool": ("removed", "0.5", None, None, False),
        "newdep": ("added", None, "0.1", None, False),
    }
    python = next(c for c in diff.changes if c.name == "python")
    assert (python.build_before, python.build_after) == ("h0_0 (conda-forge)", "h1_0 (conda-forge)")
    assert diff_locks(before, before).changes == ()
    # Same file, another md5: a re-upload to look at.
    reuploaded = parse_explicit_lock(
        RENDERED.replace(f"pytool-0.5-0.tar.bz2#{MD5_A}", f"pytool-0.5-0.tar.bz2#{MD5_B}"),
        "conda-linux-aarch64.lock",
    )
    (change,) = diff_locks(before, reuploaded).changes
    assert (change.name, change.change) == ("pytool", "hash-only")
    assert change.hashes_added == (f"md5:{MD5_B}",)


# -- pins in environment.yml -------------------------------------------------------------------

SPEC = """\
name: train  # the training image
channels:
  - conda-forge
dependencies:
    # runtime
    - python=3.11
    - numpy>=1.20   # array maths
    - "pytorch 2.1.*"
    - pip:
        - requests
variables:
  OMP_NUM_THREADS: "1"
"""
NOTE = "pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer"


def edit(text: str, lines: dict[int, str | None], after: dict[int, str] | None = None) -> str:
    """``text`` with 1-based lines replaced (None: removed) and lines inserted after others."""
    out: list[str] = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if number in lines:
            if lines[number] is not None:
                out.append(f"{lines[number]}\n")
        else:
            out.append(line)
        if after and number in after:
            out.append(f"{after[number]}\n")
    return "".join(out)


@pytest.mark.parametrize(
    ("text", "name", "version", "note", "expected"),
    [
        pytest.param(
            SPEC,
            "numpy",
            "1.26.4",
            NOTE,
            edit(SPEC, {7: f"    - numpy==1.26.4  # {NOTE}"}),
            id="replace-keeps-indent",
        ),
        pytest.param(
            SPEC,
            "PyTorch",
            "2.1.2",
            "rolled back by @bob (was: pytorch 2.1.*)",
            edit(SPEC, {8: "    - pytorch==2.1.2  # rolled back by @bob (was: pytorch 2.1.*)"}),
            id="replace-quoted",
        ),
        pytest.param(
            SPEC,
            "mathlib",
            "1.0",
            "pinned by @alice",
            edit(SPEC, {}, after={8: "    - mathlib==1.0  # pinned by @alice"}),
            id="add-before-pip",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n- python\n- numpy",
            "mathlib",
            "1.0",
            "",
            "channels: [c]\ndependencies:\n- python\n- numpy\n- mathlib==1.0\n",
            id="add-at-end-no-newline",
        ),
        pytest.param(
            "channels: [c]\r\ndependencies:\r\n  - numpy  # old comment\r\n  - numpy>=1\r\n",
            "numpy",
            "2.0",
            "pinned by @a",
            "channels: [c]\r\ndependencies:\r\n  - numpy==2.0  # pinned by @a\r\n",
            id="crlf-and-repeats",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - pip:\n    - requests\n",
            "python",
            "3.11.7",
            "pinned by @a",
            "channels: [c]\ndependencies:\n  - python==3.11.7  # pinned by @a\n  - pip:\n"
            "    - requests\n",
            id="add-before-only-pip",
        ),
    ],
)
def test_pin_in_environment(text: str, name: str, version: str, note: str, expected: str) -> None:
    assert pin_in_environment(text, "environment.yml", name, version, note) == expected
    parse_environment_yml(expected, "environment.yml")  # still a valid spec


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "channels: [c]\ndependencies: [python, numpy]\n", 2, "flow style", id="flow-list"
        ),
        pytest.param("channels: [c]\ndependencies: []\n", 2, "flow style", id="empty-flow"),
        pytest.param(
            "channels: [c]\ndependencies:\n  - >\n    numpy\n", 3, "several lines", id="folded"
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - 'numpy\n    >=1'\n",
            3,
            "several lines",
            id="multi-line-quoted",
        ),
        pytest.param(
            "channels: [c]\ndependencies: &deps\n  - numpy\nother: *deps\n",
            2,
            "YAML anchors and aliases (&name, *name) are not accepted",
            id="aliased-list",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - &n numpy\n  - *n\n",
            3,
            "YAML anchors and aliases (&name, *name) are not accepted",
            id="aliased-item",
        ),
        pytest.param("channels: [c]\ndependencies: - numpy\n", 2, "invalid YAML", id="yaml-error"),
        pytest.param("channels: [c]\n", 1, "'dependencies' must be a list", id="no-deps"),
        pytest.param("- a\n", 1, "top level must be a mapping", id="top-list"),
    ],
)
def test_pin_in_environment_refuses_unsafe_edits(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pin_in_environment(text, "environment.yml", "numpy", "1.0", "pinned by @a")
    assert caught.value.path == "environment.yml"
    assert caught.value.line == line
    assert message in caught.value.user_message


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "channels: [c]\ndependencies:\n  - python\n  -\n    numpy\n",
            5,
            "must start its own line with '- '",
            id="value-on-next-line",
        ),
        pytest.param(
            "channels: [c]\ndependencies:\n  - - numpy\n",
            3,
            "is a list, not a match spec",
            id="nested-list",
        ),
    ],
)
def test_pin_refuses_odd_items(text: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        pin_in_environment(text, "environment.yml", "numpy", "1.0", "")
    assert caught.value.line == line
    assert message in caught.value.user_message


def test_pin_refuses_invalid_versions() -> None:
    with pytest.raises(ConfigError, match="cannot pin 'numpy==>>1'"):
        pin_in_environment(SPEC, "environment.yml", "numpy", ">>1", "")


@pytest.mark.parametrize(
    ("name", "entry"),
    [
        ("numpy", SpecEntry("numpy>=1.20   # array maths", "array maths", None)),
        ("PYTORCH", SpecEntry('"pytorch 2.1.*"', None, None)),
        ("requests", None),
        ("x", None),
    ],
)
def test_environment_entry(name: str, entry: SpecEntry | None) -> None:
    assert environment_entry(SPEC, "environment.yml", name) == entry


def test_an_exact_pin_has_its_version() -> None:
    text = "dependencies:\n  - numpy==1.26.4  # pinned by @alice\n"
    found = environment_entry(text, "environment.yml", "numpy")
    assert found is not None
    assert found.pinned_version == "1.26.4"


@pytest.mark.parametrize(
    ("name", "version", "verb", "restored"),
    [
        # The person's line comes back byte for byte, its comment and quotes included.
        pytest.param("numpy", "1.26.4", "pinned", SPEC, id="restores-was-with-its-comment"),
        pytest.param("pytorch", "2.1.0", "rolled back", SPEC, id="restores-quoted"),
        pytest.param("mathlib", "1.0", "pinned", SPEC, id="removes-added-line"),
    ],
)
def test_pin_then_unpin_round_trip(name: str, version: str, verb: str, restored: str) -> None:
    entry = environment_entry(SPEC, "environment.yml", name)
    note = pin_note(verb, "alice", 12, "reason", entry.written if entry else None)
    pinned = pin_in_environment(SPEC, "environment.yml", name, version, note)
    assert pinned != SPEC
    assert unpin_in_environment(pinned, "environment.yml", name) == restored


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SPEC, id="no-pin"),
        pytest.param(SPEC.replace("# array maths", "# pinned by hand"), id="hand-pin"),
        pytest.param(
            SPEC.replace("- numpy>=1.20   # array maths", "- numpy==1.2  # pinned by @a"),
            id="other-package",
        ),
    ],
)
def test_unpin_leaves_other_lines_alone(text: str) -> None:
    assert unpin_in_environment(text, "environment.yml", "pytorch") == text


def test_pin_refuses_an_anchor() -> None:
    # environment.yml is repository content: anchors and aliases are refused, as in the
    # config (an alias bomb would otherwise expand in the worker).
    text = "channels: [c]\ndependencies:\n  - &n numpy\n"
    with pytest.raises(ConfigError, match=r"environment\.yml:3: YAML anchors and aliases"):
        pin_in_environment(text, "environment.yml", "numpy", "1.0", "")


def test_unpin_refuses_to_empty_the_list() -> None:
    text = "channels: [c]\ndependencies:\n  - numpy==1.0  # pinned by @a\n"
    with pytest.raises(ConfigError, match=r"environment\.yml:3: cannot edit"):
        unpin_in_environment(text, "environment.yml", "numpy")


def test_edits_skip_invalid_entries_and_other_comments() -> None:
    text = "channels: [c]\ndependencies:\n  - numpy>>1\n  - numpy  # pinned by hand\n"
    assert unpin_in_environment(text, "environment.yml", "numpy") == text
    assert pin_in_environment(text, "environment.yml", "numpy", "2", "") == (
        "channels: [c]\ndependencies:\n  - numpy>>1\n  - numpy==2\n"
    )


@pytest.mark.parametrize(
    ("was", "written"),
    [
        ("numpy >=1 #x", "numpy >=1 #x"),  # the person's line: a spec and its comment
        ("{numpy", '"{numpy"'),
        ("numpy: 1", '"numpy: 1"'),
        ("numpy[version='>=1,<2']", "numpy[version='>=1,<2']"),
    ],
)
def test_unpin_quotes_specs_only_when_yaml_needs_it(was: str, written: str) -> None:
    text = f"channels: [c]\ndependencies:\n  - numpy==1.0  # pinned by @a (was: {was})\n"
    assert unpin_in_environment(text, "environment.yml", "numpy") == (
        f"channels: [c]\ndependencies:\n  - {written}\n"
    )


@pytest.mark.parametrize(
    "note",
    [
        "pinned by @alice in #12 (was: numpy>=1.20): breaks tokenizer",
        "rolled back by @dependabot[bot] (was: numpy[version='>=1,<2'])",
        "pinned by @a",
        pin_note("rolled back", "bob", None, "CUDA (12) mismatch", "pytorch 2.1.*"),
    ],
)
def test_pin_notes_match_the_command_grammar(note: str) -> None:
    """A note the review commands write is one ``unpin_in_environment`` reads back."""
    text = f"channels: [c]\ndependencies:\n  - python\n  - numpy==1.0  # {note}\n"
    command_match = PIN_NOTE_RE.match(note)
    assert command_match is not None
    was = command_match.group("was")
    expected = "channels: [c]\ndependencies:\n  - python\n" + (f"  - {was}\n" if was else "")
    assert unpin_in_environment(text, "environment.yml", "numpy") == expected


def test_environment_spec_is_hashable_and_frozen() -> None:
    spec = parse_environment_yml(textwrap.dedent(ENVIRONMENT), "environment.yml")
    assert hash(spec) == hash(parse_environment_yml(ENVIRONMENT, "environment.yml"))
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
