"""Conda backend: solve ``environment.yml`` with rattler and write one explicit lock per platform.

The solve runs in-process (py-rattler, the Rust conda solver), so there is no command to run
and no subprocess; ``argv`` only describes it for the report. Repodata comes from a fresh
``Gateway`` per compile (its disk cache under ``cache_dir / "rattler"`` revalidates with the
channel, so a new release is seen on the next compile) and the virtual packages are those of
the *target* platform, not of the machine running the bot.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import rattler
from packaging.utils import canonicalize_name
from rattler import (
    BuildString,
    Channel,
    Gateway,
    GenericVirtualPackage,
    MatchSpec,
    PackageName,
    RepoDataRecord,
    Subdir,
    Version,
)
from rattler.exceptions import (
    FetchRepoDataError,
    GatewayError,
    InvalidChannelError,
    InvalidMatchSpecError,
    SolverError,
)

from bot.errors import ConfigError, LockfileParseError, LockwardenError
from bot.locks.compiler import CompileOutcome, CompileRequest, ExtraOutput
from bot.locks.formats.conda.environment import (
    CondaEnvironmentSpec,
    parse_explicit_lock,
    parse_package_url,
    read_environment_yml,
    render_explicit_lock,
)
from bot.locks.formats.conda.platforms import conda_subdir
from bot.locks.lockfile import Lockfile
from bot.locks.modes import FailureKind
from bot.locks.options import Tool
from bot.paths import resolve_inside
from bot.sandbox.egress import EgressPolicy, url_refusal

DEFAULT_SUBDIR = "linux-64"

# Virtual packages of each target platform: what a machine running the environment offers,
# kept conservative (glibc 2.28: Debian 10, RHEL 8 and newer; Linux 5.10; macOS 11 on Intel,
# 13 on Apple silicon). No ``__cuda``: a build that needs a GPU is never picked for machines
# that may have none.
_VIRTUAL_PACKAGES: dict[str, tuple[tuple[str, str, str], ...]] = {
    "linux-64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.28", "0"),
        ("__archspec", "1", "x86_64"),
    ),
    "linux-aarch64": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.28", "0"),
        ("__archspec", "1", "aarch64"),
    ),
    "linux-ppc64le": (
        ("__unix", "0", "0"),
        ("__linux", "5.10", "0"),
        ("__glibc", "2.28", "0"),
        ("__archspec", "1", "ppc64le"),
    ),
    "osx-64": (("__unix", "0", "0"), ("__osx", "11.0", "0"), ("__archspec", "1", "x86_64")),
    "osx-arm64": (("__unix", "0", "0"), ("__osx", "13.0", "0"), ("__archspec", "1", "arm64")),
    "win-64": (("__win", "0", "0"),),
}

_NO_CANDIDATES_RE = re.compile(r"No candidates were found for (?P<spec>.+?)\.?$")
_SOLVER_PREFIX = "Cannot solve the request because of: "
_BLOCKING_RE = re.compile(r"cannot be installed|conflicts with|no candidates were found")
_TREE_RE = re.compile(r"^[\s\u2500-\u257f]+")  # box-drawing characters of the solver's tree
_TAIL_LINES = 40


def virtual_packages(subdir: str) -> list[GenericVirtualPackage]:
    """The virtual packages a solve for ``subdir`` assumes."""
    return [
        GenericVirtualPackage(PackageName(name), Version(version), BuildString(build))
        for name, version, build in _VIRTUAL_PACKAGES[subdir]
    ]


@dataclass(frozen=True)
class _Target:
    subdir: str
    output: Path
    existing: Lockfile | None


class _Failure(Exception):
    """A failed solve, carried out of the event loop and returned as a ``CompileOutcome``."""

    def __init__(self, kind: FailureKind, error: str, tool_output: str = "") -> None:
        super().__init__(error)
        self.kind = kind
        self.error = error
        self.tool_output = tool_output


class CondaBackend:
    """Solves ``environment.yml`` with rattler; writes conda explicit locks.

    ``request.python_version`` is ignored: a conda environment pins Python itself, as one
    of the dependencies in ``environment.yml``.
    """

    name: Tool = "conda"

    def __init__(
        self,
        cache_dir: Path | None,
        *,
        channel_alias: str = "https://conda.anaconda.org",
        policy: EgressPolicy | None = None,
    ) -> None:
        self._cache_dir = cache_dir
        self._channel_alias = channel_alias.rstrip("/")
        # The solver fetches in this process, with no proxy: channels are checked here.
        self._policy = policy or EgressPolicy()

    def channel_url(self, channel: str, root: Path, source: str = "environment.yml") -> str:
        """A channel of ``environment.yml`` as a URL: names against the channel alias, paths
        against the repository root (and inside it), URLs as they are. Raises
        ``PathEscapeError`` for a local channel outside the repository."""
        if channel.startswith("file://"):
            channel = urlsplit(channel).path
        elif "://" in channel:
            return channel.rstrip("/")
        if channel.startswith(("/", "./", "../")):
            relative = os.path.relpath(channel, root) if channel.startswith("/") else channel
            return resolve_inside(root, relative, source=f"{source}: channel").as_uri()
        return f"{self._channel_alias}/{channel.strip('/')}"

    def _refused_channel(self, channels: list[str], spec: str) -> _Failure | None:
        for url in channels:
            refusal = url_refusal(self._policy, url)
            if refusal is not None:
                return _Failure(
                    "refused",
                    f"{spec}: channel {url}: {refusal}; a channel there is refused unless "
                    "LOCKWARDEN_ALLOWED_PRIVATE_HOSTS lists it",
                )
        return None

    def compile(self, request: CompileRequest) -> CompileOutcome:
        """Solve every target platform; write the locks only when all of them solved.

        An invalid ``environment.yml`` raises ``ConfigError``; solver and channel failures
        are returned as values.
        """
        started = time.perf_counter()
        spec = read_environment_yml(request.root, request.spec)
        subdirs = self._subdirs(request, spec)
        notes: list[str] = []
        targets = self._targets(request, subdirs, notes)
        channels = [self.channel_url(c, request.root, request.spec) for c in spec.channels]
        try:
            sources = [Channel(url) for url in channels]
        except InvalidChannelError as exc:
            raise ConfigError(
                request.spec, f"not a usable channel: {exc}", field="channels"
            ) from exc
        argv = (
            "rattler",
            "solve",
            request.spec,
            *(arg for subdir in subdirs for arg in ("--platform", subdir)),
            *(arg for url in channels for arg in ("--channel", url)),
            *_mode_args(request),
        )
        header = f"lockwarden: rattler solve {request.spec} ({', '.join(subdirs)})"
        if spec.pip:
            notes.append(
                f"{request.spec}: the pip: entries ({', '.join(spec.pip)}) are not solved by "
                "conda and are not locked; move them to a requirements environment to lock them"
            )

        def outcome(failure: _Failure | None) -> CompileOutcome:
            return CompileOutcome(
                ok=failure is None,
                argv=argv,
                header_command=header,
                duration_s=time.perf_counter() - started,
                error=None if failure is None else failure.error,
                failure=None if failure is None else failure.kind,
                tool_output="" if failure is None else failure.tool_output,
                notes=tuple(notes),
            )

        refused = self._refused_channel(channels, request.spec)
        if refused is not None:
            return outcome(refused)
        try:
            texts = asyncio.run(self._solve_all(request, spec, channels, sources, targets))
        except _Failure as failure:
            return outcome(failure)
        # Nothing is written before every platform solved: a failure leaves no partial set.
        for target, text in zip(targets, texts, strict=True):
            target.output.write_text(text, "utf-8")
        return outcome(None)

    # -- set-up ----------------------------------------------------------------------------

    @staticmethod
    def _subdirs(request: CompileRequest, spec: CondaEnvironmentSpec) -> list[str]:
        wanted = request.platforms or spec.platforms or (DEFAULT_SUBDIR,)
        out: list[str] = []
        for platform in wanted:
            try:
                subdir = conda_subdir(platform)
            except ValueError as exc:
                raise LockwardenError(f"cannot lock {request.spec}: {exc}") from exc
            if subdir not in out:
                out.append(subdir)
        return out

    @staticmethod
    def _targets(request: CompileRequest, subdirs: list[str], notes: list[str]) -> list[_Target]:
        existing = request.existing if _is_conda(request.existing) else None
        if existing is None:
            existing = _read_lock(request.root, request.lock, notes)
        targets = [_Target(subdirs[0], request.output, existing)]
        extras: dict[str, ExtraOutput] = {}
        for extra in request.extra_outputs:
            if extra.kind == "platform-lock" and extra.platform is not None:
                extras.setdefault(conda_subdir(extra.platform), extra)
        for subdir in subdirs[1:]:
            if subdir not in extras:
                raise ValueError(
                    f"no platform-lock output for {subdir} in the compile request of "
                    f"{request.spec}; the compile stage must pass one per further platform"
                )
            found = extras[subdir]
            targets.append(
                _Target(subdir, found.output, _read_lock(request.root, found.path, notes))
            )
        return targets

    # -- solving ---------------------------------------------------------------------------

    async def _solve_all(
        self,
        request: CompileRequest,
        spec: CondaEnvironmentSpec,
        channels: list[str],
        sources: list[Channel],
        targets: list[_Target],
    ) -> list[str]:
        gateway = Gateway(
            cache_dir=self._cache_dir / "rattler" if self._cache_dir is not None else None
        )
        released, pins = _targeted(request, [t.existing for t in targets])
        specs = [dep.spec for dep in spec.dependencies]
        for name, version in pins:
            specs.append(f"{name}=={version}")
        # No solver version in the file: upgrading rattler must not rewrite unchanged locks.
        tool_line = "solved with rattler (py-rattler)"
        texts = []
        deadline = time.monotonic() + request.timeout_s
        for target in targets:
            locked: list[RepoDataRecord] = []
            if request.mode.kind != "full" and target.existing is not None:
                locked = await _locked_records(
                    gateway, sources, target.subdir, target.existing, released, channels
                )
            records = await _solve(
                gateway, sources, channels, specs, target.subdir, locked, deadline
            )
            texts.append(
                render_explicit_lock(
                    platform=target.subdir,
                    records=records,
                    spec_path=request.spec,
                    tool_line=tool_line,
                )
            )
        return texts


async def _solve(
    gateway: Gateway,
    sources: list[Channel],
    channels: list[str],
    specs: list[str],
    subdir: str,
    locked: list[RepoDataRecord],
    deadline: float,
) -> list[RepoDataRecord]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _timeout(subdir)
    try:
        match_specs = [MatchSpec(s) for s in specs]
    except InvalidMatchSpecError as exc:  # a targeted name==version the grammar let through
        raise _Failure("tool-error", f"invalid package pin: {exc}") from exc
    try:
        return await asyncio.wait_for(
            rattler.solve(
                sources,
                match_specs,
                gateway=gateway,
                platforms=[Subdir(subdir), Subdir("noarch")],
                locked_packages=locked,
                virtual_packages=virtual_packages(subdir),
                timeout=datetime.timedelta(seconds=remaining),
            ),
            # Also bounds fetching repodata, which the solver's own timeout does not cover.
            timeout=remaining,
        )
    except TimeoutError as exc:
        raise _timeout(subdir) from exc
    except SolverError as exc:
        raise _solver_failure(str(exc), subdir, channels) from exc
    except (GatewayError, FetchRepoDataError) as exc:
        raise _channel_failure(str(exc), channels) from exc


async def _locked_records(
    gateway: Gateway,
    sources: list[Channel],
    subdir: str,
    existing: Lockfile,
    released: frozenset[str],
    channels: list[str],
) -> list[RepoDataRecord]:
    """The records of the channels that the existing lock pins (those still published),
    except the packages a targeted update releases."""
    wanted = [entry for entry in existing.requirements if entry.name not in released]
    if not wanted:
        return []
    try:
        found = await gateway.query(
            sources,
            [Subdir(subdir), Subdir("noarch")],
            [e.raw_name for e in wanted],
            recursive=False,
        )
    except (GatewayError, FetchRepoDataError) as exc:
        raise _channel_failure(str(exc), channels) from exc
    by_key: dict[tuple[str, str, str], list[RepoDataRecord]] = {}
    for source_records in found:
        for record in source_records:
            key = (
                canonicalize_name(record.name.normalized),
                str(record.version),
                str(record.build),
            )
            by_key.setdefault(key, []).append(record)
    out: list[RepoDataRecord] = []
    for entry in wanted:
        candidates = by_key.get((entry.name, entry.version or "", entry.build or ""), [])
        same_channel = [r for r in candidates if _channel_of(r) == entry.channel]
        if same_channel or candidates:
            out.append((same_channel or candidates)[0])
    return out


def _channel_of(record: RepoDataRecord) -> str | None:
    parsed = parse_package_url(record.url)
    return None if parsed is None else parsed.channel


def _targeted(
    request: CompileRequest, locks: Sequence[Lockfile | None]
) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """Names a targeted update releases, and the ``name==version`` pins it adds."""
    if request.mode.kind != "targeted":
        return frozenset(), []
    # The locks spell conda names (``_openmp_mutex``) that canonical names (``-openmp-mutex``)
    # lose; a pin must use the conda spelling.
    spelled = {e.name: e.raw_name for lock in locks if lock for e in lock.requirements}
    released: set[str] = set()
    pins: list[tuple[str, str]] = []
    for item in request.mode.packages:
        name, _, version = item.partition("==")
        canonical = canonicalize_name(name.strip())
        released.add(canonical)
        if version.strip():
            pins.append((spelled.get(canonical, name.strip()), version.strip()))
    return frozenset(released), pins


def _mode_args(request: CompileRequest) -> tuple[str, ...]:
    if request.mode.kind == "full":
        return ("--update-all",)
    if request.mode.kind == "targeted":
        return tuple(arg for p in request.mode.packages for arg in ("--update", p))
    return ()


def _is_conda(lock: Lockfile | None) -> bool:
    return lock is not None and lock.flavour == "conda"


def _read_lock(root: Path, path: str, notes: list[str]) -> Lockfile | None:
    file = root / path
    if not file.is_file():
        return None
    try:
        return parse_explicit_lock(file.read_text("utf-8"), path)
    except (LockfileParseError, OSError, UnicodeDecodeError) as exc:
        notes.append(f"{path} could not be read ({exc}); it was solved afresh")
        return None


# -- failures as values --------------------------------------------------------------------------


def _tail(message: str) -> str:
    return "\n".join(message.strip().splitlines()[-_TAIL_LINES:])


def _timeout_message(subdir: str) -> str:
    return (
        f"the conda solve for {subdir} did not finish in time; raise the timeout or narrow "
        "the specs in environment.yml"
    )


def _timeout(subdir: str) -> _Failure:
    return _Failure("timeout", _timeout_message(subdir))


def classify_solver_error(
    message: str, subdir: str, channels: Sequence[str]
) -> tuple[FailureKind, str]:
    """Sort rattler's ``SolverError`` text into a failure kind and one line for people."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    first = lines[0].removeprefix(_SOLVER_PREFIX).rstrip(":") if lines else "no reason given"
    if re.search(r"time(d)? ?out|cancel", first, re.IGNORECASE):
        return "timeout", _timeout_message(subdir)
    missing = _NO_CANDIDATES_RE.search(first)
    if missing is not None and len(lines) == 1:
        name, _, constraint = missing.group("spec").partition(" ")
        where = ", ".join(channels)
        if constraint.strip() in ("", "*"):
            return "not-found", (
                f"no package named {name} in {where} for {subdir}; check the name in "
                "environment.yml or add the channel that has it"
            )
        return "not-found", (
            f"no release of {name} matching {constraint.strip()} in {where} for {subdir}; "
            "relax the spec in environment.yml"
        )
    # The first line saying what cannot be installed (the summary may only say "The
    # following packages are incompatible").
    reason = next(
        (_TREE_RE.sub("", line).rstrip(":.") for line in lines if _BLOCKING_RE.search(line)),
        first,
    )
    return "conflict", (
        f"the conda spec cannot be solved: {reason.removeprefix(_SOLVER_PREFIX)} (for {subdir})"
    )


def classify_channel_error(message: str, channels: Sequence[str]) -> tuple[FailureKind, str]:
    """A ``GatewayError`` (repodata could not be fetched) as a failure kind and one line."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    named = [url for url in channels if url.rstrip("/") in message]
    where = ", ".join(named or channels)
    reason = lines[-1].removeprefix("Caused by: ") if lines else "no reason given"
    return "index-unreachable", (
        f"the conda channel {where} could not be read ({reason}); check the channel URL "
        "and the network, then run again"
    )


def _solver_failure(message: str, subdir: str, channels: Sequence[str]) -> _Failure:
    kind, error = classify_solver_error(message, subdir, channels)
    return _Failure(kind, error, _tail(message))


def _channel_failure(message: str, channels: Sequence[str]) -> _Failure:
    kind, error = classify_channel_error(message, channels)
    return _Failure(kind, error, _tail(message))
