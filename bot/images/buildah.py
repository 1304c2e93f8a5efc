"""buildah: the default builder. Daemonless, so it runs in an unprivileged Kubernetes pod."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot import shell
from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.images import (
    BuilderName,
    BuildOutcome,
    BuildSpec,
    ImageInfo,
    RunOutcome,
    RunSpec,
)
from bot.images.containers import (
    build_arguments,
    build_dockerfile,
    builder_environment,
    classify_exit,
    cpu_quota,
    run_build,
    tail_lines,
)
from bot.images.network import Network, container_network
from bot.images.reproducible import oci_layers
from bot.sandbox.egress import EgressPolicy

PullPolicy = str
log = logging.getLogger(__name__)
_STORE_RACE = re.compile(r"\b(?:layer|image) not known\b")
_STAGE_STEP = re.compile(r"^\[(\d+)/\d+\] STEP ")
_COMMITTED = re.compile(r"^--> [0-9a-f]{11,64}$")


class BuildahBuilder:
    name: BuilderName = "buildah"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        runtime: str | None = None,
        pull: PullPolicy = "missing",
        executable: str = "buildah",
        egress: EgressPolicy | None = None,
    ) -> None:
        """``egress``: the private hosts (the operator's) that builds and tests with a
        network may reach through the proxy; by default only public ones."""
        self._env = builder_environment(env)
        self._runtime = runtime if runtime is not None else default_runtime()
        self._pull = pull
        self._exe = executable
        self._egress = egress if egress is not None else EgressPolicy()

    def available(self) -> bool:
        if shutil.which(self._exe, path=self._env.get("PATH")) is None:
            return False
        try:
            return self._buildah("version", timeout_s=30).ok
        except LockwardenError:
            return False

    def build(self, spec: BuildSpec) -> BuildOutcome:
        with (
            self._network(proxied=spec.network == "proxied") as net,
            build_dockerfile(spec) as dockerfile,
        ):
            args = [
                "bud",
                *self._runtime_args(),
                f"--pull={self._pull}",
                "--layers",
                # A failed step's working container is removed too: a long-running worker
                # would otherwise keep one per failed build until the disk fills.
                "--force-rm",
                f"--network={net.mode}",
                # Not the worker's proxy settings (a NO_PROXY would let RUN steps bypass the
                # egress proxy): only the proxy build arguments below.
                "--http-proxy=false",
                # No --iidfile: with one, buildah does not print the ids of the images it
                # commits, and the earlier stages' ones are needed (``stage_images``).
                f"--file={dockerfile}",
                f"--tag={spec.tag}",
            ]
            if spec.timestamp is not None:
                args.append(f"--timestamp={spec.timestamp}")  # also every file's mtime
            if spec.no_cache:
                args.append("--no-cache")
            # The proxy's address goes in as predefined build arguments: RUN steps see it,
            # the image's config and history do not keep it.
            build_args = {**build_arguments(spec), **(net.proxy or {})}
            args += [f"--build-arg={k}={v}" for k, v in sorted(build_args.items())]
            args.append(str(spec.context))
            outcome = self._bud(args, spec, net)
            if not outcome.ok and store_race(outcome):
                # Another process removed an image this build read (its cached layers or its
                # base) while it ran: nothing wrong with the build itself.
                log.warning(
                    "building %s again: the image store changed under it (%s)",
                    spec.tag,
                    outcome.error,
                )
                outcome = self._bud(args, spec, net)
            return _with_refusals(outcome, net.refused)

    def _bud(self, args: Sequence[str], spec: BuildSpec, net: Network) -> BuildOutcome:
        results: list[shell.CommandResult] = []

        def bud() -> shell.CommandResult:
            results.append(self._buildah(*args, timeout_s=spec.timeout_s, network=net))
            return results[-1]

        outcome = run_build(
            bud, spec.tag, timeout_s=spec.timeout_s, inspect=self.inspect, error_of=build_error
        )
        if not results:
            return outcome
        if not outcome.ok:
            # The steps that did work were committed, under no name: they would stay for
            # good (a retry of the same build reuses what it finds anyway).
            for image in reversed(committed_images(results[0].stdout)):
                if not self.names(image):
                    self.untag(image)
            return outcome
        return replace(outcome, stages=stage_images(results[0].stdout))

    def inspect(self, reference: str) -> ImageInfo | None:
        result = self._buildah("inspect", "--type=image", reference, timeout_s=60)
        if not result.ok:
            return None
        data: dict[str, Any] = json.loads(result.stdout)
        manifest = json.loads(data.get("Manifest") or "{}")
        size = sum(int(layer.get("size", 0)) for layer in manifest.get("layers", []))
        return ImageInfo(
            reference=reference,
            image_id="sha256:" + str(data["FromImageID"]).removeprefix("sha256:"),
            size=size,
            layers=tuple(data.get("OCIv1", {}).get("rootfs", {}).get("diff_ids", ())),
        )

    def run(self, spec: RunSpec) -> RunOutcome:
        name = f"lockwarden-run-{uuid.uuid4().hex[:12]}"
        created = self._buildah(
            "from",
            f"--pull={self._pull}",
            "--quiet",
            f"--name={name}",
            "--network=none",  # the working container's default; `run` sets its own
            f"--memory={spec.memory}",
            "--cpu-period=100000",
            f"--cpu-quota={cpu_quota(spec.cpus)}",
            f"--ulimit=nproc={spec.pids_limit}:{spec.pids_limit}",
            spec.image,
            timeout_s=120,
        )
        if not created.ok:
            return RunOutcome("errored", None, 0.0, tail_lines(created.stderr, 40))
        try:
            with self._network(proxied=spec.network) as net:
                return self._run_in(name, spec, net)
        finally:
            # Removing the working container also stops whatever a timed-out command left.
            self._buildah("rm", name, timeout_s=120)

    def _run_in(self, name: str, spec: RunSpec, net: Network) -> RunOutcome:
        args = ["run", *self._runtime_args(), f"--network={net.mode}"]
        args += [f"--env={k}={v}" for k, v in sorted({**spec.env, **(net.proxy or {})}.items())]
        args += [
            f"--volume={m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts
        ]
        if spec.workdir:
            args.append(f"--workingdir={spec.workdir}")
        args += [name, "--", *spec.command]
        try:
            result = self._buildah(*args, timeout_s=spec.timeout_s, network=net)
        except CommandTimeoutError as exc:
            tail = tail_lines(exc.detail, 200)
            return RunOutcome("timed-out", None, spec.timeout_s, tail, net.refused)
        return RunOutcome(
            classify_exit(result.returncode),
            result.returncode,
            result.duration_s,
            tail_lines(result.stdout + result.stderr, 200),
            net.refused,
        )

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        with tempfile.TemporaryDirectory(prefix="lockwarden-push-") as tmp:
            digestfile = Path(tmp) / "digest"
            result = self._buildah(
                "push",
                "--quiet",
                f"--tls-verify={'true' if tls_verify else 'false'}",
                f"--digestfile={digestfile}",
                reference,
                f"docker://{destination}",
                timeout_s=1800,
            )
            if not result.ok:
                raise LockwardenError(
                    f"pushing {reference} to {destination} failed", detail=result.output_tail()
                )
            return digestfile.read_text().strip()

    def remove(self, reference: str) -> None:
        self._buildah("rmi", "--force", reference, timeout_s=120)

    def tag(self, reference: str, name: str) -> bool:
        return self._buildah("tag", reference, name, timeout_s=60).ok

    def names(self, reference: str) -> tuple[str, ...] | None:
        result = self._buildah("images", "--json", reference, timeout_s=60)
        if not result.ok:
            # Gone is an answer; any other failure (a store changed mid-read) is not.
            return () if "image not known" in result.stderr else None
        try:
            found: list[dict[str, Any]] = json.loads(result.stdout or "[]")
        except ValueError:
            return None
        return tuple(str(name) for image in found for name in image.get("names") or ())

    def untag(self, reference: str) -> bool:
        return self._buildah("rmi", reference, timeout_s=120).ok

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        result = self._buildah(
            "push",
            "--quiet",
            "--disable-compression",
            reference,
            f"oci:{directory}",
            timeout_s=1800,
        )
        if not result.ok:
            raise LockwardenError(
                f"exporting {reference} failed: {build_error(result.output_tail())}",
                detail=result.output_tail(),
            )
        return oci_layers(directory)

    def _runtime_args(self) -> list[str]:
        return [f"--runtime={self._runtime}"] if self._runtime else []

    @contextmanager
    def _network(self, *, proxied: bool) -> Iterator[Network]:
        with container_network(
            self._egress, self._env, proxied=proxied, enter=self._enter()
        ) as net:
            yield net

    def _enter(self) -> Sequence[str] | None:
        """None where buildah joins a namespace by path (OCI isolation as root). Chroot
        isolation ignores ``--network``, and rootless buildah cannot join a namespace it
        does not own: there buildah runs inside the namespace, made in its own user
        namespace (``buildah unshare``) when it is not root."""
        root = os.geteuid() == 0
        if root and self._env.get("BUILDAH_ISOLATION", "").lower() != "chroot":
            return None
        return () if root else (self._exe, "unshare", "--")

    def _buildah(
        self, *args: str, timeout_s: float, network: Network | None = None
    ) -> shell.CommandResult:
        prefix: Sequence[str] = ()
        env = self._env
        if network is not None and network.prefix:
            # buildah itself is inside the namespace: its pulls take the proxy too.
            prefix, env = network.prefix, {**self._env, **(network.proxy or {})}
        try:
            return shell.run([*prefix, self._exe, *args], env=env, timeout_s=timeout_s)
        except ToolNotFoundError as exc:
            raise ToolNotFoundError(
                "buildah is not installed; install it (Debian: apt-get install buildah runc) "
                "or set LOCKWARDEN_BUILDER=docker"
            ) from exc


def default_runtime() -> str | None:
    """runc on hosts with cgroup v1 or hybrid cgroups, where crun (buildah's default on
    Debian) refuses to start containers; buildah's own default elsewhere."""
    unified = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    if not unified and shutil.which("runc"):
        return "runc"
    return None


def stage_images(output: str) -> tuple[str, ...]:
    """The (short) ids of the images ``buildah bud`` committed at the end of each stage but
    the last: the last ``--> <id>`` line before the next ``[2/3] STEP`` line."""
    stages: list[str] = []
    last: str | None = None
    stage = 1
    for line in output.splitlines():
        started = _STAGE_STEP.match(line)
        if started is not None and int(started[1]) > stage:
            if last is not None:
                stages.append(last)
            stage, last = int(started[1]), None
        elif _COMMITTED.match(line):
            last = line.removeprefix("--> ").strip()
    return tuple(stages)


def committed_images(output: str) -> list[str]:
    """The (short) ids of the images ``buildah bud`` committed, not those it found in its
    cache (a ``--> Using cache <id>`` line comes before those)."""
    out: list[str] = []
    reused = ""
    for line in output.splitlines():
        if line.startswith("--> Using cache "):
            reused = line.removeprefix("--> Using cache ").strip()
        elif _COMMITTED.match(line):
            image = line.removeprefix("--> ").strip()
            if not (reused and reused.startswith(image)):
                out.append(image)
            reused = ""
    return out


def store_race(outcome: BuildOutcome) -> bool:
    """Whether a build failed because an image it read was removed meanwhile (buildah 1.28
    says ``layer not known`` or ``image not known``): worth one more try."""
    return bool(_STORE_RACE.search(f"{outcome.error or ''}\n{outcome.log_tail}"))


def build_error(output: str) -> str:
    """The line that says why a build failed, e.g. ``building at STEP "RUN ...": exit 1``."""
    for line in reversed(output.splitlines()):
        if line.startswith(("Error:", "error:")):
            return line.removeprefix("Error: ").removeprefix("error: ").strip()
    return "the build failed"


def _with_refusals(outcome: BuildOutcome, refused: tuple[str, ...]) -> BuildOutcome:
    """The outcome with the proxy's refusals, named in the error of a failed build: a RUN
    step that could not reach a host usually fails for that reason."""
    if not refused:
        return outcome
    error = outcome.error
    if not outcome.ok:
        error = (
            f"{error or 'the build failed'}; the build's network refused {'; '.join(refused)} "
            "(RUN steps reach public hosts only, and the private ones the operator allows "
            "with LOCKWARDEN_ALLOWED_PRIVATE_HOSTS)"
        )
    return replace(outcome, error=error, refused=refused)
