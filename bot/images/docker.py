"""docker: the builder for hosts with a reachable Docker daemon.

The daemon, not this process, makes the containers' networks, and it cannot put a build into
a namespace of ours, so the egress proxy does not apply here. Builds and tests never get the
host's network: builds use the daemon's default (bridge) network, tests none, or the bridge
with ``test_network: true``. The bridge reaches the internet and whatever the host routes to,
so private ranges and cloud metadata must be cut off outside (the NetworkPolicy in
``deploy/kubernetes``, or the host's firewall): see docs/security.md.
"""

from __future__ import annotations

import json
import re
import shutil
import tarfile
import uuid
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from bot import shell
from bot.errors import CommandTimeoutError, LockwardenError, ToolNotFoundError
from bot.images import BuilderName, BuildOutcome, BuildSpec, ImageInfo, RunOutcome, RunSpec
from bot.images.containers import (
    build_arguments,
    build_dockerfile,
    builder_environment,
    classify_exit,
    run_build,
    tail_lines,
)
from bot.images.reproducible import oci_layers


class DockerBuilder:
    name: BuilderName = "docker"

    def __init__(
        self, env: Mapping[str, str], *, pull: bool = False, executable: str = "docker"
    ) -> None:
        self._env = builder_environment(env)
        if "DOCKER_HOST" in env:  # the daemon address is configuration, not a secret
            self._env["DOCKER_HOST"] = env["DOCKER_HOST"]
        self._pull = pull
        self._exe = executable

    def available(self) -> bool:
        if shutil.which(self._exe, path=self._env.get("PATH")) is None:
            return False
        try:
            return self._docker("info", "--format={{.ID}}", timeout_s=30).ok
        except LockwardenError:
            return False

    def build(self, spec: BuildSpec) -> BuildOutcome:
        with build_dockerfile(spec) as dockerfile:
            args = [
                "build",
                "--force-rm",  # no container of a failed step is left behind
                f"--network={'default' if spec.network == 'proxied' else 'none'}",
                f"--file={dockerfile}",
                f"--tag={spec.tag}",
            ]
            if self._pull:
                args.append("--pull")
            if spec.no_cache:
                args.append("--no-cache")
            args += [f"--build-arg={k}={v}" for k, v in sorted(build_arguments(spec).items())]
            args.append(str(spec.context))
            results: list[shell.CommandResult] = []

            def build() -> shell.CommandResult:
                results.append(self._docker(*args, timeout_s=spec.timeout_s))
                return results[-1]

            outcome = run_build(
                build,
                spec.tag,
                timeout_s=spec.timeout_s,
                inspect=self.inspect,
                error_of=_build_error,
            )
        if not results:
            return outcome
        steps = _step_images(results[0].stdout)
        if not outcome.ok:
            # The classic builder keeps the steps that worked, under no name, for good.
            for image in reversed([i for i, new in steps if new]):
                if self.names(image) == ():  # nameless for sure: only then by id
                    self.untag(image)
            return outcome
        return replace(outcome, stages=_stage_images(results[0].stdout))

    def inspect(self, reference: str) -> ImageInfo | None:
        result = self._docker("image", "inspect", reference, timeout_s=60)
        if not result.ok:
            return None
        data: dict[str, Any] = json.loads(result.stdout)[0]
        return ImageInfo(
            reference=reference,
            image_id=str(data["Id"]),
            size=int(data.get("Size", 0)),
            layers=tuple(data.get("RootFS", {}).get("Layers", ())),
        )

    def run(self, spec: RunSpec) -> RunOutcome:
        name = f"lockwarden-run-{uuid.uuid4().hex[:12]}"
        args = [
            "run",
            f"--name={name}",
            f"--network={'bridge' if spec.network else 'none'}",
            f"--memory={spec.memory}",
            f"--memory-swap={spec.memory}",
            f"--cpus={spec.cpus}",
            f"--pids-limit={spec.pids_limit}",
            "--security-opt=no-new-privileges",
            "--cap-drop=ALL",
        ]
        args += [f"--env={k}={v}" for k, v in sorted(spec.env.items())]
        args += [
            f"--volume={m.source}:{m.target}:{'ro' if m.read_only else 'rw'}" for m in spec.mounts
        ]
        if spec.workdir:
            args.append(f"--workdir={spec.workdir}")
        args += [spec.image, *spec.command]
        try:
            try:
                result = self._docker(*args, timeout_s=spec.timeout_s)
            except CommandTimeoutError:
                return RunOutcome("timed-out", None, spec.timeout_s, self._logs(name))
            return RunOutcome(
                classify_exit(result.returncode),
                result.returncode,
                result.duration_s,
                tail_lines(result.stdout + result.stderr, 200),
            )
        finally:
            self._docker("rm", "--force", name, timeout_s=120)

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        # docker decides TLS per registry (daemon's insecure-registries; loopback is allowed).
        tagged = self._docker("tag", reference, destination, timeout_s=60)
        pushed = self._docker("push", destination, timeout_s=1800) if tagged.ok else tagged
        if not pushed.ok:
            raise LockwardenError(
                f"pushing {reference} to {destination} failed", detail=pushed.output_tail()
            )
        for line in pushed.stdout.splitlines():
            if "digest: sha256:" in line:
                return line.split("digest: ", 1)[1].split()[0]
        raise LockwardenError(f"pushing {destination}: docker printed no digest")

    def remove(self, reference: str) -> None:
        self._docker("image", "rm", "--force", reference, timeout_s=120)

    def tag(self, reference: str, name: str) -> bool:
        return self._docker("tag", reference, name, timeout_s=60).ok

    def names(self, reference: str) -> tuple[str, ...] | None:
        result = self._docker(
            "image", "inspect", "--format={{json .RepoTags}}", reference, timeout_s=60
        )
        if not result.ok:
            # Gone is an answer; any other failure (the daemon busy, or away) is not.
            return () if "no such image" in result.stderr.lower() else None
        try:
            tags = json.loads(result.stdout or "null")
        except ValueError:
            return None
        return tuple(str(tag) for tag in tags or ())

    def untag(self, reference: str) -> bool:
        return self._docker("image", "rm", reference, timeout_s=120).ok

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        directory.mkdir(parents=True, exist_ok=True)
        archive = directory / "image.tar"
        result = self._docker("save", f"--output={archive}", reference, timeout_s=1800)
        if not result.ok:
            raise LockwardenError(
                f"exporting {reference} failed: {_build_error(result.output_tail())}",
                detail=result.output_tail(),
            )
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(directory, filter="data")  # the daemon's own archive
        except (OSError, tarfile.TarError) as exc:
            raise LockwardenError(f"exporting {reference}: unreadable archive: {exc}") from exc
        archive.unlink()
        return oci_layers(directory)

    def _logs(self, name: str) -> str:
        result = self._docker("logs", "--tail=200", name, timeout_s=60)
        return tail_lines(result.stdout + result.stderr, 200)

    def _docker(self, *args: str, timeout_s: float) -> shell.CommandResult:
        try:
            return shell.run([self._exe, *args], env=self._env, timeout_s=timeout_s)
        except ToolNotFoundError as exc:
            raise ToolNotFoundError(
                "docker is not installed; install it or set LOCKWARDEN_BUILDER=buildah"
            ) from exc


def _build_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if "returned a non-zero code" in line or line.startswith(("ERROR", "error", "failed")):
            return line.strip()
    return lines[-1].strip() if lines else "the build failed"


_STEP = re.compile(r"^Step \d+/\d+ : (\w+)")
_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")


def _step_images(output: str) -> list[tuple[str, bool]]:
    """The image after each step of docker's classic builder (BuildKit keeps none in the
    image store, and prints none), each with whether the step committed it (not a cache hit,
    not a ``FROM``)."""
    out: list[tuple[str, bool]] = []
    new = False
    for line in output.splitlines():
        step = _STEP.match(line)
        if step is not None:
            new = step[1].upper() != "FROM"
        elif line == " ---> Using cache":
            new = False
        elif (image := _IMAGE.match(line)) is not None:
            out.append((image[1], new))
    return out


def _stage_images(output: str) -> tuple[str, ...]:
    """The image each stage but the last ended with: the last step's before a ``FROM``."""
    stages: list[str] = []
    last: str | None = None
    for line in output.splitlines():
        step = _STEP.match(line)
        if step is not None and step[1].upper() == "FROM" and last is not None:
            stages.append(last)
            last = None
        elif (image := _IMAGE.match(line)) is not None:
            last = image[1]
    return tuple(stages)
