"""uv per-platform and universal compiles, with real uv resolving against indexes served on
127.0.0.1 (a main index and an accelerator index with ``+cu121`` builds)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from bot import shell
from bot.locks.compiler import CompileOutcome, CompileRequest, ExtraOutput
from bot.locks.formats.requirements.uv import UvBackend, find_uv
from bot.locks.lockfile import Lockfile, parse_lockfile
from bot.locks.platforms import parse_platform
from bot.locks.wheels import WheelGap, check_wheels
from bot.shell import CommandResult
from tests.support.index_server import PackageIndex, start_index
from tests.support.sandbox import PLAIN, SANDBOX

X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
SPEC = "requirements/serve.in"
LOCK = "requirements/serve.txt"
ARM_LOCK = "requirements/serve-linux-arm64.txt"
MAC_LOCK = "requirements/serve-darwin-arm64.txt"


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    package_index.publish("alpha", "1.0", ["beta", "gamma; platform_machine == 'aarch64'"])
    package_index.publish("beta", "1.0")
    package_index.publish("gamma", "1.0")
    package_index.publish("x86only", "1.0", wheel_tags=[X86])
    package_index.publish("native", "1.0", wheel_tags=[X86], sdist=True)
    package_index.publish("torchlet", "2.1.0")
    return package_index


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True)
    return root


@pytest.fixture
def uv(isolated_tool_env: dict[str, str]) -> UvBackend:
    return UvBackend(isolated_tool_env, find_uv(None), SANDBOX)


def write_spec(root: Path, *lines: str) -> None:
    (root / SPEC).write_text("\n".join(lines) + "\n", "utf-8")


def platform_lock(root: Path, path: str, platform: str) -> ExtraOutput:
    return ExtraOutput(path, root / f".out-{Path(path).name}", "platform-lock", platform)


def per_platform(root: Path, index: PackageIndex, **overrides: object) -> CompileRequest:
    """Main lock for linux/amd64, one extra lock for linux/arm64."""
    fields: dict[str, object] = {
        "root": root,
        "spec": SPEC,
        "lock": LOCK,
        "output": root / ".out-serve.txt",
        "existing": None,
        "python_version": "3.11",
        "index_url": index.url,
        "platforms": ("linux/amd64", "linux/arm64"),
        "extra_outputs": (platform_lock(root, ARM_LOCK, "linux/arm64"),),
        "timeout_s": 120.0,
    }
    fields.update(overrides)
    return CompileRequest(**fields)  # type: ignore[arg-type]


def read(path: Path, name: str) -> Lockfile:
    return parse_lockfile(path.read_text("utf-8"), name)


def pins(lock: Lockfile) -> dict[str, str]:
    return lock.versions()


# -- per-platform locks ---------------------------------------------------------------------


@pytest.mark.slow
def test_one_lock_per_platform(root: Path, index: PackageIndex, uv: UvBackend) -> None:
    write_spec(root, "alpha")
    request = per_platform(root, index)
    outcome = uv.compile(request)

    assert outcome.ok, outcome.tool_output
    main = read(request.output, LOCK)
    arm = read(request.extra_outputs[0].output, ARM_LOCK)
    assert pins(main) == {"alpha": "1.0", "beta": "1.0"}
    assert pins(arm) == {"alpha": "1.0", "beta": "1.0", "gamma": "1.0"}
    assert all(entry.marker is None for entry in (*main.requirements, *arm.requirements))
    assert main.header.command == (
        "uv",
        "pip",
        "compile",
        "--allow-unsafe",
        "--generate-hashes",
        "--python-platform=x86_64-manylinux_2_28",
        "--python-version=3.11",
        "--strip-extras",
        f"--output-file={LOCK}",
        SPEC,
    )
    assert arm.header.command == (
        *main.header.command[:5],
        "--python-platform=aarch64-manylinux_2_28",
        *main.header.command[6:8],
        f"--output-file={ARM_LOCK}",
        SPEC,
    )
    assert outcome.header_command == shlex.join(main.header.command)
    assert "--python-platform=x86_64-manylinux_2_28" in outcome.argv
    # Only the outputs are written: the real locks appear when the compile stage renames them.
    assert sorted(p.name for p in (root / "requirements").iterdir()) == ["serve.in"]


@pytest.mark.slow
def test_each_header_reproduces_its_lock(
    root: Path, index: PackageIndex, uv: UvBackend, isolated_tool_env: dict[str, str]
) -> None:
    """Running the recorded command by hand (plus the index) gives the same pins."""
    write_spec(root, "alpha")
    request = per_platform(root, index)
    assert uv.compile(request).ok
    compiled = {
        LOCK: read(request.output, LOCK),
        ARM_LOCK: read(request.extra_outputs[0].output, ARM_LOCK),
    }
    for path, lock in compiled.items():
        program, *args = lock.header.command
        assert program == "uv"
        argv = [find_uv(None), *args, f"--index-url={index.url}", "--quiet"]
        result = shell.run(argv, cwd=root, env=isolated_tool_env, timeout_s=120)
        assert result.ok, result.output_tail()
        rerun = read(root / path, path)
        assert rerun.requirements == lock.requirements


@pytest.mark.slow
def test_platform_locks_keep_their_own_pins(root: Path, index: PackageIndex, uv: UvBackend) -> None:
    """The arm64 lock is seeded from its current file, so a new beta release does not move it
    in a minimal compile (the main output is seeded by the compile stage, here by hand)."""
    write_spec(root, "alpha")
    first = per_platform(root, index)
    assert uv.compile(first).ok
    first.output.replace(root / LOCK)
    first.extra_outputs[0].output.replace(root / ARM_LOCK)
    index.publish("beta", "2.0")

    existing = read(root / LOCK, LOCK)
    again = per_platform(root, index, existing=existing)
    again.output.write_bytes((root / LOCK).read_bytes())
    outcome = uv.compile(again)

    assert outcome.ok, outcome.tool_output
    assert pins(read(again.output, LOCK))["beta"] == "1.0"
    assert pins(read(again.extra_outputs[0].output, ARM_LOCK))["beta"] == "1.0"
    assert (root / ARM_LOCK).read_text("utf-8") == again.extra_outputs[0].output.read_text("utf-8")

    # Without a current arm64 lock the output starts empty (a leftover file is cleared).
    (root / ARM_LOCK).unlink()
    fresh = per_platform(root, index, existing=existing)
    assert fresh.extra_outputs[0].output.exists()
    assert uv.compile(fresh).ok
    assert pins(read(fresh.extra_outputs[0].output, ARM_LOCK))["beta"] == "2.0"


@pytest.mark.slow
def test_a_failing_platform_stops_the_run(root: Path, index: PackageIndex, uv: UvBackend) -> None:
    write_spec(root, "x86only")
    (root / ARM_LOCK).write_text("x86only==0.9\n", "utf-8")
    request = per_platform(
        root,
        index,
        platforms=("linux/amd64", "linux/arm64", "darwin/arm64"),
        extra_outputs=(
            platform_lock(root, ARM_LOCK, "linux/arm64"),
            platform_lock(root, MAC_LOCK, "darwin/arm64"),
        ),
    )
    outcome = uv.compile(request)

    assert not outcome.ok
    assert outcome.failure == "conflict"
    assert outcome.error is not None
    assert outcome.error.startswith("linux/arm64: ")
    assert "--python-platform=aarch64-manylinux_2_28" in outcome.argv
    assert "x86only" in outcome.tool_output
    assert "manylinux_2_28_aarch64" in outcome.tool_output
    assert pins(read(request.output, LOCK)) == {"x86only": "1.0"}
    assert not request.extra_outputs[1].output.exists()
    assert (root / ARM_LOCK).read_text("utf-8") == "x86only==0.9\n"
    assert not (root / LOCK).exists()


@pytest.mark.slow
def test_a_failing_main_platform_is_named(root: Path, index: PackageIndex, uv: UvBackend) -> None:
    write_spec(root, "x86only")
    request = per_platform(
        root,
        index,
        platforms=("linux/arm64", "linux/amd64"),
        extra_outputs=(platform_lock(root, LOCK.replace(".txt", "-amd64.txt"), "linux/amd64"),),
    )
    outcome = uv.compile(request)
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.startswith("linux/arm64: ")
    assert not request.extra_outputs[0].output.exists()


# -- one lock: universal, or one platform ---------------------------------------------------


@pytest.mark.slow
def test_universal_lock_carries_markers(root: Path, index: PackageIndex, uv: UvBackend) -> None:
    write_spec(root, "alpha")
    request = per_platform(root, index, universal=True)
    outcome = uv.compile(request)

    assert outcome.ok, outcome.tool_output
    lock = read(request.output, LOCK)
    assert [(e.name, e.version, e.marker) for e in lock.requirements] == [
        ("alpha", "1.0", None),
        ("beta", "1.0", None),
        ("gamma", "1.0", 'platform_machine == "aarch64"'),
    ]
    assert "--universal" in lock.header.command
    assert not any(arg.startswith("--python-platform") for arg in outcome.argv)
    assert not request.extra_outputs[0].output.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param({"platforms": ("linux/arm64",)}, {"gamma"}, id="platforms-arm64"),
        pytest.param({"platforms": ("linux/amd64",)}, set(), id="platforms-amd64"),
    ],
)
def test_one_platform(
    root: Path,
    index: PackageIndex,
    uv: UvBackend,
    overrides: dict[str, object],
    expected: set[str],
) -> None:
    write_spec(root, "alpha")
    request = per_platform(root, index, **{"platforms": (), "extra_outputs": (), **overrides})
    outcome = uv.compile(request)
    assert outcome.ok, outcome.tool_output
    assert set(pins(read(request.output, LOCK))) - {"alpha", "beta"} == expected


# -- accelerator builds from an extra index -------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "platform", "extra_args", "expected"),
    [
        pytest.param("torchlet==2.1.0+cu121", "linux/amd64", (), "2.1.0+cu121", id="local-pin"),
        pytest.param("torchlet==2.1.0", "linux/amd64", (), "2.1.0+cu121", id="public-pin"),
        pytest.param("torchlet", "linux/amd64", (), "2.1.0+cu121", id="unpinned"),
        pytest.param("torchlet==2.1.0", "linux/arm64", (), None, id="arm64-first-index"),
        pytest.param(
            "torchlet==2.1.0",
            "linux/arm64",
            ("--index-strategy=unsafe-best-match",),
            "2.1.0",
            id="arm64-best-match",
        ),
        pytest.param("torchlet==2.1.0+cu121", None, (), "2.1.0+cu121", id="universal"),
    ],
)
def test_accelerator_index(
    root: Path,
    index: PackageIndex,
    uv: UvBackend,
    tmp_path: Path,
    spec: str,
    platform: str | None,
    extra_args: tuple[str, ...],
    expected: str | None,
) -> None:
    """uv's default index strategy (first-index) asks the extra index first and, once it
    has the project, takes versions from it alone: ``torchlet==2.1.0`` becomes the +cu121
    build, and on arm64 (no such build) the compile fails rather than falling back to the
    main index's pure wheel."""
    with start_index(tmp_path / "cu121") as accelerator:
        accelerator.publish("torchlet", "2.1.0+cu121", wheel_tags=[X86])
        write_spec(root, spec)
        request = per_platform(
            root,
            index,
            extra_index_urls=(accelerator.url,),
            extra_args=extra_args,
            platforms=(platform,) if platform else (),
            universal=platform is None,
            extra_outputs=(),
        )
        outcome = uv.compile(request)
    if expected is None:
        assert not outcome.ok
        assert "first index" in outcome.tool_output
        assert "unsafe-best-match" in outcome.tool_output
    else:
        assert outcome.ok, outcome.tool_output
        assert pins(read(request.output, LOCK)) == {"torchlet": expected}


# -- the platform locks against the indexes -------------------------------------------------


@pytest.mark.slow
def test_uv_locks_an_sdist_that_check_wheels_reports(
    root: Path, index: PackageIndex, uv: UvBackend
) -> None:
    """uv resolves ``native`` for arm64 from its x86_64 wheel's metadata and pins it: the arm64
    image would build the sdist. The wheel check says so, and not for amd64."""
    write_spec(root, "native", "alpha")
    request = per_platform(root, index)
    assert uv.compile(request).ok
    main = read(request.output, LOCK)
    arm = read(request.extra_outputs[0].output, ARM_LOCK)
    assert pins(arm)["native"] == "1.0"
    assert len(arm.find("native")[0].hashes) == 2  # the wheel and the sdist

    amd64, arm64 = parse_platform("linux/amd64"), parse_platform("linux/arm64")
    assert check_wheels(main, [amd64], "3.11", [index.url], policy=SANDBOX.policy).gaps == ()
    arm_check = check_wheels(arm, [arm64], "3.11", [index.url], policy=SANDBOX.policy)
    assert arm_check.gaps == (WheelGap("native", "1.0", "linux/arm64", True, index.url),)
    assert arm_check.checked == 4


# -- argv and header, with the subprocess replaced ------------------------------------------


class RecordingRun:
    """Stands in for ``shell.run``: records each call, exits 0 and writes the output file."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: list[str], **kwargs: object) -> CommandResult:
        self.calls.append(tuple(argv))
        return CommandResult(tuple(argv), 0, "", "", 0.5)


def recorded(tmp_path: Path, **overrides: object) -> CompileRequest:
    fields: dict[str, object] = {
        "root": tmp_path,
        "spec": SPEC,
        "lock": LOCK,
        "output": tmp_path / "out.txt",
        "existing": None,
    }
    fields.update(overrides)
    return CompileRequest(**fields)  # type: ignore[arg-type]


def uv_header_lock(*options: str) -> Lockfile:
    command = shlex.join(["uv", "pip", "compile", *options, f"--output-file={LOCK}", SPEC])
    text = f"# This file was autogenerated by uv via the following command:\n#    {command}\n"
    return parse_lockfile(text + "beta==1.0\n", LOCK)


@pytest.mark.parametrize(
    ("existing", "overrides", "platform_args"),
    [
        pytest.param(
            ("--generate-hashes", "--python-platform=x86_64-manylinux_2_28"),
            {"platforms": ("linux/arm64",)},
            ("--python-platform=aarch64-manylinux_2_28",),
            id="recorded-platform-replaced",
        ),
        pytest.param(
            ("--generate-hashes", "--python-platform=x86_64-manylinux_2_28"),
            {"universal": True},
            ("--universal",),
            id="platform-to-universal",
        ),
        pytest.param(
            ("--generate-hashes", "--universal"),
            {"platforms": ("darwin/arm64",)},
            ("--python-platform=aarch64-apple-darwin",),
            id="universal-to-platform",
        ),
        pytest.param(
            ("--generate-hashes", "--python-platform=x86_64-manylinux_2_28"),
            {},
            ("--python-platform=x86_64-manylinux_2_28",),
            id="recorded-platform-replayed",
        ),
        pytest.param(("--generate-hashes",), {}, (), id="no-platform"),
    ],
)
def test_platform_flags_in_argv_and_header(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    existing: tuple[str, ...],
    overrides: dict[str, object],
    platform_args: tuple[str, ...],
) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    outcome = UvBackend({}, "/opt/uv", PLAIN).compile(
        recorded(tmp_path, existing=uv_header_lock(*existing), **overrides)
    )
    assert outcome.ok
    ((argv,),) = [run.calls]
    options = [a for a in argv if a.startswith(("--universal", "--python-platform"))]
    assert tuple(options) == platform_args
    header = shlex.split(outcome.header_command)
    assert tuple(a for a in header if a.startswith(("--universal", "--python-platform"))) == (
        platform_args
    )
    assert argv[-2:] == (f"--output-file={tmp_path / 'out.txt'}", SPEC)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"platforms": ("linux/s390x",)}, id="one-platform"),
        pytest.param({"platforms": ("linux/amd64", "linux/s390x")}, id="main-of-two"),
        pytest.param(
            {
                "platforms": ("linux/amd64", "linux/arm64"),
                "extra_outputs": (
                    ExtraOutput("x.txt", Path("/nowhere/x.txt"), "platform-lock", "linux/s390x"),
                ),
            },
            id="extra-output",
        ),
    ],
)
def test_unknown_platform_fails_without_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, overrides: dict[str, object]
) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    outcome = UvBackend({}, "/opt/uv", PLAIN).compile(recorded(tmp_path, **overrides))
    assert outcome == CompileOutcome(
        ok=False,
        argv=(),
        header_command="",
        duration_s=0.0,
        failure="tool-error",
        error="unknown platform 'linux/s390x'; use one of: linux/amd64, linux/arm64, "
        "darwin/amd64, darwin/arm64, windows/amd64 (in the environment's platforms)",
    )
    assert run.calls == []


def test_per_platform_runs_in_order_and_adds_durations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    extras = (
        platform_lock(tmp_path, ARM_LOCK, "linux/arm64"),
        ExtraOutput("requirements/serve.export.txt", tmp_path / "export.txt", "export"),
        platform_lock(tmp_path, MAC_LOCK, "darwin/arm64"),
    )
    outcome = UvBackend({}, "/opt/uv", PLAIN).compile(
        recorded(
            tmp_path,
            platforms=("linux/amd64", "linux/arm64", "darwin/arm64"),
            extra_outputs=extras,
        )
    )
    assert outcome.ok
    assert outcome.duration_s == pytest.approx(1.5)
    targets = [next(a for a in argv if a.startswith("--python-platform")) for argv in run.calls]
    assert targets == [
        "--python-platform=x86_64-manylinux_2_28",
        "--python-platform=aarch64-manylinux_2_28",
        "--python-platform=aarch64-apple-darwin",
    ]
    assert [argv[-2] for argv in run.calls] == [
        f"--output-file={tmp_path / 'out.txt'}",
        f"--output-file={extras[0].output}",
        f"--output-file={extras[2].output}",
    ]
    assert f"--output-file={MAC_LOCK}" in run.calls[2][-3]


def test_seeding_failure_is_a_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = RecordingRun()
    monkeypatch.setattr(shell, "run", run)
    (tmp_path / "requirements").mkdir()
    (tmp_path / ARM_LOCK).write_text("beta==1.0\n", "utf-8")
    (tmp_path / "blocker").write_text("a file where a directory should be\n", "utf-8")
    extra = ExtraOutput(ARM_LOCK, tmp_path / "blocker" / "out.txt", "platform-lock", "linux/arm64")
    outcome = UvBackend({}, "/opt/uv", PLAIN).compile(
        recorded(tmp_path, platforms=("linux/amd64", "linux/arm64"), extra_outputs=(extra,))
    )
    assert not outcome.ok
    assert outcome.failure == "tool-error"
    assert outcome.error is not None
    assert outcome.error.startswith(f"{ARM_LOCK}: cannot copy the current lock to ")
    assert outcome.duration_s == pytest.approx(0.5)
    assert len(run.calls) == 1
