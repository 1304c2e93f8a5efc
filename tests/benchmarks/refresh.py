"""Refresh benchmark: the three locks of ``examples/ml-service``, raw compilers vs Lockwarden.

Run from the repository root (it talks to PyPI; it is not a test and pytest never collects it)::

    python -m tests.benchmarks.refresh [--runs N] [--pip-tools-full-runs M] [--out FILE.json]

For each backend (pip-tools, uv) it times the serve -> train -> dev chain:

* **full refresh** (``--upgrade``), with the compilers run by hand (``raw``: the commands
  Lockwarden runs, one per environment, in order) and through ``lockwarden run``
  (``lockwarden``), on a **cold** cache (a new, empty cache directory per run) and a **warm**
  one (primed by one unmeasured run);
* **no-op refresh** (minimal mode, locks already current, warm cache) through Lockwarden,
  and by hand for reference.

Every run works on a fresh copy of the example and must exit 0 and leave three locks that
parse, are hashed, keep their direct requirements and honour the constraint chain (a no-op
run through Lockwarden must leave them byte for byte as they were); anything else aborts.
Raw and Lockwarden runs of one figure are interleaved so that drift on a shared machine hits
both alike. The tools never see this machine's pip configuration or index variables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from bot import __version__ as lockwarden_version
from bot.errors import LockfileParseError
from bot.locks.lockfile import Lockfile, read_lockfile

Backend = Literal["pip-tools", "uv"]
Scenario = Literal["raw", "lockwarden"]
Refresh = Literal["full", "no-op"]
CacheState = Literal["cold", "warm"]

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "ml-service"
ENVIRONMENTS = ("serve", "train", "dev")
"""In compile order."""
UPSTREAM = {"train": "serve", "dev": "train"}
"""Each lock constrains the next: train.in has ``-c serve.txt``, dev.in ``-c train.txt``."""
BACKENDS: tuple[Backend, ...] = ("uv", "pip-tools")
"""uv first: it is fast, so a broken setup shows within seconds."""
CACHE_STATES: tuple[CacheState, ...] = ("cold", "warm")
FLAGS = ("--allow-unsafe", "--generate-hashes", "--strip-extras")
"""What the example's lock headers record; Lockwarden replays exactly these."""
COMMAND_TIMEOUT_S = 1800.0

OVERHEAD_TARGET = 0.05
SPEEDUP_TARGET = 5.0
NOOP_TARGET_S = 1.0

# Host variables that would point the compilers at other indexes, files or configuration
# (this machine's pip setup adds local indexes), or configure the Lockwarden under test.
_HOST_VARIABLES = re.compile(
    r"^(PIP_(INDEX_URL|EXTRA_INDEX_URL|FIND_LINKS|NO_INDEX|CONSTRAINT|REQUIREMENT|CONFIG_FILE|"
    r"CACHE_DIR|NO_CACHE_DIR|PRE|ONLY_BINARY|NO_BINARY|PREFER_BINARY)|UV_\w+|LOCKWARDEN_\w+|"
    r"CUSTOM_COMPILE_COMMAND)$"
)


class BenchmarkError(Exception):
    """A run failed or left locks that are not right: the figures would be meaningless."""


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One figure of the table."""

    scenario: Scenario
    refresh: Refresh
    backend: Backend
    cache: CacheState

    @property
    def label(self) -> str:
        return f"{self.scenario} {self.refresh} {self.backend} {self.cache}"


@dataclass
class Figure:
    cell: Cell
    times_s: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.times_s)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.cell.scenario,
            "refresh": self.cell.refresh,
            "backend": self.cell.backend,
            "cache": self.cell.cache,
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
    unit: Literal["%", "x", "s"]
    target: str
    passed: bool | None
    """None: reported for reference, no target."""

    def shown(self) -> str:
        if self.unit == "%":
            return f"{self.value * 100:+.1f}%"
        if self.unit == "x":
            return f"{self.value:.1f}x"
        return f"{self.value:.2f} s"

    def verdict(self) -> str:
        if self.passed is None:
            return "(reference)"
        return "PASS" if self.passed else "MISS"

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "value": round(self.value, 4),
            "unit": self.unit,
            "target": self.target,
            "passed": self.passed,
        }


# ---------------------------------------------------------------------------------------------
# Running one refresh
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tools:
    python: str
    uv: str
    lockwarden: str
    base_env: Mapping[str, str]
    lockwarden_env: Mapping[str, str] = field(default_factory=dict)
    """Settings for the Lockwarden runs only (``--sandbox off``, ``--no-signals``)."""


def find_tools() -> Tools:
    from uv import find_uv_bin

    lockwarden = Path(sys.executable).with_name("lockwarden")
    found = str(lockwarden) if lockwarden.is_file() else shutil.which("lockwarden")
    if found is None:
        raise BenchmarkError("the lockwarden command was not found; install the project first")
    env = {k: v for k, v in os.environ.items() if not _HOST_VARIABLES.match(k)}
    env |= {
        "PIP_CONFIG_FILE": os.devnull,
        "UV_NO_CONFIG": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PYTHONUTF8": "1",
    }
    # The venv's tools first, as when Lockwarden is installed there.
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return Tools(python=sys.executable, uv=find_uv_bin(), lockwarden=found, base_env=env)


def raw_commands(tools: Tools, backend: Backend, refresh: Refresh, cache: Path) -> list[list[str]]:
    """The compiles Lockwarden runs for the chain, spelled out by hand."""
    upgrade = ["--upgrade"] if refresh == "full" else []
    commands = []
    for env in ENVIRONMENTS:
        spec, lock = f"requirements/{env}.in", f"requirements/{env}.txt"
        if backend == "pip-tools":
            command = [
                tools.python,
                "-m",
                "piptools",
                "compile",
                "--quiet",
                *FLAGS,
                *upgrade,
                f"--cache-dir={cache / 'pip-tools'}",
                f"--output-file={lock}",
                spec,
            ]
        else:
            command = [
                tools.uv,
                "pip",
                "compile",
                "--quiet",
                "--no-progress",
                *FLAGS,
                *upgrade,
                f"--output-file={lock}",
                spec,
            ]
        commands.append(command)
    return commands


def run_raw(tools: Tools, tree: Path, backend: Backend, refresh: Refresh, cache: Path) -> float:
    env = {
        **tools.base_env,
        "PIP_CACHE_DIR": str(cache / "pip"),
        "UV_CACHE_DIR": str(cache / "uv"),
    }
    commands = raw_commands(tools, backend, refresh, cache)
    started = time.perf_counter()
    for command in commands:
        _run(command, cwd=tree, env=env)
    return time.perf_counter() - started


def run_lockwarden(
    tools: Tools, tree: Path, refresh: Refresh, cache: Path, *, sequential: bool
) -> float:
    env = {**tools.base_env, **tools.lockwarden_env, "LOCKWARDEN_CACHE_DIR": str(cache)}
    if sequential:
        env["LOCKWARDEN_MAX_PARALLEL_COMPILES"] = "1"
    # Locks only: the raw tools build no images either.
    command = [
        tools.lockwarden,
        "run",
        "--no-build",
        str(tree),
        *(["--upgrade"] if refresh == "full" else []),
    ]
    started = time.perf_counter()
    _run(command, cwd=tree.parent, env=env)
    return time.perf_counter() - started


def _run(command: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
    shown = " ".join(Path(command[0]).name if i == 0 else a for i, a in enumerate(command))
    try:
        proc = subprocess.run(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"`{shown}` did not finish within {COMMAND_TIMEOUT_S:.0f} s") from exc
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-30:])
        raise BenchmarkError(f"`{shown}` (in {cwd}) exited {proc.returncode}:\n{tail}")


# ---------------------------------------------------------------------------------------------
# Trees and checks
# ---------------------------------------------------------------------------------------------


def lockwarden_config(backend: Backend) -> str:
    def entry(env: str, upstream: str | None) -> str:
        constraints = f", constraints: [{upstream}]" if upstream else ""
        return (
            f"  - {{name: {env}, spec: requirements/{env}.in, lock: requirements/{env}.txt, "
            f"backend: {backend}{constraints}}}\n"
        )

    return "environments:\n" + "".join(entry(env, UPSTREAM.get(env)) for env in ENVIRONMENTS)


def copy_tree(source: Path, dest: Path, backend: Backend) -> Path:
    """A copy of ``source`` whose .github/lockwarden.yml selects ``backend``."""
    shutil.copytree(
        source,
        dest,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".*_cache", "*.egg-info"),
    )
    config = dest / ".github" / "lockwarden.yml"
    config.parent.mkdir(exist_ok=True)
    config.write_text(lockwarden_config(backend), "utf-8")
    return dest


def read_locks(tree: Path, label: str) -> dict[str, Lockfile]:
    return {env: _read(tree, f"requirements/{env}.txt", label) for env in ENVIRONMENTS}


def _read(tree: Path, relative: str, label: str) -> Lockfile:
    try:
        return read_lockfile(tree / relative, relative)
    except LockfileParseError as exc:
        raise BenchmarkError(f"{label}: {exc}") from exc


def check_locks(tree: Path, label: str) -> None:
    """The locks parse, are fully hashed, pin every direct requirement of their spec, and a
    constrained environment pins what it shares with its upstream at the upstream's version."""
    locks = read_locks(tree, label)
    for env, lock in locks.items():
        pinned = lock.versions()
        if not pinned:
            raise BenchmarkError(f"{label}: {lock.path} pins nothing")
        unhashed = sorted(r.name for r in lock.requirements if not r.hashes)
        if unhashed:
            raise BenchmarkError(f"{label}: {lock.path} has no hashes for {', '.join(unhashed)}")
        spec = _read(tree, f"requirements/{env}.in", label)
        missing = sorted(r.name for r in spec.requirements if r.name not in pinned)
        if missing:
            raise BenchmarkError(f"{label}: {lock.path} does not pin {', '.join(missing)}")
    for downstream, upstream in UPSTREAM.items():
        up, down = locks[upstream].versions(), locks[downstream].versions()
        drift = sorted(f"{n} {down[n]} (vs {up[n]})" for n in up.keys() & down if up[n] != down[n])
        if drift:
            raise BenchmarkError(
                f"{label}: {downstream} breaks the {upstream} constraint: {', '.join(drift)}"
            )


def lock_texts(tree: Path) -> dict[str, bytes]:
    return {env: (tree / "requirements" / f"{env}.txt").read_bytes() for env in ENVIRONMENTS}


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


@dataclass
class Bench:
    tools: Tools
    workdir: Path
    figures: dict[Cell, Figure] = field(default_factory=dict)
    _counter: int = 0

    def fresh(self, kind: str) -> Path:
        self._counter += 1
        return self.workdir / f"{kind}-{self._counter:03d}"

    def record(self, cell: Cell, seconds: float, run: int, runs: int) -> None:
        self.figures.setdefault(cell, Figure(cell)).times_s.append(seconds)
        print(f"  {cell.label:<34} run {run}/{runs}: {seconds:7.2f} s", file=sys.stderr)

    def full_refresh(self, backend: Backend, cache_state: CacheState, runs: int) -> None:
        """raw and lockwarden ``--upgrade`` runs, interleaved; a new empty cache per cold run,
        one primed cache for all warm runs (left in place for the no-op figures)."""
        warm = self.workdir / f"cache-warm-{backend}"
        if cache_state == "warm":
            tree = copy_tree(EXAMPLE, self.fresh("tree"), backend)
            print(f"  priming the {backend} cache (unmeasured)", file=sys.stderr)
            run_raw(self.tools, tree, backend, "full", warm)
            check_locks(tree, f"priming {backend}")
            shutil.rmtree(tree)
        for run in range(1, runs + 1):
            order: tuple[Scenario, ...] = ("raw", "lockwarden")
            for scenario in order if run % 2 else order[::-1]:
                cell = Cell(scenario, "full", backend, cache_state)
                cache = warm if cache_state == "warm" else self.fresh("cache-cold")
                tree = copy_tree(EXAMPLE, self.fresh("tree"), backend)
                if scenario == "raw":
                    seconds = run_raw(self.tools, tree, backend, "full", cache)
                else:
                    seconds = run_lockwarden(self.tools, tree, "full", cache, sequential=True)
                check_locks(tree, f"{cell.label} run {run}")
                self.record(cell, seconds, run, runs)
                shutil.rmtree(tree)
                if cache_state == "cold":
                    shutil.rmtree(cache, ignore_errors=True)

    def noop_refresh(self, backend: Backend, runs: int) -> None:
        """Minimal-mode runs on locks that are already current, on the warm cache. One
        unmeasured full Lockwarden run first brings the example's locks into the backend's
        own format, and the tree is committed; every measured run starts from a copy."""
        warm = self.workdir / f"cache-warm-{backend}"
        primed = copy_tree(EXAMPLE, self.fresh("primed"), backend)
        print(f"  priming the {backend} no-op tree (unmeasured)", file=sys.stderr)
        # A full refresh: a minimal one keeps a lock another tool wrote byte for byte, and
        # the no-op runs must start from locks in this backend's own form.
        run_lockwarden(self.tools, primed, "full", warm, sequential=False)
        check_locks(primed, f"priming {backend} no-op")
        # A repository, as a team's is: its locks committed after the specs they come from,
        # which is what lets a minimal refresh keep them without a resolver.
        commit_tree(primed)
        before = lock_texts(primed)
        for run in range(1, runs + 1):
            order: tuple[Scenario, ...] = ("raw", "lockwarden")
            for scenario in order if run % 2 else order[::-1]:
                cell = Cell(scenario, "no-op", backend, "warm")
                tree = self.fresh("tree")
                shutil.copytree(primed, tree)
                if scenario == "raw":
                    seconds = run_raw(self.tools, tree, backend, "no-op", warm)
                else:
                    # Lockwarden's defaults here: the out-of-the-box no-op experience.
                    seconds = run_lockwarden(self.tools, tree, "no-op", warm, sequential=False)
                    changed = [env for env, text in lock_texts(tree).items() if text != before[env]]
                    if changed:
                        raise BenchmarkError(
                            f"{cell.label} run {run}: a no-op refresh rewrote "
                            f"{', '.join(f'requirements/{env}.txt' for env in changed)}"
                        )
                check_locks(tree, f"{cell.label} run {run}")
                self.record(cell, seconds, run, runs)
                shutil.rmtree(tree)
        shutil.rmtree(primed)


def commit_tree(tree: Path) -> None:
    """``git init`` and one commit of everything in ``tree``."""
    identity = ["-c", "user.name=benchmark", "-c", "user.email=benchmark@lockwarden.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "locks"]):
        subprocess.run(["git", *identity, *args], cwd=tree, check=True, capture_output=True)


def ratios(figures: Mapping[Cell, Figure], backends: Sequence[Backend]) -> list[Ratio]:
    """The ratios the figures of ``backends`` allow (the speedup needs both backends)."""

    def median(scenario: Scenario, refresh: Refresh, backend: Backend, cache: CacheState) -> float:
        return figures[Cell(scenario, refresh, backend, cache)].median

    def overhead(refresh: Refresh, backend: Backend, cache: CacheState) -> float:
        lockwarden = median("lockwarden", refresh, backend, cache)
        return lockwarden / median("raw", refresh, backend, cache) - 1

    out: list[Ratio] = []
    full = any(cell.refresh == "full" for cell in figures)
    group = "Lockwarden overhead vs raw, full refresh (lockwarden / raw - 1)"
    target = f"<= {OVERHEAD_TARGET:.0%}"
    for backend in backends if full else ():
        for cache in CACHE_STATES:
            value = overhead("full", backend, cache)
            out.append(
                Ratio(group, f"{backend}, {cache}", value, "%", target, value <= OVERHEAD_TARGET)
            )
    if full and set(backends) == set(BACKENDS):
        group = "uv speedup over pip-tools, full refresh, warm cache (pip-tools / uv)"
        target = f">= {SPEEDUP_TARGET:.0f}x"
        for scenario in ("raw", "lockwarden"):
            pip_tools = median(scenario, "full", "pip-tools", "warm")
            value = pip_tools / median(scenario, "full", "uv", "warm")
            out.append(Ratio(group, scenario, value, "x", target, value >= SPEEDUP_TARGET))
    group = "No-op refresh through Lockwarden, warm cache (median)"
    for backend in backends:
        value = median("lockwarden", "no-op", backend, "warm")
        target = f"< {NOOP_TARGET_S:.0f} s"
        out.append(Ratio(group, backend, value, "s", target, value < NOOP_TARGET_S))
    group = "Lockwarden overhead vs raw, no-op refresh (lockwarden / raw - 1)"
    for backend in backends:
        out.append(Ratio(group, backend, overhead("no-op", backend, "warm"), "%", "-", None))
    return out


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def machine(tools: Tools) -> dict[str, Any]:
    def installed(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "not installed"

    uv = subprocess.run(
        [tools.uv, "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pip_tools": installed("pip-tools"),
        "pip": installed("pip"),
        "uv": uv.stdout.strip() or "unknown",
        "lockwarden": lockwarden_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def print_machine(info: Mapping[str, Any]) -> None:
    print("Machine")
    print(f"  cores        {info['cores']} ({info['usable_cores']} usable)")
    print(f"  platform     {info['platform']}")
    print(f"  python       {info['python']}")
    print(f"  pip-tools    {info['pip_tools']} (pip {info['pip']})")
    print(f"  uv           {info['uv']}")
    print(f"  lockwarden   {info['lockwarden']}")
    print(f"  load average {' '.join(str(x) for x in info['load_average'])} (at start)")


def print_table(figures: Sequence[Figure]) -> None:
    print()
    print("Figures (seconds; a run is the whole serve -> train -> dev chain)")
    header = f"{'scenario':<11}{'refresh':<8}{'backend':<10}{'cache':<6}"
    print(f"  {header}{'median':>9}{'min':>9}{'max':>9}{'runs':>6}")
    for fig in figures:
        c = fig.cell
        row = f"{c.scenario:<11}{c.refresh:<8}{c.backend:<10}{c.cache:<6}"
        print(
            f"  {row}{fig.median:>9.2f}{min(fig.times_s):>9.2f}{max(fig.times_s):>9.2f}"
            f"{len(fig.times_s):>6}"
        )


def print_ratios(items: Sequence[Ratio], figures: Mapping[Cell, Figure]) -> None:
    group = ""
    for item in items:
        if item.group != group:
            group = item.group
            print()
            print(group)
        target = f"target {item.target}" if item.passed is not None else ""
        print(f"  {item.name:<22}{item.shown():>10}   {target:<16}{item.verdict()}")
    runs = sorted({len(f.times_s) for f in figures.values()})
    print()
    print(
        "Note: the machine is shared and noisy, so these ratios come from one benchmark run "
        f"(each figure is the median of {' or '.join(str(r) for r in runs)} run(s), see "
        "'runs'; raw and Lockwarden runs interleaved); "
        "rerun before trusting a difference of a few percent."
    )


@contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="lockwarden-bench-"))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(path, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.refresh",
        description="Time a 3-environment refresh of examples/ml-service: raw pip-tools / uv "
        "commands vs `lockwarden run`, cold and warm cache, full and no-op refresh.",
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="runs per figure (default 3)", metavar="N"
    )
    parser.add_argument(
        "--pip-tools-full-runs",
        type=int,
        default=1,
        metavar="M",
        help="runs per pip-tools full-refresh figure, which take minutes each "
        "(default 1; at most --runs)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE.json", help="also write figures as JSON")
    parser.add_argument(
        "--backend",
        dest="backends",
        action="append",
        choices=BACKENDS,
        help="only this backend (repeatable; default: both, which the speedup needs)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--sandbox",
        choices=("auto", "off"),
        default="auto",
        help="Lockwarden's LOCKWARDEN_SANDBOX (default auto: bubblewrap where it works); "
        "'off' shows the sandbox's share of the overhead",
    )
    parser.add_argument(
        "--no-signals",
        action="store_true",
        help="no advisory or upstream index lookups after the compiles (the raw tools make "
        "none): shows the signals stage's share of the overhead",
    )
    parser.add_argument(
        "--no-op-only",
        action="store_true",
        help="only the no-op refresh (the full ones take minutes with pip-tools)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.pip_tools_full_runs < 1:
        parser.error("--runs and --pip-tools-full-runs must be at least 1")
    args.pip_tools_full_runs = min(args.pip_tools_full_runs, args.runs)
    args.backends = [b for b in BACKENDS if b in (args.backends or BACKENDS)]
    return args


def lockwarden_settings(args: argparse.Namespace) -> dict[str, str]:
    """The settings the options give the Lockwarden runs."""
    env = {"LOCKWARDEN_SANDBOX": args.sandbox}
    if args.no_signals:
        env |= {"LOCKWARDEN_ADVISORY_SERVICE": "off", "LOCKWARDEN_UPSTREAM_LOOKUPS": "false"}
    return env


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        tools = replace(find_tools(), lockwarden_env=lockwarden_settings(args))
        info = machine(tools)
        print_machine(info)
        shown = " ".join(f"{k}={v}" for k, v in tools.lockwarden_env.items())
        print(f"  settings     {shown} (Lockwarden runs)")
        sys.stdout.flush()
        with workdir(args.keep) as scratch:
            bench = Bench(tools, scratch)
            for backend in args.backends:
                full_runs = args.pip_tools_full_runs if backend == "pip-tools" else args.runs
                for cache in () if args.no_op_only else CACHE_STATES:
                    print(f"full refresh, {backend}, {cache} cache", file=sys.stderr)
                    bench.full_refresh(backend, cache, full_runs)
                print(f"no-op refresh, {backend}, warm cache", file=sys.stderr)
                bench.noop_refresh(backend, args.runs)
    except BenchmarkError as exc:
        print(f"\nbenchmark aborted: {exc}", file=sys.stderr)
        return 2
    figures = bench.figures
    ordered = sorted(
        figures.values(),
        key=lambda f: (
            f.cell.refresh != "full",
            BACKENDS.index(f.cell.backend),
            f.cell.cache,
            f.cell.scenario != "raw",
        ),
    )
    print_table(ordered)
    items = ratios(figures, args.backends)
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
                "pip_tools_full_runs": args.pip_tools_full_runs,
                "backends": args.backends,
                "example": str(EXAMPLE.relative_to(REPO_ROOT)),
                "environments": list(ENVIRONMENTS),
                "max_parallel_compiles": {"full": 1, "no-op": "default"},
                "lockwarden_settings": dict(tools.lockwarden_env),
            },
            "figures": [fig.as_json() for fig in ordered],
            "ratios": [item.as_json() for item in items],
            "wall_time_s": round(wall, 1),
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", "utf-8")
        print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
