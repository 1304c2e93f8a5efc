"""The docker builder: the commands it runs and how it reads their results.

``bot.shell.run`` is replaced by a recorder that answers with scripted results, so these
tests see the exact argv of every docker call. One slow test builds, runs and removes a real
image on the test daemon.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import shell
from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.images import BuildSpec, Mount, RunSpec
from bot.images.docker import DockerBuilder, _build_error

# -- a scripted stand-in for bot.shell.run ---------------------------------------------------


@dataclass
class Reply:
    """What one scripted command does: its result, or an exception."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.25
    raises: Exception | None = None


@dataclass
class Call:
    argv: tuple[str, ...]
    env: Mapping[str, str] | None
    timeout_s: float


@dataclass
class Recorder:
    """Records every call; answers with the first reply whose key starts the arguments.

    A key is the words after the executable (``"image inspect"``, ``"rm"``). Commands
    without a reply succeed with no output.
    """

    replies: dict[str, Reply] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def __call__(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | str | None = None,
        env: Mapping[str, str] | None = None,
        timeout_s: float = shell.DEFAULT_TIMEOUT_S,
        stdin_text: str | None = None,
    ) -> shell.CommandResult:
        args = tuple(str(a) for a in argv)
        self.calls.append(Call(args, env, timeout_s))
        reply = next(
            (r for key, r in self.replies.items() if _starts(args[1:], key.split())),
            Reply(),
        )
        if reply.raises is not None:
            raise reply.raises
        return shell.CommandResult(
            args, reply.returncode, reply.stdout, reply.stderr, reply.duration_s
        )

    def argvs(self, *subcommand: str) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls if _starts(c.argv[1:], subcommand)]

    def only(self, *subcommand: str) -> tuple[str, ...]:
        (argv,) = self.argvs(*subcommand)
        return argv

    def subcommands(self) -> list[str]:
        return [c.argv[1] for c in self.calls]


def _starts(args: Sequence[str], words: Sequence[str]) -> bool:
    return tuple(args[: len(words)]) == tuple(words)


# -- realistic docker output -----------------------------------------------------------------

IMAGE_ID = "sha256:4b1a7f3c86d2e9b0a5f6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f901234"
BASE_LAYER = "sha256:0de087edaac25085165912447f150d7adeb7162f6fde69fab35dfdd54cc32211"
RUN_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
TAG = "localhost/lockwarden/ml-service-serve:0123456789abcdef"


def inspect_json(image_id: str = IMAGE_ID, size: int = 160_092_160) -> str:
    """What ``docker image inspect`` prints: a list with one object per image."""
    return json.dumps(
        [
            {
                "Id": image_id,
                "RepoTags": [TAG],
                "RepoDigests": [],
                "Parent": "",
                "Comment": "",
                "Created": "1970-01-01T00:00:00Z",
                "DockerVersion": "",
                "Author": "",
                "Config": {
                    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"],
                    "Cmd": ["python3"],
                    "WorkingDir": "",
                    "Labels": None,
                },
                "Architecture": "amd64",
                "Os": "linux",
                "Size": size,
                "GraphDriver": {"Data": {}, "Name": "overlay2"},
                "RootFS": {"Type": "layers", "Layers": [BASE_LAYER, RUN_LAYER]},
                "Metadata": {"LastTagTime": "2024-06-01T10:00:00.000000000Z"},
            }
        ],
        indent=4,
    )


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    fake = Recorder({"image inspect": Reply(stdout=inspect_json())})
    monkeypatch.setattr("bot.images.docker.shell.run", fake)
    return fake


ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/home/bot",
    "DOCKER_HOST": "unix:///run/lockwarden/docker.sock",
    "GITHUB_TOKEN": "ghs_secret",
    "AWS_SECRET_ACCESS_KEY": "aws",
}


def spec(tmp_path: Path, **kwargs: object) -> BuildSpec:
    values: dict[str, object] = {
        "context": tmp_path,
        "dockerfile": tmp_path / "Dockerfile",
        "tag": TAG,
    }
    values.update(kwargs)
    return BuildSpec(**values)  # type: ignore[arg-type]


# -- build -----------------------------------------------------------------------------------


def test_build_argv(recorder: Recorder, tmp_path: Path) -> None:
    DockerBuilder(ENV).build(
        spec(
            tmp_path,
            build_args={"PIP_INDEX_URL": "http://index/simple", "A": "1"},
            timestamp=1700000000,
            timeout_s=42.0,
        )
    )

    assert recorder.only("build") == (
        "docker",
        "build",
        "--force-rm",
        "--network=default",  # the daemon's bridge: never the host's network
        f"--file={tmp_path / 'Dockerfile'}",
        f"--tag={TAG}",
        "--build-arg=A=1",
        "--build-arg=PIP_INDEX_URL=http://index/simple",
        "--build-arg=SOURCE_DATE_EPOCH=1700000000",
        str(tmp_path),
    )
    assert recorder.calls[0].timeout_s == 42.0


def test_build_argv_pull_no_cache_offline(recorder: Recorder, tmp_path: Path) -> None:
    DockerBuilder(ENV, pull=True).build(spec(tmp_path, no_cache=True, network="none"))

    assert recorder.only("build") == (
        "docker",
        "build",
        "--force-rm",
        "--network=none",
        f"--file={tmp_path / 'Dockerfile'}",
        f"--tag={TAG}",
        "--pull",
        "--no-cache",
        str(tmp_path),
    )


def test_build_keeps_an_explicit_source_date_epoch(recorder: Recorder, tmp_path: Path) -> None:
    DockerBuilder(ENV).build(spec(tmp_path, build_args={"SOURCE_DATE_EPOCH": "5"}, timestamp=0))

    argv = recorder.only("build")
    assert [a for a in argv if "SOURCE_DATE_EPOCH" in a] == ["--build-arg=SOURCE_DATE_EPOCH=5"]


def test_builder_environment_keeps_docker_host_only(recorder: Recorder, tmp_path: Path) -> None:
    DockerBuilder(ENV).build(spec(tmp_path))

    env = recorder.calls[0].env
    assert env == {
        "PATH": ENV["PATH"],
        "HOME": ENV["HOME"],
        "DOCKER_HOST": ENV["DOCKER_HOST"],
    }


def test_build_success_inspects_the_tag(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["build"] = Reply(
        stdout="Step 1/2 : FROM python:3.11-slim-bookworm\n ---> 4b1a7f3c86d2\n"
        "Step 2/2 : RUN echo hi > /hi\n ---> Running in 1f2e3d4c5b6a\n"
        "Successfully built 4b1a7f3c86d2\nSuccessfully tagged " + TAG + "\n",
        duration_s=8.0,
    )

    outcome = DockerBuilder(ENV).build(spec(tmp_path))

    assert outcome.ok
    assert outcome.duration_s == 8.0
    assert outcome.image is not None
    assert outcome.image.reference == TAG
    assert outcome.image.image_id == IMAGE_ID
    assert outcome.log_tail.endswith("Successfully tagged " + TAG)
    assert recorder.only("image", "inspect") == ("docker", "image", "inspect", TAG)


LEGACY_FAILURE = """\
Step 1/2 : FROM python:3.11-slim-bookworm
 ---> 4b1a7f3c86d2
Step 2/2 : RUN pip install -r /tmp/requirements.txt
 ---> Running in 1f2e3d4c5b6a
ERROR: No matching distribution found for beta==9.9
"""
LEGACY_ERROR = "The command '/bin/sh -c pip install -r /tmp/requirements.txt' returned a \
non-zero code: 1"
LEGACY_STDERR = f"""\
DEPRECATED: The legacy builder is deprecated and will be removed in a future release.
            Install the buildx component to build images with BuildKit:
            https://docs.docker.com/go/buildx/

{LEGACY_ERROR}
"""
BUILDKIT_FAILURE = """\
#5 [2/2] RUN false
#5 ERROR: process "/bin/sh -c false" did not complete successfully: exit code: 1
------
 > [2/2] RUN false:
------
Dockerfile:2
--------------------
   1 |     FROM python:3.11-slim-bookworm
   2 | >>> RUN false
   3 |
--------------------
ERROR: failed to solve: process "/bin/sh -c false" did not complete successfully: exit code: 1
"""


def test_failed_build_is_a_value_with_the_error_line(recorder: Recorder, tmp_path: Path) -> None:
    # the legacy builder: the steps' output on stdout, the verdict on stderr
    recorder.replies["build"] = Reply(
        returncode=1, stdout=LEGACY_FAILURE, stderr=LEGACY_STDERR, duration_s=2.0
    )

    outcome = DockerBuilder(ENV).build(spec(tmp_path))

    assert not outcome.ok
    assert outcome.image is None
    assert outcome.duration_s == 2.0
    assert outcome.error == LEGACY_ERROR
    assert "No matching distribution found for beta==9.9" in outcome.log_tail
    assert recorder.argvs("image", "inspect") == []


def test_build_timeout_is_a_value(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["build"] = Reply(
        raises=CommandTimeoutError(
            "'docker build --network=default ...' did not finish within 5 s and was stopped",
            detail="Step 1/2 : FROM python:3.11-slim-bookworm\nStep 2/2 : RUN sleep 600\n",
        )
    )

    outcome = DockerBuilder(ENV).build(spec(tmp_path, timeout_s=5.0))

    assert not outcome.ok
    assert outcome.image is None
    assert outcome.duration_s == 5.0
    assert outcome.error is not None
    assert "did not finish within 5 s" in outcome.error
    assert outcome.log_tail.endswith("Step 2/2 : RUN sleep 600")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        pytest.param(LEGACY_FAILURE + LEGACY_ERROR, LEGACY_ERROR, id="legacy"),
        pytest.param(
            BUILDKIT_FAILURE,
            'ERROR: failed to solve: process "/bin/sh -c false" did not complete '
            "successfully: exit code: 1",
            id="buildkit",
        ),
        pytest.param(
            'unable to prepare context: path "/nope" not found\n',
            'unable to prepare context: path "/nope" not found',
            id="last-line",
        ),
        pytest.param("failed to read dockerfile: open Dockerfile: no such file\n\n", None, id="f"),
        pytest.param("error during connect: Get http://x: EOF\n", None, id="connect"),
        pytest.param("\n  \n", "the build failed", id="empty"),
    ],
)
def test_build_error(output: str, expected: str | None) -> None:
    if expected is None:
        expected = output.strip()
    assert _build_error(output) == expected


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_reads_id_size_and_layers(recorder: Recorder) -> None:
    image = DockerBuilder(ENV).inspect(TAG)

    assert image is not None
    assert image.reference == TAG
    assert image.image_id == IMAGE_ID
    assert image.size == 160_092_160
    assert image.layers == (BASE_LAYER, RUN_LAYER)
    assert image.repo_digest is None


def test_inspect_tolerates_missing_size_and_rootfs(recorder: Recorder) -> None:
    data = json.loads(inspect_json())
    del data[0]["Size"], data[0]["RootFS"]
    recorder.replies["image inspect"] = Reply(stdout=json.dumps(data))

    image = DockerBuilder(ENV).inspect(TAG)

    assert image is not None
    assert image.size == 0
    assert image.layers == ()


def test_inspect_of_a_missing_image_is_none(recorder: Recorder) -> None:
    recorder.replies["image inspect"] = Reply(
        returncode=1, stdout="[]\n", stderr=f"Error response from daemon: No such image: {TAG}\n"
    )
    assert DockerBuilder(ENV).inspect(TAG) is None


# -- run -------------------------------------------------------------------------------------


def run_spec(**kwargs: object) -> RunSpec:
    values: dict[str, object] = {"image": TAG, "command": ("python", "-m", "pytest", "-q")}
    values.update(kwargs)
    return RunSpec(**values)  # type: ignore[arg-type]


def container_name(recorder: Recorder) -> str:
    (name,) = [a for a in recorder.only("run") if a.startswith("--name=")]
    return name.removeprefix("--name=")


def test_run_argv_locked_down(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["run"] = Reply(stdout="3 passed in 0.12s\n", duration_s=4.0)

    outcome = DockerBuilder(ENV).run(
        run_spec(
            env={"PYTHONHASHSEED": "0", "CI": "1"},
            mounts=(
                Mount(tmp_path / "serve.txt", "/tmp/lockwarden/requirements.txt"),
                Mount(tmp_path / "out", "/out", read_only=False),
            ),
            memory="512m",
            cpus=1.5,
            pids_limit=256,
            timeout_s=30.0,
            workdir="/app",
        )
    )

    name = container_name(recorder)
    assert re.fullmatch(r"lockwarden-run-[0-9a-f]{12}", name)
    assert recorder.only("run") == (
        "docker",
        "run",
        f"--name={name}",
        "--network=none",
        "--memory=512m",
        "--memory-swap=512m",
        "--cpus=1.5",
        "--pids-limit=256",
        "--security-opt=no-new-privileges",
        "--cap-drop=ALL",
        "--env=CI=1",
        "--env=PYTHONHASHSEED=0",
        f"--volume={tmp_path / 'serve.txt'}:/tmp/lockwarden/requirements.txt:ro",
        f"--volume={tmp_path / 'out'}:/out:rw",
        "--workdir=/app",
        TAG,
        "python",
        "-m",
        "pytest",
        "-q",
    )
    assert recorder.calls[0].timeout_s == 30.0
    assert recorder.only("rm") == ("docker", "rm", "--force", name)
    assert outcome.status == "passed"
    assert outcome.exit_code == 0
    assert outcome.duration_s == 4.0
    assert outcome.log_tail == "3 passed in 0.12s"


def test_run_with_network(recorder: Recorder) -> None:
    DockerBuilder(ENV).run(run_spec(network=True))

    argv = recorder.only("run")
    assert "--network=bridge" in argv
    assert "--network=host" not in argv
    assert not any(a.startswith("--workdir") for a in argv)


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, "passed"), (1, "failed"), (4, "errored"), (125, "errored"), (137, "errored")],
)
def test_run_exit_codes(recorder: Recorder, code: int, status: str) -> None:
    recorder.replies["run"] = Reply(returncode=code, stdout="out\n", stderr="err\n")

    outcome = DockerBuilder(ENV).run(run_spec())

    assert outcome.status == status
    assert outcome.exit_code == code
    assert outcome.log_tail == "out\nerr"
    assert recorder.only("rm")[-1] == container_name(recorder)


def test_run_timeout_reads_the_logs_and_removes_the_container(recorder: Recorder) -> None:
    recorder.replies["run"] = Reply(
        raises=CommandTimeoutError(
            "'docker run --name=lockwarden-run-0 ...' did not finish within 2 s and was stopped",
            detail="collected 12 items\n",
        )
    )
    recorder.replies["logs"] = Reply(stdout="collected 12 items\n", stderr="tests/test_x.py ..\n")

    outcome = DockerBuilder(ENV).run(run_spec(timeout_s=2.0))

    name = container_name(recorder)
    assert outcome.status == "timed-out"
    assert outcome.exit_code is None
    assert outcome.duration_s == 2.0
    assert outcome.log_tail == "collected 12 items\ntests/test_x.py .."
    assert recorder.only("logs") == ("docker", "logs", "--tail=200", name)
    assert recorder.subcommands() == ["run", "logs", "rm"]
    assert recorder.only("rm") == ("docker", "rm", "--force", name)


def test_run_removes_the_container_when_run_raises(recorder: Recorder) -> None:
    recorder.replies["run"] = Reply(raises=LockwardenError("unexpected"))

    with pytest.raises(LockwardenError):
        DockerBuilder(ENV).run(run_spec())

    assert recorder.only("rm") == ("docker", "rm", "--force", container_name(recorder))


# -- push and remove -------------------------------------------------------------------------

PUSHED_DIGEST = "sha256:" + "e" * 64
PUSH_OUTPUT = f"""\
The push refers to repository [127.0.0.1:5000/acme/x]
5f70bf18a086: Pushed
0de087edaac2: Pushed
abc: digest: {PUSHED_DIGEST} size: 739
"""


def test_push_tags_pushes_and_reads_the_digest(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(stdout=PUSH_OUTPUT)

    digest = DockerBuilder(ENV).push(
        "localhost/lockwarden/x:abc", "127.0.0.1:5000/acme/x:abc", tls_verify=False
    )

    assert digest == PUSHED_DIGEST
    assert [c.argv for c in recorder.calls] == [
        ("docker", "tag", "localhost/lockwarden/x:abc", "127.0.0.1:5000/acme/x:abc"),
        ("docker", "push", "127.0.0.1:5000/acme/x:abc"),
    ]


def test_push_failure_raises(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(
        returncode=1,
        stdout="The push refers to repository [127.0.0.1:5000/acme/x]\n",
        stderr='Get "https://127.0.0.1:5000/v2/": http: server gave HTTP response to '
        "HTTPS client\n",
    )

    with pytest.raises(LockwardenError) as caught:
        DockerBuilder(ENV).push("localhost/x:1", "127.0.0.1:5000/acme/x:1")

    assert caught.value.user_message == "pushing localhost/x:1 to 127.0.0.1:5000/acme/x:1 failed"
    assert "server gave HTTP response to HTTPS client" in caught.value.detail


def test_push_stops_when_tagging_fails(recorder: Recorder) -> None:
    recorder.replies["tag"] = Reply(
        returncode=1, stderr="Error response from daemon: No such image: localhost/x:1\n"
    )

    with pytest.raises(LockwardenError) as caught:
        DockerBuilder(ENV).push("localhost/x:1", "127.0.0.1:5000/acme/x:1")

    assert "No such image" in caught.value.detail
    assert recorder.argvs("push") == []


def test_push_without_a_digest_line_raises(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(stdout="The push refers to repository [r/x]\n")

    with pytest.raises(LockwardenError, match="docker printed no digest"):
        DockerBuilder(ENV).push("localhost/x:1", "r/x:1")


def test_remove(recorder: Recorder) -> None:
    DockerBuilder(ENV).remove("localhost/x:1")
    assert recorder.only("image", "rm") == ("docker", "image", "rm", "--force", "localhost/x:1")


# -- availability and installation -----------------------------------------------------------


def fake_executable(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "docker"
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_available_when_the_daemon_answers(recorder: Recorder, tmp_path: Path) -> None:
    fake_executable(tmp_path / "bin")
    recorder.replies["info"] = Reply(stdout="5d2a0c3e-19b1-4f0e-b1a8-3a54c1d2e9f7\n")

    assert DockerBuilder({"PATH": str(tmp_path / "bin")}).available()
    assert recorder.only("info") == ("docker", "info", "--format={{.ID}}")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(
            Reply(
                returncode=1,
                stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                "Is the docker daemon running?\n",
            ),
            id="no-daemon",
        ),
        pytest.param(Reply(raises=CommandTimeoutError("timed out")), id="hangs"),
    ],
)
def test_unavailable_when_the_daemon_does_not_answer(
    recorder: Recorder, tmp_path: Path, reply: Reply
) -> None:
    fake_executable(tmp_path / "bin")
    recorder.replies["info"] = reply
    assert not DockerBuilder({"PATH": str(tmp_path / "bin")}).available()


def test_unavailable_without_the_binary(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert not DockerBuilder({"PATH": str(tmp_path / "empty")}).available()
    assert recorder.calls == []


def test_missing_executable_names_how_to_install_it(tmp_path: Path) -> None:
    missing = DockerBuilder(ENV, executable=str(tmp_path / "no-such-docker"))

    with pytest.raises(ToolNotFoundError) as caught:
        missing.inspect(TAG)

    assert "docker is not installed" in caught.value.user_message
    assert "LOCKWARDEN_BUILDER=buildah" in caught.value.user_message
    assert not missing.available()


# -- a real build ----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_build_inspect_run_remove(
    docker_host: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim-bookworm\nRUN echo hi > /hi\n", "utf-8"
    )
    real = DockerBuilder(os.environ)
    tag = f"localhost/lockwarden-test/smoke:{uuid.uuid4().hex[:12]}"

    outcome = real.build(BuildSpec(tmp_path, tmp_path / "Dockerfile", tag, timestamp=0))
    try:
        assert outcome.ok, outcome.log_tail
        assert outcome.image is not None
        assert outcome.image.image_id.startswith("sha256:")
        assert len(outcome.image.layers) == 2
        assert outcome.image.size > 0
        assert real.inspect(tag) == outcome.image

        ran = real.run(RunSpec(image=tag, command=("cat", "/hi"), timeout_s=120))
        assert ran.status == "passed", ran.log_tail
        assert ran.log_tail == "hi"
    finally:
        real.remove(tag)
    assert real.inspect(tag) is None
