"""The conda backend: real rattler solves against a conda channel served on 127.0.0.1."""

from __future__ import annotations

import shutil
import socket
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from rattler.explicit_environment import ExplicitEnvironmentSpec

from bot.errors import ConfigError, LockwardenError
from bot.locks.compiler import CompileOutcome, CompileRequest, ExtraOutput
from bot.locks.formats.conda.compiler import (
    CondaBackend,
    classify_channel_error,
    classify_solver_error,
    virtual_packages,
)
from bot.locks.formats.conda.environment import parse_explicit_lock
from bot.locks.formats.conda.platforms import lock_path_for
from bot.locks.lockfile import Lockfile
from bot.locks.modes import CompileMode
from bot.paths import PathEscapeError
from tests.support.conda_channel import (
    CondaChannel,
    publish_graph,
    publish_mlcore_2,
    start_channel,
    unused_channel_url,
)
from tests.support.sandbox import SANDBOX

SPEC = "envs/environment.yml"
PATTERN = "envs/conda-{platform}.lock"


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[CondaChannel]:
    with start_channel(tmp_path / "channel") as served:
        publish_graph(served)
        yield served


@dataclass
class Repo:
    """A working tree with an ``environment.yml``, compiled the way the compile stage does:
    into temporary outputs, renamed onto the locks only on success."""

    root: Path
    backend: CondaBackend

    def write_spec(self, body: str) -> None:
        path = self.root / SPEC
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))

    def lock_path(self, platform: str) -> Path:
        return self.root / lock_path_for(PATTERN, platform)

    def lock(self, platform: str = "linux-64") -> Lockfile:
        path = self.lock_path(platform)
        return parse_explicit_lock(path.read_text(), str(path.relative_to(self.root)))

    def versions(self, platform: str = "linux-64") -> dict[str, str]:
        return self.lock(platform).versions()

    def request(
        self,
        mode: CompileMode | None = None,
        platforms: tuple[str, ...] = (),
        *,
        main: str | None = None,
        extra_platforms: tuple[str, ...] | None = None,
        timeout_s: float = 120.0,
    ) -> CompileRequest:
        main = main or (platforms[0] if platforms else "linux-64")
        others = platforms[1:] if extra_platforms is None else extra_platforms
        extras = tuple(
            ExtraOutput(
                path=lock_path_for(PATTERN, p),
                output=self.lock_path(p).with_name(f".{self.lock_path(p).name}.tmp"),
                kind="platform-lock",
                platform=p,
            )
            for p in others
        )
        return CompileRequest(
            root=self.root,
            spec=SPEC,
            lock=lock_path_for(PATTERN, main),
            output=self.lock_path(main).with_name(f".{self.lock_path(main).name}.tmp"),
            existing=None,
            mode=mode or CompileMode(),
            platforms=platforms,
            extra_outputs=extras,
            timeout_s=timeout_s,
        )

    def compile(self, request: CompileRequest) -> CompileOutcome:
        outcome = self.backend.compile(request)
        outputs = [(request.output, self.root / request.lock)] + [
            (extra.output, self.root / extra.path) for extra in request.extra_outputs
        ]
        if outcome.ok:
            for temporary, final in outputs:
                temporary.replace(final)
        else:
            assert not any(temporary.exists() for temporary, _ in outputs), outcome
        return outcome

    def run(self, mode: CompileMode | None = None, *platforms: str) -> CompileOutcome:
        outcome = self.compile(self.request(mode, platforms))
        assert outcome.ok, outcome
        return outcome

    def snapshot(self) -> dict[str, bytes]:
        return {
            str(p.relative_to(self.root)): p.read_bytes()
            for p in sorted(self.root.rglob("*"))
            if p.is_file()
        }


@pytest.fixture
def repo(tmp_path: Path, channel: CondaChannel) -> Repo:
    root = tmp_path / "repo"
    root.mkdir()
    made = Repo(root, CondaBackend(tmp_path / "cache", policy=SANDBOX.policy))
    made.write_spec(
        f"""\
        name: train
        channels:
          - {channel.url}
        dependencies:
          - python
          - mlcore
          - pytool
        """
    )
    return made


def test_first_solve_writes_an_explicit_lock(repo: Repo, channel: CondaChannel) -> None:
    outcome = repo.run()
    assert outcome.argv == (
        "rattler",
        "solve",
        SPEC,
        "--platform",
        "linux-64",
        "--channel",
        channel.url,
    )
    assert outcome.header_command == f"lockwarden: rattler solve {SPEC} (linux-64)"
    assert outcome.notes == ()
    text = repo.lock_path("linux-64").read_text()
    packages = {
        "mathlib": channel.find("mathlib", "1.2", "noarch"),
        "mlcore": channel.find("mlcore", "1.1", "noarch"),
        "python": channel.find("python", "3.12.0", "linux-64"),
        "pytool": channel.find("pytool", "0.5", "noarch"),
    }
    assert text == (
        f"# This file is generated by Lockwarden from {SPEC}; do not edit by hand.\n"
        "# platform: linux-64\n"
        "# solved with rattler (py-rattler)\n"
        "@EXPLICIT\n" + "".join(f"{channel.package_url(p)}#{p.md5}\n" for p in packages.values())
    )
    lock = repo.lock()
    assert lock.flavour == "conda"
    assert lock.platform == "linux-64"
    assert lock.header.python_version == "3.12"
    assert lock.versions() == {
        "mathlib": "1.2",
        "mlcore": "1.1",
        "python": "3.12.0",
        "pytool": "0.5",
    }
    assert {e.name: e.hashes for e in lock.requirements}["mlcore"] == (
        f"md5:{packages['mlcore'].md5}",
    )
    assert {e.channel for e in lock.requirements} == {channel.url}
    # conda's explicit format as rattler reads it.
    theirs = ExplicitEnvironmentSpec.from_str(text)
    assert str(theirs.platform) == "linux-64"
    assert len(theirs.packages) == 4
    # Solving again with nothing changed gives the same bytes.
    repo.run()
    assert repo.lock_path("linux-64").read_text() == text


def test_minimal_keeps_pins_when_newer_versions_appear(repo: Repo, channel: CondaChannel) -> None:
    repo.run()
    before = repo.snapshot()
    publish_mlcore_2(channel)
    channel.publish("mathlib", "1.3")
    repo.run()
    assert repo.snapshot() == before
    # The same backend (and repodata cache) sees the new versions when asked to upgrade.
    repo.run(CompileMode("full"))
    assert repo.versions() == {
        "mathlib": "1.3",
        "mlcore": "2.0",
        "python": "3.12.0",
        "pytool": "0.5",
    }


def test_minimal_follows_spec_edits_only(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python 3.11.*, mlcore 1.0.*, pytool]
        """
    )
    repo.run()
    assert repo.versions() == {
        "mathlib": "1.2",
        "mlcore": "1.0",
        "python": "3.11.0",
        "pytool": "0.5",
    }
    channel.publish("pytool", "0.6", depends=("python",))
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python, mlcore >=1.1, pytool]
        """
    )
    repo.run()
    # mlcore moves because the spec says so; python and pytool stay where the lock had them.
    assert repo.versions() == {
        "mathlib": "1.2",
        "mlcore": "1.1",
        "python": "3.11.0",
        "pytool": "0.5",
    }


def test_full_upgrades_everything(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python 3.11.*, mlcore <1.1, mathlib 1.0]
        """
    )
    repo.run()
    assert repo.versions() == {"mathlib": "1.0", "mlcore": "1.0", "python": "3.11.0"}
    publish_mlcore_2(channel)
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python, mlcore, mathlib]
        """
    )
    outcome = repo.run(CompileMode("full"))
    assert outcome.argv[-1] == "--update-all"
    assert repo.versions() == {"mathlib": "1.2", "mlcore": "2.0", "python": "3.12.0"}


def test_targeted_rollback_downgrades_only_that_package(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python 3.11.*, mlcore, mathlib 1.0]
        """
    )
    repo.run()
    assert repo.versions() == {"mathlib": "1.0", "mlcore": "1.1", "python": "3.11.0"}
    # Newer releases everywhere; the spec is relaxed so they would all be allowed.
    publish_mlcore_2(channel)
    channel.publish("python", "3.11.8", "h0_0", subdirs=("linux-64",))
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python 3.11.*, mlcore, mathlib]
        """
    )
    spec_before = (repo.root / SPEC).read_bytes()
    outcome = repo.run(CompileMode("targeted", ("mlcore==1.0",)))
    assert outcome.argv[-2:] == ("--update", "mlcore==1.0")
    assert repo.versions() == {"mathlib": "1.0", "mlcore": "1.0", "python": "3.11.0"}
    assert (repo.root / SPEC).read_bytes() == spec_before  # the pin is never written there
    # A targeted update without a version moves that package alone to its newest.
    repo.run(CompileMode("targeted", ("Python",)))
    assert repo.versions() == {"mathlib": "1.0", "mlcore": "1.0", "python": "3.11.8"}


def test_targeted_pin_uses_the_conda_spelling(tmp_path: Path, channel: CondaChannel) -> None:
    channel.publish("_openmp_mutex", "4.5", "1_gnu", subdirs=("linux-64",))
    channel.publish("_openmp_mutex", "4.6", "2_gnu", subdirs=("linux-64",))
    repo = Repo(tmp_path / "other", CondaBackend(tmp_path / "cache", policy=SANDBOX.policy))
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [_openmp_mutex]\n")
    repo.run()
    assert repo.versions() == {"-openmp-mutex": "4.6"}
    repo.run(CompileMode("targeted", ("-openmp-mutex==4.5",)))
    assert repo.versions() == {"-openmp-mutex": "4.5"}


def test_two_platforms_give_two_locks(repo: Repo, channel: CondaChannel) -> None:
    outcome = repo.run(None, "linux/amd64", "linux/arm64")
    assert outcome.header_command == f"lockwarden: rattler solve {SPEC} (linux-64, linux-aarch64)"
    amd64, arm64 = repo.lock("linux/amd64"), repo.lock("linux/arm64")
    assert (amd64.platform, arm64.platform) == ("linux-64", "linux-aarch64")
    assert amd64.versions() == arm64.versions()
    python_amd64 = channel.find("python", "3.12.0", "linux-64")
    python_arm64 = channel.find("python", "3.12.0", "linux-aarch64")
    assert (
        f"{channel.package_url(python_amd64)}#{python_amd64.md5}\n"
        in repo.lock_path("linux-64").read_text()
    )
    assert (
        f"{channel.package_url(python_arm64)}#{python_arm64.md5}\n"
        in repo.lock_path("linux-aarch64").read_text()
    )


def test_platform_specific_package(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [fastkernel]
        """
    )
    repo.run(None, "linux-64")
    assert repo.versions() == {"fastkernel": "0.3", "python": "3.12.0"}
    before = repo.snapshot()
    outcome = repo.compile(repo.request(None, ("linux-64", "linux-aarch64")))
    assert not outcome.ok
    assert outcome.failure == "not-found"
    assert outcome.error == (
        f"no package named fastkernel in {channel.url} for linux-aarch64; check the name in "
        "environment.yml or add the channel that has it"
    )
    assert repo.snapshot() == before


def test_platforms_from_the_spec_then_the_default(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python]
        platforms: [linux-aarch64, linux/amd64]
        """
    )
    outcome = repo.compile(
        repo.request(None, (), main="linux-aarch64", extra_platforms=("linux-64",))
    )
    assert outcome.ok, outcome
    assert outcome.header_command.endswith("(linux-aarch64, linux-64)")
    assert repo.lock("linux-aarch64").platform == "linux-aarch64"
    assert repo.lock("linux-64").platform == "linux-64"
    # No platforms anywhere: linux-64.
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python]\n")
    assert repo.run().header_command.endswith("(linux-64)")


def test_a_missing_platform_output_is_a_programming_error(repo: Repo) -> None:
    request = repo.request(None, ("linux-64", "linux-aarch64"), extra_platforms=())
    with pytest.raises(ValueError, match="no platform-lock output for linux-aarch64"):
        repo.backend.compile(request)


def test_unknown_platform_is_a_setup_error(repo: Repo) -> None:
    request = replace(repo.request(), platforms=("linux/s390x",))
    with pytest.raises(LockwardenError, match="unknown platform 'linux/s390x'"):
        repo.backend.compile(request)


def test_unsolvable_spec_is_a_conflict(repo: Repo, channel: CondaChannel) -> None:
    repo.run()
    before = repo.snapshot()
    publish_mlcore_2(channel)
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies: [python, mlcore >=2, mathlib <1.2]
        """
    )
    before[SPEC] = (repo.root / SPEC).read_bytes()
    outcome = repo.compile(repo.request())
    assert not outcome.ok
    assert outcome.failure == "conflict"
    assert outcome.error == (
        "the conda spec cannot be solved: mlcore >=2 cannot be installed because there are "
        "no viable options (for linux-64)"
    )
    assert "mathlib 1.2, which conflicts with the versions reported above" in outcome.tool_output
    assert repo.snapshot() == before


@pytest.mark.parametrize(
    ("dependency", "error"),
    [
        (
            "nosuchpkg",
            "no package named nosuchpkg in {url} for linux-64; check the name in "
            "environment.yml or add the channel that has it",
        ),
        (
            "mlcore >=3",
            "no release of mlcore matching >=3 in {url} for linux-64; relax the spec in "
            "environment.yml",
        ),
    ],
)
def test_unknown_package_is_not_found(
    repo: Repo, channel: CondaChannel, dependency: str, error: str
) -> None:
    repo.run()
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python, '{dependency}']\n")
    before = repo.snapshot()
    outcome = repo.compile(repo.request())
    assert not outcome.ok
    assert outcome.failure == "not-found"
    assert outcome.error == error.format(url=channel.url)
    assert "No candidates were found" in outcome.tool_output
    assert repo.snapshot() == before


def test_unreachable_channel(repo: Repo) -> None:
    repo.run()
    url = unused_channel_url()
    repo.write_spec(f"channels: [{url}]\ndependencies: [python]\n")
    before = repo.snapshot()
    for mode in (CompileMode(), CompileMode("full")):  # with and without locked packages
        outcome = repo.compile(repo.request(mode))
        assert not outcome.ok
        assert outcome.failure == "index-unreachable"
        assert outcome.error is not None
        assert outcome.error.startswith(f"the conda channel {url} could not be read (")
        assert "Connection refused" in outcome.tool_output
    assert repo.snapshot() == before


def test_missing_channel_is_unreachable(repo: Repo, channel: CondaChannel, tmp_path: Path) -> None:
    missing = repo.root / "no-channel-here"
    repo.write_spec(f"channels: [{missing.as_uri()}]\ndependencies: [python]\n")
    outcome = repo.compile(repo.request(CompileMode("full")))
    assert outcome.failure == "index-unreachable"
    assert outcome.error is not None
    assert missing.as_uri() in outcome.error


def test_channels_by_name_path_and_file_url(tmp_path: Path, channel: CondaChannel) -> None:
    base, name = channel.url.rsplit("/", 1)
    # Local channels are read only inside the repository: a copy of the channel there.
    inside = tmp_path / "repo-local" / "vendor" / "channel"
    shutil.copytree(channel.root, inside)
    for root, listed, backend in (
        (
            tmp_path / "repo-name",
            name,
            CondaBackend(tmp_path / "cache", channel_alias=f"{base}/", policy=SANDBOX.policy),
        ),
        (tmp_path / "repo-local", inside.as_uri(), CondaBackend(None, policy=SANDBOX.policy)),
        (tmp_path / "repo-local", "./vendor/channel", CondaBackend(None, policy=SANDBOX.policy)),
        (tmp_path / "repo-local", str(inside), CondaBackend(None, policy=SANDBOX.policy)),
    ):
        repo = Repo(root, backend)
        repo.write_spec(f"channels: ['{listed}']\ndependencies: [mlcore]\n")
        repo.run()
        assert repo.versions() == {"mathlib": "1.2", "mlcore": "1.1", "python": "3.12.0"}
    relative = tmp_path / "nested" / "repo"
    backend = CondaBackend(tmp_path / "cache", policy=SANDBOX.policy)
    for outside in ("../../channel", channel.file_url, str(channel.root)):
        with pytest.raises(PathEscapeError, match=r"environment\.yml: channel"):
            backend.channel_url(outside, relative)
    assert backend.channel_url("conda-forge", relative) == "https://conda.anaconda.org/conda-forge"
    assert backend.channel_url("https://example.org/ch/", relative) == "https://example.org/ch"


def test_invalid_channel_and_spec_raise_config_errors(repo: Repo) -> None:
    repo.write_spec("channels: ['http://[::1']\ndependencies: [python]\n")
    with pytest.raises(ConfigError, match=r"envs/environment\.yml \(field 'channels'\)"):
        repo.backend.compile(repo.request())
    repo.write_spec("channels: [c]\ndependencies: [numpy>>1]\n")
    with pytest.raises(ConfigError, match=r"envs/environment\.yml:2"):
        repo.backend.compile(repo.request())


def test_pip_entries_are_noted_not_locked(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(
        f"""\
        channels: [{channel.url}]
        dependencies:
          - python
          - pip:
            - requests==2.31.0
        """
    )
    outcome = repo.run()
    assert outcome.notes == (
        f"{SPEC}: the pip: entries (requests==2.31.0) are not solved by conda and are not "
        "locked; move them to a requirements environment to lock them",
    )
    assert set(repo.versions()) == {"python"}


def test_python_version_is_ignored(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python 3.11.*]\n")
    outcome = repo.compile(replace(repo.request(), python_version="3.12"))
    assert outcome.ok
    assert repo.versions() == {"python": "3.11.0"}


def test_existing_lock_from_the_request(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python 3.11.*]\n")
    repo.run()
    seed = repo.lock()
    repo.lock_path("linux-64").unlink()  # the request's lock is used, not the file
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python]\n")
    outcome = repo.compile(replace(repo.request(), existing=seed))
    assert outcome.ok
    assert repo.versions() == {"python": "3.11.0"}


def test_unreadable_lock_is_solved_afresh(repo: Repo, channel: CondaChannel) -> None:
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python 3.11.*]\n")
    repo.run(None, "linux-64", "linux-aarch64")
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [python]\n")
    repo.lock_path("linux-aarch64").write_text("numpy==1.0\n")
    outcome = repo.run(None, "linux-64", "linux-aarch64")
    assert outcome.notes == (
        "envs/conda-linux-aarch64.lock could not be read (envs/conda-linux-aarch64.lock:1: "
        "not a conda explicit lock: expected comments, then @EXPLICIT, then package URLs; "
        "found 'numpy==1.0'); it was solved afresh",
    )
    assert repo.versions("linux-64") == {"python": "3.11.0"}  # kept from its lock
    assert repo.versions("linux-aarch64") == {"python": "3.12.0"}


def test_yanked_pin_moves_to_what_is_published(repo: Repo, channel: CondaChannel) -> None:
    repo.run()
    assert repo.versions()["mlcore"] == "1.1"
    channel.yank("mlcore", "1.1")
    repo.run()
    assert repo.versions()["mlcore"] == "1.0"


def test_out_of_time_is_a_timeout(repo: Repo) -> None:
    outcome = repo.compile(repo.request(timeout_s=0.0))
    assert not outcome.ok
    assert outcome.failure == "timeout"
    assert outcome.error == (
        "the conda solve for linux-64 did not finish in time; raise the timeout or narrow "
        "the specs in environment.yml"
    )


def test_a_channel_that_never_answers_is_a_timeout(repo: Repo) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # connections complete, but no request is ever answered
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/testing"
        repo.write_spec(f"channels: [{url}]\ndependencies: [python]\n")
        outcome = repo.compile(repo.request(CompileMode("full"), timeout_s=0.5))
    assert not outcome.ok
    assert outcome.failure == "timeout"
    assert "did not finish in time" in (outcome.error or "")


def test_compiles_from_worker_threads(tmp_path: Path, channel: CondaChannel) -> None:
    """The compile stage calls backends from worker threads, each with its own event loop."""
    backend = CondaBackend(tmp_path / "cache", policy=SANDBOX.policy)
    repos = []
    for index in range(4):
        repo = Repo(tmp_path / f"repo{index}", backend)
        repo.write_spec(
            f"channels: [{channel.url}]\ndependencies: [mlcore, python 3.1{index % 2 + 1}.*]\n"
        )
        repos.append(repo)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(lambda r: r.compile(r.request()), repos))
    assert all(o.ok for o in outcomes), outcomes
    assert [r.versions()["python"] for r in repos] == ["3.11.0", "3.12.0", "3.11.0", "3.12.0"]


@pytest.mark.parametrize(
    ("subdir", "expected"),
    [
        ("linux-64", ["__unix=0=0", "__linux=5.10=0", "__glibc=2.28=0", "__archspec=1=x86_64"]),
        (
            "linux-aarch64",
            ["__unix=0=0", "__linux=5.10=0", "__glibc=2.28=0", "__archspec=1=aarch64"],
        ),
        (
            "linux-ppc64le",
            ["__unix=0=0", "__linux=5.10=0", "__glibc=2.28=0", "__archspec=1=ppc64le"],
        ),
        ("osx-64", ["__unix=0=0", "__osx=11.0=0", "__archspec=1=x86_64"]),
        ("osx-arm64", ["__unix=0=0", "__osx=13.0=0", "__archspec=1=arm64"]),
        ("win-64", ["__win=0=0"]),
    ],
)
def test_virtual_packages_are_the_targets(subdir: str, expected: list[str]) -> None:
    found = virtual_packages(subdir)
    assert [f"{v.name.normalized}={v.version}={v.build_string}" for v in found] == expected


def test_virtual_packages_steer_the_solve(repo: Repo, channel: CondaChannel) -> None:
    # Two builds of one version: the newer needs a glibc the target does not have.
    channel.publish("gpukit", "1.0", "h0_0", depends=("__glibc >=2.17",), subdirs=("linux-64",))
    channel.publish(
        "gpukit", "1.0", "h1_1", depends=("__glibc >=2.34",), subdirs=("linux-64",), build_number=1
    )
    channel.publish("mackit", "1.0", depends=("__osx >=12",), subdirs=("osx-arm64",))
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [gpukit]\n")
    repo.run()
    assert [e.build for e in repo.lock().requirements] == ["h0_0"]
    repo.write_spec(f"channels: [{channel.url}]\ndependencies: [mackit]\n")
    repo.run(None, "darwin/arm64")
    assert repo.versions("osx-arm64") == {"mackit": "1.0"}


def test_duplicate_platforms_and_other_outputs(repo: Repo, tmp_path: Path) -> None:
    export = ExtraOutput(
        path="requirements.txt", output=tmp_path / "export.tmp", kind="export", platform=None
    )
    request = replace(repo.request(None, ("linux/amd64", "linux-64")), extra_outputs=(export,))
    outcome = repo.backend.compile(request)
    assert outcome.ok
    assert outcome.header_command.endswith("(linux-64)")
    assert request.output.is_file()
    assert not export.output.exists()  # not a platform lock: not the conda backend's to write


def test_invalid_targeted_pin_is_a_value(repo: Repo) -> None:
    repo.run()
    outcome = repo.compile(repo.request(CompileMode("targeted", ("mlcore==>>1",))))
    assert outcome.failure == "tool-error"
    assert outcome.error is not None
    assert outcome.error.startswith("invalid package pin: ")


# rattler's own words, as its solver and gateway print them.
CANCELLED = "Solve operation has been cancelled"
INCOMPATIBLE = """Cannot solve the request because of: The following packages are incompatible
├─ python 3.12.* can be installed with any of the following options:
│  └─ python 3.12.0
└─ python 3.11.* cannot be installed because there are no viable options:
   └─ python 3.11.0, which conflicts with the versions reported above.
"""
REFUSED = """error sending request for url (http://127.0.0.1:9/testing/noarch/repodata_shards.msgpack.zst)
Caused by: client error (Connect)
Caused by: tcp connect error
Caused by: Connection refused (os error 111)"""
DNS = """error sending request for url (https://conda.anaconda.org/conda-forge/noarch/repodata.json)
Caused by: dns error
Caused by: failed to lookup address information: Name or service not known"""


@pytest.mark.parametrize(
    ("message", "kind", "error"),
    [
        (CANCELLED, "timeout", "the conda solve for osx-64 did not finish in time"),
        (
            INCOMPATIBLE,
            "conflict",
            "the conda spec cannot be solved: python 3.11.* cannot be installed because there "
            "are no viable options (for osx-64)",
        ),
        (
            "Cannot solve the request because of: No candidates were found for zlib *.\n",
            "not-found",
            "no package named zlib in https://c.example/ch for osx-64",
        ),
        (
            "Cannot solve the request because of: No candidates were found for zlib 1.3.*.",
            "not-found",
            "no release of zlib matching 1.3.* in https://c.example/ch for osx-64",
        ),
        ("", "conflict", "the conda spec cannot be solved: no reason given (for osx-64)"),
    ],
)
def test_classify_solver_error(message: str, kind: str, error: str) -> None:
    found_kind, found_error = classify_solver_error(message, "osx-64", ["https://c.example/ch"])
    assert found_kind == kind
    assert found_error.startswith(error)


@pytest.mark.parametrize(
    ("message", "channels", "error"),
    [
        (
            REFUSED,
            ["https://conda.anaconda.org/conda-forge", "http://127.0.0.1:9/testing"],
            "the conda channel http://127.0.0.1:9/testing could not be read (Connection "
            "refused (os error 111))",
        ),
        (
            DNS,
            ["https://conda.anaconda.org/conda-forge", "http://127.0.0.1:9/testing"],
            "the conda channel https://conda.anaconda.org/conda-forge could not be read "
            "(failed to lookup address information: Name or service not known)",
        ),
        ("", ["a", "b"], "the conda channel a, b could not be read (no reason given)"),
    ],
)
def test_classify_channel_error(message: str, channels: list[str], error: str) -> None:
    kind, found = classify_channel_error(message, channels)
    assert kind == "index-unreachable"
    assert found.startswith(error)
