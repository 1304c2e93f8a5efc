"""buildah: the default builder. Daemonless, so it runs in an unprivileged Kubernetes pod."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Mapping
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
    builder_environment,
    classify_exit,
    cpu_quota,
    run_build,
    tail_lines,
)

PullPolicy = str


class BuildahBuilder:
    name: BuilderName = "buildah"

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        runtime: str | None = None,
        pull: PullPolicy = "missing",
        executable: str = "buildah",
    ) -> None:
        self._env = builder_environment(env)
        self._runtime = runtime if runtime is not None else default_runtime()
        self._pull = pull
        self._exe = executable

    def available(self) -> bool:
        if shutil.which(self._exe, path=self._env.get("PATH")) is None:
            return False
        try:
            return self._buildah("version", timeout_s=30).ok
        except LockwardenError:
            return False

    def build(self, spec: BuildSpec) -> BuildOutcome:
        with tempfile.TemporaryDirectory(prefix="lockwarden-build-") as tmp:
            iidfile = Path(tmp) / "iid"
            args = [
                "bud",
                *self._runtime_args(),
                f"--pull={self._pull}",
                "--layers",
                f"--network={spec.network}",
                f"--iidfile={iidfile}",
                f"--file={spec.dockerfile}",
                f"--tag={spec.tag}",
            ]
            if spec.timestamp is not None:
                args.append(f"--timestamp={spec.timestamp}")
            if spec.no_cache:
                args.append("--no-cache")
            args += [f"--build-arg={k}={v}" for k, v in sorted(spec.build_args.items())]
            args.append(str(spec.context))
            return run_build(
                lambda: self._buildah(*args, timeout_s=spec.timeout_s),
                spec.tag,
                timeout_s=spec.timeout_s,
                inspect=self.inspect,
                error_of=build_error,
            )

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
            f"--network={'host' if spec.network else 'none'}",
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
            args = ["run", *self._runtime_args(), f"--network={'host' if spec.network else 'none'}"]
            args += [f"--env={k}={v}" for k, v in sorted(spec.env.items())]
            args += [
                f"--volume={m.source}:{m.target}:{'ro' if m.read_only else 'rw'}"
                for m in spec.mounts
            ]
            if spec.workdir:
                args.append(f"--workingdir={spec.workdir}")
            args += [name, "--", *spec.command]
            try:
                result = self._buildah(*args, timeout_s=spec.timeout_s)
            except CommandTimeoutError as exc:
                return RunOutcome("timed-out", None, spec.timeout_s, tail_lines(exc.detail, 200))
            return RunOutcome(
                classify_exit(result.returncode),
                result.returncode,
                result.duration_s,
                tail_lines(result.stdout + result.stderr, 200),
            )
        finally:
            # Removing the working container also stops whatever a timed-out command left.
            self._buildah("rm", name, timeout_s=120)

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

    def _runtime_args(self) -> list[str]:
        return [f"--runtime={self._runtime}"] if self._runtime else []

    def _buildah(self, *args: str, timeout_s: float) -> shell.CommandResult:
        try:
            return shell.run([self._exe, *args], env=self._env, timeout_s=timeout_s)
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


def build_error(output: str) -> str:
    """The line that says why a build failed, e.g. ``building at STEP "RUN ...": exit 1``."""
    for line in reversed(output.splitlines()):
        if line.startswith(("Error:", "error:")):
            return line.removeprefix("Error: ").removeprefix("error: ").strip()
    return "the build failed"
