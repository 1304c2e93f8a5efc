"""The buildah builder: the commands it runs and how it reads their results.

``bot.shell.run`` is replaced by a recorder that answers with scripted results, so these
tests see the exact argv of every buildah call. One slow test builds, runs and removes a
real image.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot import shell
from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.images import BuildSpec, Mount, RunSpec
from bot.images import buildah as buildah_module
from bot.images.buildah import BuildahBuilder, build_error, default_runtime

# -- a scripted stand-in for bot.shell.run ---------------------------------------------------


@dataclass
class Reply:
    """What one scripted command does: its result, or an exception, plus a side effect."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.25
    raises: Exception | None = None
    effect: Callable[[tuple[str, ...]], None] | None = None


@dataclass
class Call:
    argv: tuple[str, ...]
    env: Mapping[str, str] | None
    timeout_s: float


@dataclass
class Recorder:
    """Records every call; answers with the first reply whose key starts the arguments.

    A key is the words after the executable (``"inspect"``, ``"rm"``); a list of replies is
    used up in order. Commands without a reply succeed with no output.
    """

    replies: dict[str, Reply | list[Reply]] = field(default_factory=dict)
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
        reply = self._reply(args)
        if reply.effect is not None:
            reply.effect(args)
        if reply.raises is not None:
            raise reply.raises
        return shell.CommandResult(
            args, reply.returncode, reply.stdout, reply.stderr, reply.duration_s
        )

    def _reply(self, args: tuple[str, ...]) -> Reply:
        for key, reply in self.replies.items():
            words = tuple(key.split())
            if args[1 : 1 + len(words)] == words:
                if isinstance(reply, list):
                    return reply.pop(0) if len(reply) > 1 else reply[0]
                return reply
        return Reply()

    def argvs(self, subcommand: str) -> list[tuple[str, ...]]:
        return [c.argv for c in self.calls if c.argv[1] == subcommand]

    def only(self, subcommand: str) -> tuple[str, ...]:
        (argv,) = self.argvs(subcommand)
        return argv


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    fake = Recorder({"inspect": Reply(stdout=inspect_json())})  # every build finds its image
    monkeypatch.setattr("bot.images.buildah.shell.run", fake)
    return fake


ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/home/bot",
    "GITHUB_TOKEN": "ghs_secret",
    "LOCKWARDEN_WEBHOOK_SECRET": "hook",
}


def builder(**kwargs: object) -> BuildahBuilder:
    kwargs.setdefault("runtime", "runc")
    return BuildahBuilder(ENV, **kwargs)  # type: ignore[arg-type]


# -- realistic buildah output ----------------------------------------------------------------

IMAGE_ID = "9306a7b511c8c1076b1a7b492c00f1ffdf1c126802a05f877f6d9c84f954eaa3"
BASE_LAYER = "sha256:0de087edaac25085165912447f150d7adeb7162f6fde69fab35dfdd54cc32211"
RUN_LAYER = "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"


def inspect_json(
    image_id: str = IMAGE_ID,
    layers: Sequence[tuple[str, int]] = ((BASE_LAYER, 160081920), (RUN_LAYER, 10240)),
) -> str:
    """What ``buildah inspect --type=image`` prints (the fields the builder reads, and some
    it ignores)."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": f"sha256:{image_id}",
            "size": 741,
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                # the blob digest of an uncompressed layer is its diff id
                "digest": diff_id,
                "size": size,
            }
            for diff_id, size in layers
        ],
        "annotations": {"org.opencontainers.image.base.name": ""},
    }
    return json.dumps(
        {
            "Type": "buildah 0.0.1",
            "FromImage": "localhost/lockwarden/ml-service-serve:after",
            "FromImageID": image_id,
            "FromImageDigest": "sha256:" + "d" * 64,
            "Config": "{}",
            "Manifest": json.dumps(manifest, separators=(",", ":")),
            "Container": "",
            "ContainerID": "",
            "OCIv1": {
                "created": "1970-01-01T00:00:00Z",
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["python3"]},
                "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
                "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "/bin/sh"}],
            },
            "Docker": {},
            "History": [],
        },
        indent=4,
    )


FAILED_BUILD_STDOUT = """\
STEP 1/2: FROM python:3.11-slim-bookworm
STEP 2/2: RUN pip install --require-hashes -r /tmp/requirements.txt
ERROR: Could not find a version that satisfies the requirement beta==9.9 (from versions: none)
ERROR: No matching distribution found for beta==9.9
"""
FAILED_BUILD_STDERR = """\
error building at STEP "RUN pip install --require-hashes -r /tmp/requirements.txt": \
error while running runtime: exit status 1
Error: building at STEP "RUN pip install --require-hashes -r /tmp/requirements.txt": \
while running runtime: exit status 1
"""


def spec(tmp_path: Path, **kwargs: object) -> BuildSpec:
    values: dict[str, object] = {
        "context": tmp_path,
        "dockerfile": tmp_path / "Dockerfile",
        "tag": "localhost/lockwarden/ml-service-serve:0123456789abcdef",
    }
    values.update(kwargs)
    return BuildSpec(**values)  # type: ignore[arg-type]


# -- build -----------------------------------------------------------------------------------


def test_build_argv(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM python:3.11-slim-bookworm\nRUN make\n")
    built_from: list[str] = []

    def read_dockerfile(argv: tuple[str, ...]) -> None:
        (path,) = [a.removeprefix("--file=") for a in argv if a.startswith("--file=")]
        built_from.extend((path, Path(path).read_text()))

    recorder.replies["bud"] = Reply(effect=read_dockerfile)
    recorder.replies["inspect"] = Reply(stdout=inspect_json())

    builder(pull="never").build(
        spec(
            tmp_path,
            build_args={"SOURCE_DATE_EPOCH": "0", "PIP_INDEX_URL": "http://index/simple"},
            timestamp=0,
            timeout_s=42.0,
        )
    )

    argv = list(recorder.only("bud"))
    network = argv[6]
    # A holder process's namespace (gone once the build is over), never the host's.
    assert re.fullmatch(r"--network=ns:/proc/\d+/ns/net", network)
    assert argv == [
        "buildah",
        "bud",
        "--runtime=runc",
        "--pull=never",
        "--layers",
        "--force-rm",
        network,
        "--http-proxy=false",
        f"--file={built_from[0]}",
        "--tag=localhost/lockwarden/ml-service-serve:0123456789abcdef",
        "--timestamp=0",
        "--build-arg=HTTPS_PROXY=http://127.0.0.1:3128",
        "--build-arg=HTTP_PROXY=http://127.0.0.1:3128",
        "--build-arg=NO_PROXY=",
        "--build-arg=PIP_INDEX_URL=http://index/simple",
        "--build-arg=SOURCE_DATE_EPOCH=0",
        "--build-arg=http_proxy=http://127.0.0.1:3128",
        "--build-arg=https_proxy=http://127.0.0.1:3128",
        "--build-arg=no_proxy=",
        str(tmp_path),
    ]
    assert recorder.calls[0].timeout_s == 42.0
    # A copy whose stage declares SOURCE_DATE_EPOCH, so RUN steps see it; gone afterwards.
    assert Path(built_from[0]).name == "Dockerfile"
    assert built_from[1] == ("FROM python:3.11-slim-bookworm\nARG SOURCE_DATE_EPOCH\nRUN make\n")
    assert not Path(built_from[0]).exists()
    assert (tmp_path / "Dockerfile").read_text() == "FROM python:3.11-slim-bookworm\nRUN make\n"


def test_build_argv_no_cache_offline_without_timestamp(recorder: Recorder, tmp_path: Path) -> None:
    builder().build(spec(tmp_path, no_cache=True, network="none"))

    argv = recorder.only("bud")
    assert "--no-cache" in argv
    assert "--network=none" in argv
    assert "--pull=missing" in argv  # the default pull policy
    assert not any(a.startswith(("--timestamp", "--build-arg")) for a in argv)
    assert f"--file={tmp_path / 'Dockerfile'}" in argv  # no timestamp: the file as it is
    assert argv[-1] == str(tmp_path)  # the context comes last


def test_build_without_runtime_flag(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buildah_module, "default_runtime", lambda: None)
    BuildahBuilder(ENV).build(spec(tmp_path))
    BuildahBuilder(ENV, runtime="crun").build(spec(tmp_path))

    first, second = recorder.argvs("bud")
    assert not any(a.startswith("--runtime") for a in first)
    assert "--runtime=crun" in second


def test_builder_never_passes_the_bots_credentials(recorder: Recorder, tmp_path: Path) -> None:
    builder().build(spec(tmp_path))

    env = recorder.calls[0].env
    assert env is not None
    assert env["PATH"] == ENV["PATH"]
    assert env["HOME"] == ENV["HOME"]
    assert "GITHUB_TOKEN" not in env
    assert "LOCKWARDEN_WEBHOOK_SECRET" not in env


def test_build_success_inspects_the_tag(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["bud"] = Reply(
        stdout="STEP 1/2: FROM python:3.11-slim-bookworm\nSTEP 2/2: RUN echo hi\nhi\n"
        "COMMIT localhost/lockwarden/ml-service-serve:0123456789abcdef\n" + IMAGE_ID + "\n",
        duration_s=12.5,
    )
    recorder.replies["inspect"] = Reply(stdout=inspect_json())

    outcome = builder().build(spec(tmp_path))

    assert outcome.ok
    assert outcome.error is None
    assert outcome.duration_s == 12.5
    assert outcome.image is not None
    assert outcome.image.reference == "localhost/lockwarden/ml-service-serve:0123456789abcdef"
    assert outcome.image.image_id == f"sha256:{IMAGE_ID}"
    assert outcome.log_tail.endswith(IMAGE_ID)
    assert "STEP 2/2: RUN echo hi" in outcome.log_tail
    assert recorder.only("inspect") == (
        "buildah",
        "inspect",
        "--type=image",
        "localhost/lockwarden/ml-service-serve:0123456789abcdef",
    )


def test_failed_build_is_a_value_with_the_error_line(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["bud"] = Reply(
        returncode=1, stdout=FAILED_BUILD_STDOUT, stderr=FAILED_BUILD_STDERR, duration_s=3.0
    )

    outcome = builder().build(spec(tmp_path))

    assert not outcome.ok
    assert outcome.image is None
    assert outcome.duration_s == 3.0
    assert outcome.error == (
        'building at STEP "RUN pip install --require-hashes -r /tmp/requirements.txt": '
        "while running runtime: exit status 1"
    )
    assert "No matching distribution found for beta==9.9" in outcome.log_tail
    assert outcome.log_tail.startswith("STEP 1/2")
    assert recorder.argvs("inspect") == []


def test_build_error_is_buildahs_verdict_not_a_line_of_the_step(
    recorder: Recorder, tmp_path: Path
) -> None:
    # buildah prints the step's stdout on stdout, its stderr and the verdict on stderr
    recorder.replies["bud"] = Reply(
        returncode=1,
        stdout="STEP 1/2: FROM python:3.11-slim-bookworm\nSTEP 2/2: RUN make\nerror: on stdout\n",
        stderr="error: on stderr\n"
        'Error: building at STEP "RUN make": while running runtime: exit status 1\n',
    )

    outcome = builder().build(spec(tmp_path))

    assert outcome.error == 'building at STEP "RUN make": while running runtime: exit status 1'


STORE_RACE_STDERR = (
    'Error: building at STEP "RUN pip install -r /tmp/requirements.txt": creating build '
    "container: 4f1c0a2b: layer not known\n"
)
MULTI_STAGE_STDOUT = """\
[1/2] STEP 1/2: FROM python:3.11-slim-bookworm AS build
[1/2] STEP 2/2: RUN pip install -r /tmp/requirements.txt
--> Using cache 32466dab61ec6886046754d274ce0c844ecce6aec96811f9ddfbcfac514eadfa
--> 32466dab61e
[2/2] STEP 1/3: FROM python:3.11-slim-bookworm
[2/2] STEP 2/3: COPY --from=build /opt/venv /opt/venv
--> 6b34ed70ee9
[2/2] STEP 3/3: COPY app/ app/
[2/2] COMMIT localhost/lockwarden/ml-service-serve:0123456789abcdef
--> 25c032099c4
"""


def test_a_build_that_lost_a_layer_to_a_removal_runs_once_more(
    recorder: Recorder, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder.replies["bud"] = [
        Reply(returncode=125, stderr=STORE_RACE_STDERR),
        Reply(stdout=MULTI_STAGE_STDOUT),
    ]

    with caplog.at_level("WARNING", logger="bot.images.buildah"):
        outcome = builder().build(spec(tmp_path))

    assert outcome.ok, outcome.error
    assert len(recorder.argvs("bud")) == 2
    assert outcome.stages == ("32466dab61e",)  # the first stage's image, for the cache
    (record,) = caplog.records
    assert record.getMessage() == (
        "building localhost/lockwarden/ml-service-serve:0123456789abcdef again: the image "
        'store changed under it (building at STEP "RUN pip install -r /tmp/requirements.txt":'
        " creating build container: 4f1c0a2b: layer not known)"
    )


def test_a_build_is_retried_only_once_and_only_for_the_race(
    recorder: Recorder, tmp_path: Path
) -> None:
    recorder.replies["bud"] = Reply(returncode=125, stderr=STORE_RACE_STDERR)
    outcome = builder().build(spec(tmp_path))
    assert not outcome.ok
    assert outcome.error is not None
    assert outcome.error.endswith("layer not known")
    assert len(recorder.argvs("bud")) == 2

    recorder.calls.clear()
    recorder.replies["bud"] = Reply(returncode=1, stdout=FAILED_BUILD_STDOUT)
    assert not builder().build(spec(tmp_path)).ok
    assert len(recorder.argvs("bud")) == 1


def test_a_failed_build_removes_the_steps_it_committed(recorder: Recorder, tmp_path: Path) -> None:
    # Step 2 came from the cache (another build's): only step 3's image is this build's.
    recorder.replies["bud"] = Reply(
        returncode=1,
        stdout="STEP 1/4: FROM python:3.11-slim-bookworm\nSTEP 2/4: RUN a\n"
        "--> Using cache 7cd5b26126ca7803790afe97146a78f5bd84e7fdd46a91dff26a71e99f0b8a14\n"
        "--> 7cd5b26126c\nSTEP 3/4: RUN b\n--> 9c91f34a0e3\nSTEP 4/4: RUN false\n",
        stderr='Error: building at STEP "RUN false": exit status 1\n',
    )
    recorder.replies["images"] = Reply(stdout='[{"id": "9c91f34a0e35", "names": null}]')

    builder().build(spec(tmp_path))

    assert recorder.argvs("images") == [("buildah", "images", "--json", "9c91f34a0e3")]
    assert recorder.only("rmi") == ("buildah", "rmi", "9c91f34a0e3")  # by id, never forced


def test_build_timeout_is_a_value(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["bud"] = Reply(
        raises=CommandTimeoutError(
            "'buildah bud --runtime=runc ...' did not finish within 5 s and was stopped",
            detail="STEP 1/2: FROM python:3.11-slim-bookworm\nSTEP 2/2: RUN sleep 600\n",
        )
    )

    outcome = builder().build(spec(tmp_path, timeout_s=5.0))

    assert not outcome.ok
    assert outcome.image is None
    assert outcome.duration_s == 5.0
    assert outcome.error is not None
    assert "did not finish within 5 s" in outcome.error
    assert outcome.log_tail.endswith("STEP 2/2: RUN sleep 600")


# -- inspect ---------------------------------------------------------------------------------


def test_inspect_reads_id_size_and_layers(recorder: Recorder) -> None:
    recorder.replies["inspect"] = Reply(stdout=inspect_json())

    image = builder().inspect("localhost/x:1")

    assert image is not None
    assert image.reference == "localhost/x:1"
    assert image.image_id == f"sha256:{IMAGE_ID}"
    assert image.size == 160081920 + 10240
    assert image.layers == (BASE_LAYER, RUN_LAYER)
    assert image.repo_digest is None


def test_inspect_keeps_a_prefixed_id_and_tolerates_a_missing_manifest(recorder: Recorder) -> None:
    data = json.loads(inspect_json())
    data["FromImageID"] = f"sha256:{IMAGE_ID}"
    data["Manifest"] = ""
    del data["OCIv1"]
    recorder.replies["inspect"] = Reply(stdout=json.dumps(data))

    image = builder().inspect("localhost/x:1")

    assert image is not None
    assert image.image_id == f"sha256:{IMAGE_ID}"
    assert image.size == 0
    assert image.layers == ()


def test_inspect_of_a_missing_image_is_none(recorder: Recorder) -> None:
    recorder.replies["inspect"] = Reply(
        returncode=125,
        stderr="Error: localhost/x:1: image not known\n",
    )
    assert builder().inspect("localhost/x:1") is None


# -- run -------------------------------------------------------------------------------------


def run_spec(**kwargs: object) -> RunSpec:
    values: dict[str, object] = {
        "image": "localhost/lockwarden/ml-service-serve:0123456789abcdef",
        "command": ("python", "-m", "pytest", "-q"),
    }
    values.update(kwargs)
    return RunSpec(**values)  # type: ignore[arg-type]


def container_name(recorder: Recorder) -> str:
    (name,) = [a for a in recorder.only("from") if a.startswith("--name=")]
    return name.removeprefix("--name=")


def test_run_argv_locked_down(recorder: Recorder, tmp_path: Path) -> None:
    recorder.replies["run"] = Reply(stdout="3 passed in 0.12s\n", duration_s=4.0)

    outcome = builder(pull="never").run(
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
    assert recorder.only("from") == (
        "buildah",
        "from",
        "--pull=never",
        "--quiet",
        f"--name={name}",
        "--network=none",
        "--memory=512m",
        "--cpu-period=100000",
        "--cpu-quota=150000",
        "--ulimit=nproc=256:256",
        "localhost/lockwarden/ml-service-serve:0123456789abcdef",
    )
    assert recorder.only("run") == (
        "buildah",
        "run",
        "--runtime=runc",
        "--network=none",
        "--env=CI=1",
        "--env=PYTHONHASHSEED=0",
        f"--volume={tmp_path / 'serve.txt'}:/tmp/lockwarden/requirements.txt:ro",
        f"--volume={tmp_path / 'out'}:/out:rw",
        "--workingdir=/app",
        name,
        "--",
        "python",
        "-m",
        "pytest",
        "-q",
    )
    assert recorder.only("rm") == ("buildah", "rm", name)
    run_call = next(c for c in recorder.calls if c.argv[1] == "run")
    assert run_call.timeout_s == 30.0
    assert outcome.status == "passed"
    assert outcome.exit_code == 0
    assert outcome.duration_s == 4.0
    assert outcome.log_tail == "3 passed in 0.12s"


def test_run_with_network(recorder: Recorder) -> None:
    builder().run(run_spec(network=True))

    assert "--network=none" in recorder.only("from")
    run = recorder.only("run")
    assert any(re.fullmatch(r"--network=ns:/proc/\d+/ns/net", a) for a in run)
    assert "--env=HTTPS_PROXY=http://127.0.0.1:3128" in run
    assert not any(a.endswith("=host") for a in run)
    assert not any(a.startswith("--workingdir") for a in recorder.only("run"))


@pytest.mark.parametrize(
    ("code", "status"),
    [(0, "passed"), (1, "failed"), (2, "errored"), (5, "errored"), (137, "errored")],
)
def test_run_exit_codes(recorder: Recorder, code: int, status: str) -> None:
    recorder.replies["run"] = Reply(returncode=code, stdout="out\n", stderr="err\n")

    outcome = builder().run(run_spec())

    assert outcome.status == status
    assert outcome.exit_code == code
    assert outcome.log_tail == "out\nerr"
    assert recorder.only("rm")[-1] == container_name(recorder)


def test_run_timeout_keeps_partial_output_and_removes_the_container(
    recorder: Recorder,
) -> None:
    recorder.replies["run"] = Reply(
        raises=CommandTimeoutError(
            "'buildah run --runtime=runc ...' did not finish within 2 s and was stopped",
            detail="collected 12 items\ntests/test_model.py ....",
        )
    )

    outcome = builder().run(run_spec(timeout_s=2.0))

    assert outcome.status == "timed-out"
    assert outcome.exit_code is None
    assert outcome.duration_s == 2.0
    assert outcome.log_tail == "collected 12 items\ntests/test_model.py ...."
    assert recorder.only("rm") == ("buildah", "rm", container_name(recorder))


def test_run_removes_the_container_when_run_raises(recorder: Recorder) -> None:
    recorder.replies["run"] = Reply(raises=LockwardenError("unexpected"))

    with pytest.raises(LockwardenError):
        builder().run(run_spec())

    assert recorder.only("rm") == ("buildah", "rm", container_name(recorder))


def test_run_when_the_container_cannot_be_created(recorder: Recorder) -> None:
    recorder.replies["from"] = Reply(
        returncode=125,
        stderr="Error: creating build container: localhost/x:1: image not known\n",
    )

    outcome = builder().run(run_spec(image="localhost/x:1"))

    assert outcome.status == "errored"
    assert outcome.exit_code is None
    assert "image not known" in outcome.log_tail
    assert recorder.argvs("run") == []


def test_every_run_uses_a_new_container(recorder: Recorder) -> None:
    builder().run(run_spec())
    builder().run(run_spec())

    names = {a for argv in recorder.argvs("rm") for a in argv[2:]}
    assert len(names) == 2


# -- push and remove -------------------------------------------------------------------------

PUSHED_DIGEST = "sha256:" + "e" * 64


def write_digestfile(argv: tuple[str, ...]) -> None:
    (arg,) = [a for a in argv if a.startswith("--digestfile=")]
    Path(arg.removeprefix("--digestfile=")).write_text(PUSHED_DIGEST + "\n")


def test_push_reads_the_digestfile(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(effect=write_digestfile)

    digest = builder().push(
        "localhost/lockwarden/x:abc", "127.0.0.1:5000/acme/x:abc", tls_verify=False
    )

    assert digest == PUSHED_DIGEST
    argv = list(recorder.only("push"))
    (digestfile,) = [a for a in argv if a.startswith("--digestfile=")]
    argv.remove(digestfile)
    assert argv == [
        "buildah",
        "push",
        "--quiet",
        "--tls-verify=false",
        "localhost/lockwarden/x:abc",
        "docker://127.0.0.1:5000/acme/x:abc",
    ]
    assert not Path(digestfile.removeprefix("--digestfile=")).exists()  # temporary


def test_push_verifies_tls_by_default(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(effect=write_digestfile)
    builder().push("localhost/x:1", "ghcr.io/acme/x:1")
    assert "--tls-verify=true" in recorder.only("push")


def test_push_failure_raises(recorder: Recorder) -> None:
    recorder.replies["push"] = Reply(
        returncode=125,
        stderr="Getting image source signatures\nError: writing blob: "
        "http: server gave HTTP response to HTTPS client\n",
    )

    with pytest.raises(LockwardenError) as caught:
        builder().push("localhost/x:1", "127.0.0.1:5000/acme/x:1")

    assert caught.value.user_message == "pushing localhost/x:1 to 127.0.0.1:5000/acme/x:1 failed"
    assert "server gave HTTP response to HTTPS client" in caught.value.detail


def test_remove(recorder: Recorder) -> None:
    builder().remove("localhost/x:1")
    assert recorder.only("rmi") == ("buildah", "rmi", "--force", "localhost/x:1")


def test_tag_names_and_untag(recorder: Recorder) -> None:
    recorder.replies["images"] = Reply(
        stdout='[{"id": "699b57f6637a", "names": ["localhost/x:1", "localhost/x:after"]}]'
    )
    recorder.replies["rmi"] = Reply(returncode=125, stderr="Error: image used by 1f2e: in use")

    assert builder().tag("localhost/x:1", "localhost/x:after")
    assert builder().names("sha256:699b") == ("localhost/x:1", "localhost/x:after")
    assert not builder().untag("localhost/x:1")  # in use: it stays

    assert recorder.only("tag") == ("buildah", "tag", "localhost/x:1", "localhost/x:after")
    assert recorder.only("rmi") == ("buildah", "rmi", "localhost/x:1")
    recorder.replies["images"] = Reply(returncode=125, stderr="Error: image not known")
    assert builder().names("localhost/gone:1") == ()
    recorder.replies["images"] = Reply(returncode=125, stderr="Error: layer not known")
    assert builder().names("localhost/x:1") is None  # the store could not say


# -- availability and installation -----------------------------------------------------------


def fake_executable(directory: Path, name: str = "buildah") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_available_when_buildah_version_works(recorder: Recorder, tmp_path: Path) -> None:
    fake_executable(tmp_path / "bin")
    assert BuildahBuilder({"PATH": str(tmp_path / "bin")}, runtime="").available()
    assert recorder.only("version") == ("buildah", "version")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(returncode=1, stderr="Error: could not get runtime\n"), id="fails"),
        pytest.param(Reply(raises=CommandTimeoutError("timed out")), id="hangs"),
    ],
)
def test_unavailable_when_buildah_version_fails(
    recorder: Recorder, tmp_path: Path, reply: Reply
) -> None:
    fake_executable(tmp_path / "bin")
    recorder.replies["version"] = reply
    assert not BuildahBuilder({"PATH": str(tmp_path / "bin")}, runtime="").available()


def test_unavailable_without_the_binary(recorder: Recorder, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert not BuildahBuilder({"PATH": str(tmp_path / "empty")}, runtime="").available()
    assert recorder.calls == []


def test_missing_executable_names_how_to_install_it(tmp_path: Path) -> None:
    missing = BuildahBuilder(ENV, runtime="", executable=str(tmp_path / "no-such-buildah"))

    with pytest.raises(ToolNotFoundError) as caught:
        missing.inspect("localhost/x:1")

    assert "apt-get install buildah" in caught.value.user_message
    assert "LOCKWARDEN_BUILDER=docker" in caught.value.user_message
    assert not missing.available()


@pytest.mark.parametrize(
    ("unified", "runc", "expected"),
    [
        (True, "/usr/sbin/runc", None),
        (True, None, None),
        (False, "/usr/sbin/runc", "runc"),
        (False, None, None),
    ],
)
def test_default_runtime(
    monkeypatch: pytest.MonkeyPatch, unified: bool, runc: str | None, expected: str | None
) -> None:
    checked: list[str] = []

    def exists(self: Path) -> bool:
        checked.append(str(self))
        return unified

    monkeypatch.setattr(Path, "exists", exists)
    monkeypatch.setattr("bot.images.buildah.shutil.which", lambda name: runc)

    assert default_runtime() == expected
    assert checked == ["/sys/fs/cgroup/cgroup.controllers"]


def test_constructor_uses_the_default_runtime(
    recorder: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buildah_module, "default_runtime", lambda: "runc")
    BuildahBuilder(ENV).build(spec(tmp_path))
    assert "--runtime=runc" in recorder.only("bud")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        (FAILED_BUILD_STDERR + FAILED_BUILD_STDOUT, FAILED_BUILD_STDERR.splitlines()[1][7:]),
        ("STEP 1/1: FROMM x\nError: parsing Dockerfile: unknown instruction: FROMM\n", None),
        ("error: no context directory and no Containerfile specified\n", None),
        ("Error: first\nError: second\n", "second"),
        ("something went wrong\n", "the build failed"),
        ("", "the build failed"),
    ],
)
def test_build_error(output: str, expected: str | None) -> None:
    if expected is None:
        expected = output.splitlines()[-1].split(": ", 1)[1]
    assert build_error(output) == expected


# -- a real build ----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_build_inspect_run_remove(buildah_base: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim-bookworm\nRUN echo hi > /hi\n", "utf-8"
    )
    real = BuildahBuilder(os.environ, runtime="runc", pull="never")
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


def _buildah(*args: str) -> str:
    # buildah 1.28 fails a listing when another build removes a container or image while it
    # reads the store ("container not known"): other builds on this machine may, so a
    # listing is asked again.
    for _ in range(5):
        done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=120)
        if done.returncode == 0 or "not known" not in done.stderr:
            break
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_failed_build_leaves_no_container_behind(buildah_base: str, tmp_path: Path) -> None:
    # A base of its own name: the build's working container is named after it, so other
    # builds on this machine (CI runs several) do not count.
    base = f"localhost/lockwarden-test-fails-{uuid.uuid4().hex[:12]}"
    _buildah("tag", buildah_base, base)
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base}\nRUN echo step one > /one\nRUN exit 3\n", "utf-8"
    )
    real = BuildahBuilder(os.environ, runtime="runc", pull="never")
    try:
        outcome = real.build(BuildSpec(tmp_path, tmp_path / "Dockerfile", f"{base}:built"))
        names = _buildah("containers", "--all", "--format", "{{.ContainerName}}").split()
    finally:
        _buildah("rmi", base)  # only this name: the base keeps its own

    assert not outcome.ok
    assert [n for n in names if base.rsplit("/", 1)[1] in n] == []
