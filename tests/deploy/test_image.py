"""Lockwarden's own image, built from deploy/Dockerfile with buildah and run.

The build starts from the locally made ``python:3.11-slim-bookworm`` (the ``buildah_base``
fixture) and needs PyPI (the lock's wheels) and Debian's mirror (the OS packages): a few
minutes the first time; later runs reuse the unchanged steps' layers (an edit to bot/ redoes
only the project's install and the copy of its venv). The image is then checked as a
deployment uses it: the receiver starts and answers ``/healthz`` (polled with the image's own
HEALTHCHECK command), it runs as uid 10001, has no compiler, and a worker can build an image
with rootless buildah inside it, in a container limited to the capabilities
deploy/kubernetes/worker-deployment.yaml grants. The latest image is kept (as
``localhost/lockwarden-test/deploy:last-build``) for the next run; the one before it goes.
"""

from __future__ import annotations

import json
import os
import shlex
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot import __version__, shell
from bot.images.buildah import BuildahBuilder
from tests.support.base_image import BUILDAH_NAMES, ToolMissing, base_rootfs_tarball

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WORKER_MANIFEST = ROOT / "deploy" / "kubernetes" / "worker-deployment.yaml"
UID = 10001
BUILD_TIMEOUT_S = 1800.0
# What the image may weigh here (the locally made base is ~160 MB): the venv (with the conda
# solver, ~80 MB), Poetry's own venv (~110 MB) and the OS packages, with room to grow, but
# not a compiler toolchain.
SIZE_BUDGET = 900 * 10**6


def buildah(*args: str, timeout_s: float = 300.0) -> shell.CommandResult:
    return shell.run(["buildah", *args], timeout_s=timeout_s)


def ok(result: shell.CommandResult) -> str:
    assert result.ok, f"{' '.join(result.argv[:4])} ...: exit {result.returncode}\n" + (
        result.output_tail(60)
    )
    return result.stdout


@pytest.fixture(scope="module")
def image(buildah_base: str) -> Iterator[str]:
    """deploy/Dockerfile built on the local base image; its tag. The image then stays as
    :data:`LAST_BUILD` (the previous one goes), so that the next run reuses its layers."""
    tag = f"localhost/lockwarden-test/deploy:{uuid.uuid4().hex[:12]}"
    previous = image_id(LAST_BUILD)
    built = buildah(
        "bud",
        "--runtime=runc",
        "--pull-never",
        "--network=host",
        # Steps whose instruction and inputs are unchanged come from the previous build's
        # layers (an edit to bot/ reruns only the steps from its copy on): the OS packages
        # and the locked wheels are not downloaded again on every run.
        "--layers",
        # The docker format keeps the HEALTHCHECK (OCI has no field for it).
        "--format=docker",
        f"--build-arg=PYTHON_IMAGE={BUILDAH_NAMES[0]}",
        "--build-arg=SOURCE_DATE_EPOCH=0",
        # The other Pythons come from a host this machine does not reach.
        "--build-arg=EXTRA_PYTHONS=",
        "--file=deploy/Dockerfile",
        f"--tag={tag}",
        str(ROOT),
        timeout_s=BUILD_TIMEOUT_S,
    )
    try:
        ok(built)
        yield tag
    finally:
        keep_as_last_build(tag, previous)


LAST_BUILD = "localhost/lockwarden-test/deploy:last-build"
"""The latest build of deploy/Dockerfile: removing an image also removes the cached steps of
its final stage (its untagged parents), so one build is kept for the next run to start from."""


def image_id(reference: str) -> str | None:
    found = buildah("inspect", "--type=image", "--format={{.FromImageID}}", reference)
    return found.stdout.strip() if found.ok else None


def keep_as_last_build(tag: str, previous: str | None) -> None:
    """Move :data:`LAST_BUILD` to ``tag``'s image, drop the name ``tag``, then remove the
    previous last build with the layers only it used. Without ``--force``: an image another
    run still has a name for stays."""
    if image_id(tag) is not None:
        buildah("tag", tag, LAST_BUILD)
        buildah("rmi", tag)  # a second name: only the name goes
    if previous is not None and previous != image_id(LAST_BUILD):
        buildah("rmi", previous)


class Container:
    """A working container of the image (``buildah from``), removed on exit."""

    def __init__(self, image: str, *from_args: str) -> None:
        self.name = f"lockwarden-deploy-{uuid.uuid4().hex[:12]}"
        ok(buildah("from", "--pull-never", "--quiet", f"--name={self.name}", *from_args, image))

    def run(
        self, *command: str, options: Sequence[str] = (), timeout_s: float = 300.0
    ) -> shell.CommandResult:
        return buildah(
            "run", "--runtime=runc", *options, self.name, "--", *command, timeout_s=timeout_s
        )

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        buildah("rm", self.name, timeout_s=120)


def config(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(buildah("inspect", "--type=image", image)))
    return data


# -- the image as built ----------------------------------------------------------------------


def test_image_config(image: str) -> None:
    docker = config(image)["Docker"]["config"]
    assert docker["User"] == f"{UID}:{UID}"
    assert docker["Entrypoint"] == ["/usr/bin/tini", "--", "lockwarden"]
    assert docker["Cmd"] == ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    assert "8000/tcp" in docker["ExposedPorts"]
    assert docker["StopSignal"] == "SIGTERM"
    env = dict(item.split("=", 1) for item in docker["Env"])
    assert env["PATH"].startswith("/opt/lockwarden/bin:")
    assert env["BUILDAH_ISOLATION"] == "chroot"
    assert env["LOCKWARDEN_CACHE_DIR"] == "/var/cache/lockwarden"
    labels = docker["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.base.name"] == BUILDAH_NAMES[0]
    check = docker["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    assert "/healthz" in check[-1]

    info = BuildahBuilder(os.environ, runtime="runc", pull="never").inspect(image)
    assert info is not None
    assert 0 < info.size <= SIZE_BUDGET, f"{info.size / 10**6:.0f} MB"


def test_user_tools_and_no_compiler(image: str) -> None:
    script = """
set -eu
echo "uid=$(id -u) gid=$(id -g) home=$HOME"
lockwarden --version
buildah --version
runc --version | head -n 1
git --version
tini --version
getcap /usr/bin/newuidmap /usr/bin/newgidmap
cat /etc/subuid /etc/subgid
for tool in gcc cc g++ c++ clang make ld as; do
    if command -v "$tool" >/dev/null 2>&1; then echo "present: $tool"; fi
done
for package in build-essential gcc gcc-12 g++ cpp cpp-12 binutils libc6-dev make; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [ "$status" = "install ok installed" ]; then echo "present: package $package"; fi
done
ls /opt/lockwarden/bin/pip-compile /opt/lockwarden/bin/uv /opt/lockwarden/bin/hadolint
"$LOCKWARDEN_POETRY_BIN" --version
"$LOCKWARDEN_POETRY_BIN" export --help >/dev/null && echo "poetry export available"
test -w /var/cache/lockwarden && test -w "$HOME" && echo writable
"""
    with Container(image) as container:
        out = ok(container.run("sh", "-c", script))
    assert f"uid={UID} gid={UID} home=/home/lockwarden" in out
    assert f"lockwarden, version {__version__}" in out
    assert "buildah version" in out
    assert "runc version" in out
    assert "git version" in out
    assert "tini version" in out
    assert "Poetry (version 2." in out
    assert "poetry export available" in out
    assert "/usr/bin/newuidmap cap_setuid=ep" in out
    assert "/usr/bin/newgidmap cap_setgid=ep" in out
    assert out.count("lockwarden:100000:65536") == 2
    assert "present:" not in out, out
    assert "writable" in out


# -- the receiver ----------------------------------------------------------------------------

_SERVE_CHECK = """
import json, signal, subprocess, sys, time, urllib.request

healthcheck = json.loads(sys.argv[1])
server = subprocess.Popen(
    ["lockwarden", "serve", "--host", "127.0.0.1", "--port", "8000"],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
)
result = {"healthy": False, "checks": 0}
deadline = time.monotonic() + 60
while time.monotonic() < deadline and server.poll() is None:
    result["checks"] += 1
    if subprocess.run(healthcheck, capture_output=True, timeout=10).returncode == 0:
        result["healthy"] = True
        break
    time.sleep(0.5)
if result["healthy"]:
    with urllib.request.urlopen("http://127.0.0.1:8000/healthz", timeout=5) as answer:
        result["status"] = answer.status
        result["body"] = json.loads(answer.read())
server.send_signal(signal.SIGTERM)
try:
    server.wait(timeout=20)
    result["stopped"] = True
except subprocess.TimeoutExpired:
    server.kill()
    server.wait()
    result["stopped"] = False
result["returncode"] = server.returncode
result["log"] = server.stdout.read()[-4000:]
print(json.dumps(result))
"""


def test_receiver_answers_healthz_and_stops_on_sigterm(image: str, tmp_path: Path) -> None:
    healthcheck = config(image)["Docker"]["config"]["Healthcheck"]["Test"][1:]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "lockwarden-app.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pem.chmod(0o644)
    check = tmp_path / "serve_check.py"
    check.write_text(_SERVE_CHECK, "utf-8")
    check.chmod(0o644)
    options = [
        # A network namespace of its own, with only loopback: the HEALTHCHECK's port 8000
        # is free there whatever the host runs.
        "--network=none",
        f"--volume={pem}:/run/secrets/lockwarden-app.pem:ro",
        f"--volume={check}:/tmp/serve_check.py:ro",
        "--env=LOCKWARDEN_APP_ID=1",
        "--env=LOCKWARDEN_PRIVATE_KEY_PATH=/run/secrets/lockwarden-app.pem",
        "--env=LOCKWARDEN_WEBHOOK_SECRET=deploy-test-secret",
    ]
    with Container(image, "--network=none") as container:
        out = ok(
            container.run(
                "python",
                "/tmp/serve_check.py",
                json.dumps(healthcheck),
                options=options,
                timeout_s=180,
            )
        )
    result = json.loads(out.strip().splitlines()[-1])
    assert result["healthy"], result["log"]
    assert result["status"] == 200
    assert result["body"]["status"] == "ok"
    # SIGTERM: uvicorn shuts down cleanly (it re-raises the signal once done).
    assert result["stopped"], result["log"]
    assert result["returncode"] in (0, -15), result["log"]
    assert "Application shutdown complete" in result["log"]


# -- a worker's rootless build ---------------------------------------------------------------

_ROOTLESS_BUILD = """
set -eu
grep -E '^(CapEff|CapBnd|NoNewPrivs):' /proc/self/status
buildah unshare cat /proc/self/uid_map
buildah info --format '{{.store.GraphDriverName}}'; echo
base=$(buildah from scratch)
buildah add --quiet "$base" /base.tar /
buildah commit --quiet "$base" localhost/inner-base >/dev/null
buildah rm "$base" >/dev/null
mkdir -p /tmp/context
printf '%s\\n' 'FROM localhost/inner-base' \\
    'RUN touch /owned && chown 42:42 /owned && python3 -c "print(6 * 7)"' \\
    > /tmp/context/Dockerfile
buildah bud --pull-never --quiet --tag localhost/inner-test /tmp/context
test_container=$(buildah from --pull-never localhost/inner-test)
buildah run "$test_container" -- stat -c 'owner=%u:%g' /owned
buildah rm "$test_container" >/dev/null
buildah rmi --all --force >/dev/null
echo rootless-build-ok
"""


def _worker_capabilities() -> list[str]:
    docs = list(yaml.safe_load_all(WORKER_MANIFEST.read_text("utf-8")))
    (deployment,) = [d for d in docs if d and d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    added: list[str] = container["securityContext"]["capabilities"]["add"]
    return added


def test_worker_builds_images_with_rootless_buildah(image: str, tmp_path: Path) -> None:
    try:
        tarball = base_rootfs_tarball()
    except ToolMissing as exc:
        pytest.skip(str(exc))
    script = tmp_path / "rootless_build.sh"
    script.write_text(_ROOTLESS_BUILD, "utf-8")
    script.chmod(0o644)
    # The worker pod's limits: the manifest's capabilities and nothing else, seccomp off.
    from_args = ["--cap-drop=ALL", "--security-opt=seccomp=unconfined"]
    from_args += [f"--cap-add=CAP_{cap}" for cap in _worker_capabilities()]
    options = [
        f"--volume={tarball}:/base.tar:ro",
        f"--volume={script}:/tmp/rootless_build.sh:ro",
    ]
    with Container(image, *from_args) as container:
        result = container.run("sh", "/tmp/rootless_build.sh", options=options, timeout_s=600)
    out = ok(result)
    lines = out.splitlines()
    assert "NoNewPrivs:\t0" in lines
    assert "CapEff:\t0000000000000000" in lines, "the worker itself has no capability"
    # uid 0 of the build is the worker's uid; 1-65536 are the subordinate ids.
    maps = [line.split() for line in lines if line.strip()[:1].isdigit()]
    assert ["0", str(UID), "1"] in maps
    assert ["1", "100000", "65536"] in maps
    assert "vfs" in lines
    assert "owner=42:42" in lines, shlex.join(lines[-20:])
    assert lines[-1] == "rootless-build-ok"
