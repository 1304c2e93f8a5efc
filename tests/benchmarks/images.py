"""Image benchmark: building and testing an environment's image, buildah vs docker.

Run from the repository root, as root (buildah's store and the docker daemon need it; it is
not a test and pytest never collects it)::

    python -m tests.benchmarks.images [--runs N] [--builder buildah|docker]...
        [--shape wheelhouse|index|cache-mount]... [--out FILE.json]

It works on a small project made in a scratch directory: a multi-stage Dockerfile (the lock is
copied and installed with ``pip install --require-hashes --no-deps`` in a build stage; the final
stage sets its environment, workdir and command, then copies the venv, then the source), a lock
of ten tiny wheels and ``app/check.py``. ``--shape`` says where the build stage gets the wheels:
``wheelhouse`` (default) from ``wheels/`` in the build context, offline (docker's builds have
no network on this machine's daemon, so this is the shape both builders can build); ``index``
from a local package index; ``cache-mount`` from that index with pip's cache on a
``RUN --mount=type=cache`` (buildah only: docker's legacy builder has no ``--mount``).
``--builder`` and ``--shape`` repeat: every builder builds every shape it can (a *lane*), and
all lanes are measured in the same run, so their ratios can be compared side by side. Each
builder is the real one Lockwarden uses (``bot.images.buildah.BuildahBuilder``,
``bot.images.docker.DockerBuilder``), given the pipeline's reproducibility settings
(``timestamp=0``, ``SOURCE_DATE_EPOCH=0``). One run of one builder is:

1. **cold**: a build without cache (``no_cache=True``) under a fresh tag;
2. **no change**: the same inputs again, with cache (for reference: the floor of a cached
   build; it also makes sure the next step finds the previous inputs cached);
3. **lock-only**: a new patch release of one wheel goes on the index and into the lock, then a
   build with cache, and whether every layer before the venv's is the no-change build's;
4. **source-only**: one source file changes, then a build with cache; the lock install layer
   is reused, so this should be far cheaper than 3;
5. **reproducible**: the reproducibility check of the pipeline, a build without cache of the
   same inputs as 4, and whether its image id equals 4's;
6. **test run**: ``builder.run`` of ``python -c "import ..."`` in the image of 4.

Every build must succeed, the lock change must change the image, and the test run must pass
and show every pinned version; anything else aborts. The runs of the lanes are
interleaved (in order on odd runs, in reverse on even ones) so that drift on a shared
machine hits all alike. Each figure is the wall time of one ``build`` / ``run`` call of the
builder, including the image inspection it does after a build. At the end (or on abort) the
images tagged here are removed with ``builder.remove``, and so are the build-stage cache images
these builds left behind: untagged images made during the run whose history holds the run's
index URL. Nothing that was in a builder's store before the run is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot import __version__ as lockwarden_version
from bot.errors import LockfileParseError, LockwardenError
from bot.images import Builder, BuilderName, BuildSpec, ImageInfo, RunSpec
from bot.images.buildah import BuildahBuilder
from bot.images.docker import DockerBuilder
from bot.locks.lockfile import parse_lockfile
from bot.sandbox.egress import EgressPolicy
from tests.support.base_image import ToolMissing, ensure_buildah_base, ensure_docker_base
from tests.support.daemons import ensure_dockerd
from tests.support.index_server import PackageIndex, start_index
from tests.support.wheels import escape_name, sha256_file

Scenario = Literal["cold", "no-change", "lock-only", "source-only", "reproducible", "test-run"]

BUILDERS: tuple[BuilderName, ...] = ("buildah", "docker")
SCENARIOS: tuple[Scenario, ...] = (
    "cold",
    "no-change",
    "lock-only",
    "source-only",
    "reproducible",
    "test-run",
)
SCENARIO_TITLES: dict[Scenario, str] = {
    "cold": "cold build (no cache)",
    "no-change": "rebuild, no change (cache)",
    "lock-only": "rebuild, lock-only change",
    "source-only": "rebuild, source-only change",
    "reproducible": "reproducibility rebuild",
    "test-run": "test run in the image",
}
PACKAGES = tuple(
    f"bench-{name}"
    for name in (
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
    )
)
"""The lock: ten tiny wheels, no dependencies, all at 1.0.0 to start with."""
ENVIRONMENT = "serve"
SOURCE_DATE_EPOCH = 0
BUILD_TIMEOUT_S = 900.0
TEST_TIMEOUT_S = 120.0

Shape = Literal["wheelhouse", "index", "cache-mount"]
SHAPES: tuple[Shape, ...] = ("wheelhouse", "index", "cache-mount")
INSTALL: dict[Shape, str] = {
    # The locked wheels sit in the build context (``wheels/``): docker's builds have no
    # network here (its daemon has no bridge), so this is the shape both builders can build.
    "wheelhouse": "COPY wheels/ /wheels/\n"
    "COPY requirements/{env}.txt /tmp/requirements.txt\n"
    "RUN /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels \\\n"
    "    --require-hashes --no-deps -r /tmp/requirements.txt\n",
    "index": "COPY requirements/{env}.txt /tmp/requirements.txt\n"
    "RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps \\\n"
    "    -r /tmp/requirements.txt\n",
    # pip's download cache outlives the build (buildah; docker needs BuildKit for --mount).
    "cache-mount": "COPY requirements/{env}.txt /tmp/requirements.txt\n"
    "RUN --mount=type=cache,target=/root/.cache/pip \\\n"
    "    /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.txt\n",
}
DOCKERFILE = """\
FROM python:3.11-slim-bookworm AS build
ARG BENCH_SHAPE={shape}
ARG SOURCE_DATE_EPOCH
ARG PIP_INDEX_URL
RUN python -m venv /opt/venv
{install}
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
CMD ["python", "app/check.py"]
COPY --from=build /opt/venv /opt/venv
COPY app/ app/
"""
"""Installs only the lock in a build stage. The final stage's settings come before the copy
of the venv, so a lock-only change rebuilds the venv and source layers only; the source comes
last. ``BENCH_SHAPE`` keeps the build stages of lanes with different shapes apart: one lane's
cached steps must never serve another's (the final image does not change: only the venv is
copied from the build stage)."""


class BenchmarkError(Exception):
    """A build or a check failed: the figures would be meaningless."""


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One figure of the table: a lane (builder and Dockerfile shape) and a scenario."""

    builder: BuilderName
    shape: Shape
    scenario: Scenario

    @property
    def lane(self) -> str:
        return lane_key(self.builder, self.shape)

    @property
    def label(self) -> str:
        return f"{self.lane} {self.scenario}"


def lane_key(builder: BuilderName, shape: Shape) -> str:
    return f"{builder}/{shape}"


@dataclass
class Figure:
    cell: Cell
    times_s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_s)

    def as_json(self) -> dict[str, Any]:
        return {
            "builder": self.cell.builder,
            "shape": self.cell.shape,
            "scenario": self.cell.scenario,
            "runs": len(self.times_s),
            "median_s": round(self.median, 3),
            "min_s": round(min(self.times_s), 3),
            "max_s": round(max(self.times_s), 3),
            "times_s": [round(t, 3) for t in self.times_s],
        }


@dataclass(frozen=True)
class Ratio:
    group: str
    name: str
    value: float

    def as_json(self) -> dict[str, Any]:
        return {"group": self.group, "name": self.name, "value": round(self.value, 4)}


# ---------------------------------------------------------------------------------------------
# The project that gets built
# ---------------------------------------------------------------------------------------------


@dataclass
class Wheels:
    """The local package index, and the sha256 of every wheel published on it."""

    index: PackageIndex
    published: dict[tuple[str, str], str] = field(default_factory=dict)

    def release(self, name: str, version: str) -> str:
        """Publish ``name==version`` (once); its sha256."""
        key = (name, version)
        if key not in self.published:
            self.published[key] = sha256_file(self.index.publish(name, version))
        return self.published[key]


@dataclass
class Project:
    """A repository with one environment: Dockerfile, lock, spec and ``app/``."""

    root: Path
    wheels: Wheels
    versions: dict[str, str] = field(default_factory=dict)
    source_revision: int = 0

    shape: Shape = "wheelhouse"

    @classmethod
    def create(cls, root: Path, wheels: Wheels, shape: Shape) -> Project:
        project = cls(root, wheels, {name: "1.0.0" for name in PACKAGES}, shape=shape)
        install = INSTALL[shape].format(env=ENVIRONMENT)
        project.write("Dockerfile", DOCKERFILE.format(shape=shape, install=install))
        project.write(f"requirements/{ENVIRONMENT}.in", "".join(f"{n}\n" for n in PACKAGES))
        project.write_lock()
        project.write_source()
        return project

    @property
    def dockerfile(self) -> Path:
        return self.root / "Dockerfile"

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")

    def write_lock(self) -> None:
        """The lock as uv writes it with ``--generate-hashes``, from the index's wheels."""
        spec = f"requirements/{ENVIRONMENT}.in"
        lines = [
            "# This file was autogenerated by uv via the following command:",
            f"#    uv pip compile --generate-hashes {spec} -o requirements/{ENVIRONMENT}.txt",
        ]
        for name in sorted(self.versions):
            version = self.versions[name]
            digest = self.wheels.release(name, version)
            lines += [
                f"{name}=={version} \\",
                f"    --hash=sha256:{digest}",
                f"    # via -r {spec}",
            ]
        text = "\n".join(lines) + "\n"
        relative = f"requirements/{ENVIRONMENT}.txt"
        try:
            lock = parse_lockfile(text, relative)
        except LockfileParseError as exc:
            raise BenchmarkError(f"the generated lock does not parse: {exc}") from exc
        if lock.versions() != self.versions or not lock.has_hashes:
            raise BenchmarkError(f"the generated lock is not what was meant:\n{text}")
        self.write(relative, text)
        if self.shape == "wheelhouse":
            self.write_wheelhouse()

    def write_wheelhouse(self) -> None:
        """``wheels/``: exactly the locked wheels, as an offline build's context holds them."""
        house = self.root / "wheels"
        shutil.rmtree(house, ignore_errors=True)
        house.mkdir(parents=True)
        for name, version in sorted(self.versions.items()):
            wheel = self.wheels.index.wheel_path(name, version)
            shutil.copyfile(wheel, house / wheel.name)

    def write_source(self) -> None:
        imports = ", ".join(escape_name(name) for name in PACKAGES)
        self.write(
            "app/check.py",
            f'"""Prints the version of every locked package (revision {self.source_revision})."""\n'
            f"import {imports}\n\n"
            f"for module in ({imports}):\n"
            "    print(module.__name__, module.__version__)\n",
        )

    def bump(self, name: str) -> str:
        """Publish the next patch release of ``name`` and lock it; the new version."""
        major, minor, patch = self.versions[name].split(".")
        self.versions[name] = f"{major}.{minor}.{int(patch) + 1}"
        self.write_lock()
        return self.versions[name]

    def edit_source(self) -> None:
        self.source_revision += 1
        self.write_source()

    def expected_output(self) -> list[str]:
        """What the test command prints when the image holds exactly the lock."""
        return [f"{escape_name(name)} {self.versions[name]}" for name in sorted(self.versions)]


# ---------------------------------------------------------------------------------------------
# Builders
# ---------------------------------------------------------------------------------------------


@dataclass
class Lane:
    """One builder with one Dockerfile shape: its project and the tags it created."""

    builder: Builder
    project: Project
    base_image: str
    preexisting: frozenset[str]
    """The ids of the images in the builder's store before the benchmark built anything."""
    tags: list[str] = field(default_factory=list)
    reproducible: list[bool] = field(default_factory=list)
    layer_reuse: list[bool] = field(default_factory=list)
    lock_reuse: list[bool] = field(default_factory=list)

    @property
    def name(self) -> BuilderName:
        return self.builder.name

    @property
    def shape(self) -> Shape:
        return self.project.shape

    @property
    def key(self) -> str:
        return lane_key(self.name, self.shape)


def make_builder(name: BuilderName) -> tuple[Builder, str]:
    """The builder, ready to build ``FROM python:3.11-slim-bookworm``; and its base image id."""
    builder: Builder
    try:
        if name == "buildah":
            base = ensure_buildah_base()
            # The benchmark's index listens on 127.0.0.1: allowed, as an operator allows a mirror.
            builder = BuildahBuilder(os.environ, egress=EgressPolicy(("127.0.0.1",)))
        else:
            os.environ["DOCKER_HOST"] = ensure_dockerd()
            base = ensure_docker_base(os.environ["DOCKER_HOST"])
            builder = DockerBuilder(os.environ)
    except (ToolMissing, RuntimeError, OSError, subprocess.SubprocessError) as exc:
        hint = " (try --builder buildah)" if name == "docker" else ""
        raise BenchmarkError(f"cannot set up {name}{hint}: {exc}") from exc
    if not builder.available():
        raise BenchmarkError(f"{name} is installed but does not answer")
    return builder, base


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


@dataclass
class Bench:
    workdir: Path
    wheels: Wheels
    token: str
    figures: dict[Cell, Figure] = field(default_factory=dict)

    def record(self, cell: Cell, seconds: float, run: int, runs: int) -> None:
        self.figures.setdefault(cell, Figure(cell)).times_s.append(seconds)
        print(f"  {cell.label:<36} run {run}/{runs}: {seconds:7.2f} s", file=sys.stderr)

    def lane(self, builder: Builder, base_image: str, shape: Shape) -> Lane:
        root = self.workdir / f"project-{builder.name}-{shape}"
        project = Project.create(root, self.wheels, shape)
        preexisting = image_ids(builder.name)
        if not preexisting:  # the base image at least is there: listing failed
            raise BenchmarkError(f"cannot list the images of {builder.name}")
        return Lane(builder, project, base_image, frozenset(preexisting))

    def build(
        self, lane: Lane, scenario: Scenario, run: int, runs: int, *, no_cache: bool = False
    ) -> ImageInfo:
        tag = f"localhost/lockwarden-bench-{self.token}/{ENVIRONMENT}-{lane.shape}:{scenario}-{run}"
        spec = BuildSpec(
            context=lane.project.root,
            dockerfile=lane.project.dockerfile,
            tag=tag,
            build_args={
                "PIP_INDEX_URL": self.wheels.index.url,
                "SOURCE_DATE_EPOCH": str(SOURCE_DATE_EPOCH),
            },
            timestamp=SOURCE_DATE_EPOCH,
            no_cache=no_cache,
            timeout_s=BUILD_TIMEOUT_S,
        )
        lane.tags.append(tag)
        started = time.perf_counter()
        try:
            outcome = lane.builder.build(spec)
        except LockwardenError as exc:
            raise BenchmarkError(f"{lane.name} {scenario} run {run}: {exc.user_message}") from exc
        seconds = time.perf_counter() - started
        if not outcome.ok or outcome.image is None:
            raise BenchmarkError(
                f"{lane.name} {scenario} build, run {run}, failed: "
                f"{outcome.error or 'no image'}\n{outcome.log_tail}"
            )
        self.record(Cell(lane.name, lane.shape, scenario), seconds, run, runs)
        return outcome.image

    def test_run(self, lane: Lane, image: ImageInfo, run: int, runs: int) -> None:
        modules = [escape_name(name) for name in PACKAGES]
        code = (
            f"import {', '.join(modules)}\n"
            f"for m in ({', '.join(modules)}):\n"
            "    print(m.__name__, m.__version__)\n"
        )
        spec = RunSpec(image.reference, ("python", "-c", code), timeout_s=TEST_TIMEOUT_S)
        started = time.perf_counter()
        try:
            outcome = lane.builder.run(spec)
        except LockwardenError as exc:
            raise BenchmarkError(f"{lane.name} test run {run}: {exc.user_message}") from exc
        seconds = time.perf_counter() - started
        if outcome.status != "passed":
            raise BenchmarkError(
                f"{lane.name} test run {run} {outcome.status} "
                f"(exit {outcome.exit_code}):\n{outcome.log_tail}"
            )
        printed = outcome.log_tail.splitlines()
        missing = [line for line in lane.project.expected_output() if line not in printed]
        if missing:
            raise BenchmarkError(
                f"{lane.name} test run {run}: the image does not hold the lock "
                f"(missing {', '.join(missing)}):\n{outcome.log_tail}"
            )
        self.record(Cell(lane.name, lane.shape, "test-run"), seconds, run, runs)

    def one_run(self, lane: Lane, run: int, runs: int) -> None:
        project = lane.project
        self.build(lane, "cold", run, runs, no_cache=True)
        unchanged = self.build(lane, "no-change", run, runs)

        package = PACKAGES[(run - 1) % len(PACKAGES)]
        project.bump(package)
        locked = self.build(lane, "lock-only", run, runs)
        if locked.image_id == unchanged.image_id:
            raise BenchmarkError(
                f"{lane.name} run {run}: the lock changed ({package} "
                f"{project.versions[package]}) but the image did not"
            )
        # The base and the settings' layers come before the venv's (the last but one): reused.
        venv = len(locked.layers) - 2
        lane.lock_reuse.append(
            len(unchanged.layers) == len(locked.layers)
            and unchanged.layers[:venv] == locked.layers[:venv]
            and unchanged.layers[venv] != locked.layers[venv]
        )

        project.edit_source()
        edited = self.build(lane, "source-only", run, runs)
        # Everything but the source layer is the lock-only image's: the install was reused.
        lane.layer_reuse.append(
            len(edited.layers) == len(locked.layers)
            and edited.layers[:-1] == locked.layers[:-1]
            and edited.layers[-1] != locked.layers[-1]
        )

        rebuilt = self.build(lane, "reproducible", run, runs, no_cache=True)
        lane.reproducible.append(rebuilt.image_id == edited.image_id)

        self.test_run(lane, edited, run, runs)

    def clean(self, lane: Lane) -> None:
        """Remove the images tagged here, then the build-stage cache images these builds left:
        untagged, new since the start, and with this run's index URL in their history (the
        index holds its port for the whole run, so no other build can have used that URL)."""
        tags = list(dict.fromkeys(reversed(lane.tags)))
        print(f"removing the {len(tags)} {lane.name} images tagged here", file=sys.stderr)
        for tag in tags:
            self._remove(lane, tag)
        lane.tags.clear()
        leftovers = cache_images(lane.name, self.wheels.index.url, lane.preexisting)
        print(f"removing {len(leftovers)} {lane.name} build-stage cache images", file=sys.stderr)
        for image_id in leftovers:
            self._remove(lane, image_id)

    @staticmethod
    def _remove(lane: Lane, reference: str) -> None:
        try:
            lane.builder.remove(reference)
        except LockwardenError as exc:
            print(f"  could not remove {reference}: {exc.user_message}", file=sys.stderr)


def _output(argv: Sequence[str]) -> str:
    """The stdout of ``argv`` (the builders' CLI, with this process's DOCKER_HOST); "" when it
    fails."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return ""
    return proc.stdout if proc.returncode == 0 else ""


def _listing(builder: BuilderName) -> list[tuple[str, str]]:
    """(id, repository or ``<none>``) of every image in ``builder``'s store, intermediate
    images included."""
    if builder == "buildah":
        argv = ["buildah", "images", "--all", "--no-trunc", "--format", "{{.ID}} {{.Name}}"]
    else:
        argv = ["docker", "images", "--all", "--no-trunc", "--format", "{{.ID}} {{.Repository}}"]
    rows = [line.split() for line in _output(argv).splitlines()]
    return [(row[0], row[1]) for row in rows if len(row) == 2]


def image_ids(builder: BuilderName) -> set[str]:
    return {image_id for image_id, _ in _listing(builder)}


def cache_images(builder: BuilderName, marker: str, exclude: frozenset[str]) -> list[str]:
    """Untagged images in ``builder``'s store, not in ``exclude``, with ``marker`` in their
    history; deepest first (children before their parents)."""
    if builder == "buildah":
        history = [
            *("buildah", "inspect", "--type", "image"),
            *("--format", '{{range .History}}{{.CreatedBy}}{{"\\n"}}{{end}}'),
        ]
    else:
        history = ["docker", "history", "--no-trunc", "--format", "{{.CreatedBy}}"]
    found: list[tuple[int, str]] = []
    for image_id, name in _listing(builder):
        if name != "<none>" or image_id in exclude:
            continue
        steps = _output([*history, image_id]).splitlines()
        if any(marker in step for step in steps):
            found.append((len(steps), image_id))
    return [image_id for _, image_id in sorted(set(found), reverse=True)]


LaneId = tuple[BuilderName, Shape]


def ratios(figures: Mapping[Cell, Figure], lanes: Sequence[LaneId]) -> list[Ratio]:
    def median(lane: LaneId, scenario: Scenario) -> float:
        return figures[Cell(*lane, scenario)].median

    # The headline first, every lane side by side: what a lock-only change costs.
    group = "lock-only rebuild / cold build, every lane (median / median)"
    out = [
        Ratio(group, lane_key(*lane), median(lane, "lock-only") / median(lane, "cold"))
        for lane in lanes
    ]
    for lane in lanes:
        group = f"{lane_key(*lane)}: rebuilds vs the cold build (median / median)"
        cold = median(lane, "cold")
        for scenario in ("lock-only", "source-only", "reproducible"):
            out.append(Ratio(group, f"{scenario} / cold", median(lane, scenario) / cold))
        group = f"{lane_key(*lane)}: lock-only rebuild / source-only rebuild (install reused)"
        value = median(lane, "lock-only") / median(lane, "source-only")
        out.append(Ratio(group, "lock-only / source-only", value))
    both: tuple[LaneId, LaneId] = (("buildah", "wheelhouse"), ("docker", "wheelhouse"))
    if all(lane in lanes for lane in both):
        group = "buildah / docker (wheelhouse), per scenario (below 1: buildah is faster)"
        for scenario in SCENARIOS:
            value = median(both[0], scenario) / median(both[1], scenario)
            out.append(Ratio(group, SCENARIO_TITLES[scenario], value))
    return out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def _first_line(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = proc.stdout.strip().splitlines()
    return lines[0].strip() if proc.returncode == 0 and lines else "unknown"


def machine(builders: Sequence[BuilderName]) -> dict[str, Any]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "cgroup": "v2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "v1 or hybrid",
        "lockwarden": lockwarden_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if "buildah" in builders:
        info["buildah"] = _first_line(["buildah", "--version"])
        info["buildah_storage"] = _first_line(
            ["buildah", "info", "--format", "{{.store.GraphDriverName}}"]
        )
    if "docker" in builders:
        env = dict(os.environ)
        info["docker"] = _first_line(
            [
                "docker",
                "version",
                "--format",
                "client {{.Client.Version}}, daemon {{.Server.Version}}",
            ],
            env,
        )
        info["docker_storage"] = _first_line(["docker", "info", "--format", "{{.Driver}}"], env)
    return info


def print_machine(info: Mapping[str, Any]) -> None:
    print("Machine")
    print(f"  cores        {info['cores']} ({info['usable_cores']} usable)")
    print(f"  platform     {info['platform']} (cgroup {info['cgroup']})")
    print(f"  python       {info['python']}")
    if "buildah" in info:
        print(f"  buildah      {info['buildah']} (storage {info['buildah_storage']})")
    if "docker" in info:
        print(f"  docker       {info['docker']} (storage {info['docker_storage']})")
    print(f"  lockwarden   {info['lockwarden']}")
    print(f"  load average {' '.join(str(x) for x in info['load_average'])} (at start)")


def print_table(figures: Sequence[Figure]) -> None:
    print()
    print("Figures (seconds; one builder.build or builder.run call each)")
    header = f"{'lane':<22}{'scenario':<31}"
    print(f"  {header}{'median':>9}{'min':>9}{'max':>9}{'runs':>6}")
    for fig in figures:
        row = f"{fig.cell.lane:<22}{SCENARIO_TITLES[fig.cell.scenario]:<31}"
        print(
            f"  {row}{fig.median:>9.2f}{min(fig.times_s):>9.2f}{max(fig.times_s):>9.2f}"
            f"{len(fig.times_s):>6}"
        )


def _count(flags: Sequence[bool]) -> str:
    return f"{'yes' if all(flags) else 'no'} ({sum(flags)}/{len(flags)} runs)"


def print_checks(lanes: Sequence[Lane]) -> None:
    print()
    print("Reproducibility: no-cache rebuild has the cached build's image id")
    for lane in lanes:
        print(f"  {lane.key:<22}{_count(lane.reproducible)}")
    print()
    print("Source-only rebuild reuses the lock install (all layers but the last unchanged)")
    for lane in lanes:
        print(f"  {lane.key:<22}{_count(lane.layer_reuse)}")
    print()
    print("Lock-only rebuild reuses every layer before the venv's (base and settings)")
    for lane in lanes:
        print(f"  {lane.key:<22}{_count(lane.lock_reuse)}")


def print_ratios(items: Sequence[Ratio], figures: Mapping[Cell, Figure]) -> None:
    group = ""
    for item in items:
        if item.group != group:
            group = item.group
            print()
            print(group)
        print(f"  {item.name:<32}{item.value:>8.2f}x")
    runs = sorted({len(f.times_s) for f in figures.values()})
    print()
    print(
        "Note: the machine is shared and noisy (other builds and tests run on it), so these "
        f"ratios come from one benchmark run (each figure is the median of "
        f"{' or '.join(str(r) for r in runs)} run(s), see 'runs'; the builders' runs "
        "interleaved); rerun before trusting a difference of a few percent."
    )


@contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lockwarden-bench-images-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.images",
        description="Time image builds of a small locked project with buildah and docker: "
        "cold, lock-only and source-only rebuilds, the reproducibility rebuild, and a test run.",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per figure (default 3)", metavar="N"
    )
    parser.add_argument(
        "--builder",
        dest="builders",
        action="append",
        choices=BUILDERS,
        help="only this builder (repeatable; default: both, which the comparison needs)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="also write figures as JSON")
    parser.add_argument(
        "--shape",
        dest="shapes",
        action="append",
        choices=SHAPES,
        help="how the build stage gets the wheels (repeatable: one lane per builder and shape, "
        "measured side by side in one run): from a wheelhouse in the build context "
        "(default; both builders), or from the local index without or with a pip cache mount "
        "(buildah only: docker's builds have no network here, and --mount needs BuildKit)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.builders = [b for b in BUILDERS if b in (args.builders or BUILDERS)]
    args.shapes = [s for s in SHAPES if s in (args.shapes or ["wheelhouse"])]
    if "docker" in args.builders and "wheelhouse" not in args.shapes:
        parser.error("docker builds only --shape wheelhouse here; add it, or --builder buildah")
    args.lanes = [
        (b, s) for b in args.builders for s in args.shapes if b == "buildah" or s == "wheelhouse"
    ]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    lanes: list[Lane] = []
    try:
        with ExitStack() as stack:
            scratch = stack.enter_context(workdir(args.keep))
            index = stack.enter_context(start_index(scratch / "index"))
            bench = Bench(scratch, Wheels(index), uuid.uuid4().hex[:10])
            print(f"package index at {index.url}", file=sys.stderr)
            for name in args.builders:
                print(f"setting up {name}", file=sys.stderr)
                builder, base = make_builder(name)
                for shape in (s for b, s in args.lanes if b == name):
                    lanes.append(bench.lane(builder, base, shape))
                    stack.callback(bench.clean, lanes[-1])
            info = machine(args.builders)
            print_machine(info)
            sys.stdout.flush()
            for run in range(1, args.runs + 1):
                for lane in lanes if run % 2 else lanes[::-1]:
                    print(f"run {run}/{args.runs}, {lane.key}", file=sys.stderr)
                    bench.one_run(lane, run, args.runs)
    except BenchmarkError as exc:
        print(f"\nbenchmark aborted: {exc}", file=sys.stderr)
        return 2
    figures = bench.figures
    ordered = sorted(
        figures.values(),
        key=lambda f: (
            args.lanes.index((f.cell.builder, f.cell.shape)),
            SCENARIOS.index(f.cell.scenario),
        ),
    )
    print_table(ordered)
    print_checks(lanes)
    items = ratios(figures, args.lanes)
    print_ratios(items, figures)
    wall = time.perf_counter() - started
    print(
        f"Wall time: {wall:.0f} s; load average at the end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    if args.out is not None:
        payload = {
            "machine": info,
            "settings": {
                "runs": args.runs,
                "builders": args.builders,
                "packages_in_lock": len(PACKAGES),
                "source_date_epoch": SOURCE_DATE_EPOCH,
                "shapes": args.shapes,
            },
            "figures": [fig.as_json() for fig in ordered],
            "reproducible": {lane.key: lane.reproducible for lane in lanes},
            "install_layer_reused": {lane.key: lane.layer_reuse for lane in lanes},
            "lock_only_reused": {lane.key: lane.lock_reuse for lane in lanes},
            "base_images": {lane.name: lane.base_image for lane in lanes},
            "ratios": [item.as_json() for item in items],
            "wall_time_s": round(wall, 1),
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
