"""The pipeline, top to bottom: checkout -> configure -> compile -> signals -> build -> verify
-> publish (signals: what advisory services and indexes say of the new locks).

``refresh`` runs it for one workspace. The CLI calls it on a working tree; the GitHub
worker calls it on a fresh clone and publishes a pull request instead of writing in place.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.locks.compiler import LockBackend, tool_environment
from bot.locks.formats import Toolchain, all_compilers
from bot.locks.formats.requirements.uv import find_uv
from bot.locks.interpreters import REQUIREMENTS, Provisioner, Provisioning
from bot.locks.modes import CompileMode
from bot.locks.options import Tool
from bot.observe import stage
from bot.pipeline.checkout import Workspace, staging_copy
from bot.pipeline.compile import against_baseline, compile_environments, parse_targets
from bot.pipeline.configure import configure
from bot.pipeline.write import refuse_overwrites, write_files, write_locks
from bot.progress import Progress, ProgressEvent, no_progress
from bot.results import (
    CompileStageResult,
    DockerfilePins,
    ImageResult,
    RunResult,
    SignalsResult,
    TestResult,
)
from bot.sandbox import EgressPolicy, Sandbox, SandboxMode, open_sandbox
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.config import LoadedConfig, RepoConfig
    from bot.images import Builder
    from bot.images.retention import RunImages

OS_PINS_NOT_REFRESHED = (
    "OS package pins were not refreshed: no image builder ran (--no-build, "
    "LOCKWARDEN_BUILDER=none, or neither buildah nor docker works here); run again with a "
    "builder to refresh them"
)


@dataclass(frozen=True)
class RefreshOptions:
    environments: tuple[str, ...] = ()
    """Only these (and the environments they constrain); empty: all."""
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    dry_run: bool = False
    build: bool = True
    test: bool = True
    verify_reproducible: bool | None = None
    """None: the repository config decides (its default: off)."""
    write: bool = True
    """Write the new locks into the workspace; GitHub jobs commit them to a branch instead."""
    force: bool = False
    """Write even over uncommitted changes to the files the run changes (refused otherwise)."""
    reuse_recent_lookups: bool = False
    """Take index pages and advisory answers fetched less than LOCKWARDEN_UPSTREAM_FRESH_S ago
    without asking again: for a person running refreshes minutes apart. A job of the App
    asks every time, so an advisory published a minute ago reaches its report."""
    seed_locks: Mapping[str, str] = field(default_factory=dict)
    """Lock path -> text to start the compile from instead of the workspace's lock (an open
    pull request's locks, or the locks a rollback restores). Results are still stated
    against the workspace's locks, and the images built before and after differ by both."""


def make_backends(
    settings: Settings, sandbox: Sandbox, cache_dir: Path | None = None
) -> dict[Tool, LockBackend]:
    """The compile backends; ``cache_dir`` (default: the configured one) is where their
    download caches go."""
    cache = cache_dir if cache_dir is not None else settings.cache_dir
    env = tool_environment(os.environ, isolate=settings.isolate_tool_config, cache_dir=cache)
    uv = find_uv(settings.uv_bin)
    tools = Toolchain(
        env=env,
        sandbox=sandbox,
        cache_dir=cache,
        uv_bin=uv,
        poetry_bin=settings.poetry_bin,
        conda_channel_alias=settings.conda_channel_alias,
        provisioner=_provisioner(settings, env, uv),
    )
    return all_compilers(tools, sandbox.policy)


def _provisioner(settings: Settings, env: Mapping[str, str], uv: str) -> Provisioner:
    """Interpreters for locks of other Pythons, and the toolchains made with them (shared by
    every repository: Lockwarden's own, never written by a sandboxed process)."""
    return Provisioner(
        Provisioning(
            settings.toolchain_dir,
            requirements=settings.piptools_requirements or REQUIREMENTS,
            pyenv_root=settings.pyenv_root,
            uv_bin=uv,
            install=settings.python_install,
            install_timeout_s=settings.python_install_timeout_s,
            env=env,
        )
    )


def compile_cache(settings: Settings, sandbox: Sandbox, repo: str) -> Path | None:
    """The download cache a repository's compiles may write. Sandboxed builds write into it,
    so on the worker each repository has its own: one repository's build code cannot plant
    a file that another repository's compile would read."""
    if settings.cache_dir is None or sandbox.trusts_repository:
        return settings.cache_dir
    return settings.cache_dir / "repositories" / repo.replace("/", "--").lower()


def local_sandbox(settings: Settings) -> Sandbox:
    """The sandbox of a run on a person's own checkout: bubblewrap when it works here, else
    a plain subprocess, said once per process (``bot.cli`` prints ``Sandbox.reason``)."""
    return _local_sandbox(settings.sandbox)


@functools.cache
def _local_sandbox(mode: SandboxMode) -> Sandbox:
    return open_sandbox(mode, required=False)


def egress_policy(settings: Settings, config: RepoConfig, sandbox: Sandbox) -> EgressPolicy:
    """The hosts outside the public internet a compile may reach: the operator's list, and,
    on a person's own checkout, the indexes its config names. A repository cannot open its
    way into the worker's network by listing a private index itself."""
    hosts = list(settings.allowed_private_hosts)
    if sandbox.trusts_repository:
        hosts += config_index_hosts(config)
    return EgressPolicy(tuple(dict.fromkeys(hosts)))


def select_builder(settings: Settings, egress: EgressPolicy | None = None) -> Builder | None:
    """The configured builder; with ``auto``, buildah when it works here, else docker when a
    daemon answers, else none (images are then reported as skipped). ``egress``: the private
    hosts builds and tests may reach (default: the operator's list)."""
    from bot.images.buildah import BuildahBuilder
    from bot.images.docker import DockerBuilder

    candidates: list[Builder] = []
    if settings.builder in ("auto", "buildah"):
        candidates.append(
            BuildahBuilder(
                os.environ,
                runtime=settings.buildah_runtime,
                pull=settings.build_pull,
                egress=egress or EgressPolicy(settings.allowed_private_hosts),
            )
        )
    if settings.builder in ("auto", "docker"):
        candidates.append(DockerBuilder(os.environ, pull=settings.build_pull == "always"))
    for builder in candidates:
        if builder.available():
            return builder
    return None


def refresh(
    workspace: Workspace,
    options: RefreshOptions,
    settings: Settings,
    *,
    sandbox: Sandbox | None = None,
    progress: Progress = no_progress,
) -> RunResult:
    """The pipeline for one workspace. ``sandbox``: how repository content runs (the
    worker's own; by default the local one, see ``local_sandbox``). ``progress``: where
    each environment's steps are reported as they happen."""
    started = time.perf_counter()
    mode = _mode(options)

    # configure: environments from .github/lockwarden.yml or discovery
    with stage("configure"):
        loaded = configure(workspace, options.environments)
    sandbox = sandbox or local_sandbox(settings)
    sandbox = sandbox.with_policy(egress_policy(settings, loaded.config, sandbox))

    # checkout: a staging copy of the workspace, which the new locks and pins go into
    with staging_copy(workspace) as staging:
        run = _Run(workspace, staging, options, settings, sandbox, loaded, mode, progress)

        # compile: in constraint order; failures are values
        with stage("compile"):
            compiled = _compile(run)

        # signals: advisories of the locks before and after (and the upstream index's word)
        with stage("signals"):
            # Loaded here, as _signals loads its own: the index client imports httpx.
            from bot.upstream.held import explain_failures

            signals = _signals(run, compiled)
            compiled = explain_failures(compiled, signals)  # the quarantine's failures say so

        wants_images = options.build and any(e.dockerfile for e in loaded.config.environments)
        builder = select_builder(settings, sandbox.policy) if wants_images else None

        # image inputs: base-image digests and OS package pins in the Dockerfiles, refreshed
        # in the staging tree so the "after" images are built from them
        image_pins = _refresh_pins(run, builder)

        images: tuple[ImageResult, ...] = ()
        tests: tuple[TestResult, ...] = ()
        if wants_images:
            from bot.images.retention import run_images

            # Whatever happens, only each environment's newest "after" image stays.
            with run_images(builder) as built:
                # build: before (the workspace as it is) and after (the staging tree, new locks)
                with stage("build"):
                    images = _build(run, compiled, builder, built)
                # verify: the lock installs as locked, and the tests pass, inside each image
                with stage("test"):
                    tests = _verify(run, images, builder)

    # publish: write the new locks in place (never on a dry run; GitHub jobs publish a pull
    # request instead, timed as their own "publish" stage)
    written: tuple[str, ...] = ()
    if options.write and not options.dry_run:
        with stage("publish"):
            written = _publish(workspace.root, compiled, image_pins, force=options.force)
    return RunResult(
        repo=workspace.repo,
        config=loaded,
        mode=mode,
        compiled=compiled,
        images=images,
        tests=tests,
        builder=builder.name if builder is not None else None,
        written=written,
        dry_run=options.dry_run,
        duration_s=time.perf_counter() - started,
        image_pins=image_pins,
        signals=signals,
    )


@dataclass(frozen=True)
class _Run:
    """What every stage of one ``refresh`` reads."""

    workspace: Workspace
    staging: Path
    options: RefreshOptions
    settings: Settings
    sandbox: Sandbox
    loaded: LoadedConfig
    mode: CompileMode
    progress: Progress


def _compile(run: _Run) -> CompileStageResult:
    """Every selected environment's lock, compiled in the staging tree (seeded with
    ``options.seed_locks``, then stated against the workspace's locks)."""
    for lock, text in run.options.seed_locks.items():
        seeded = run.staging / lock
        seeded.parent.mkdir(parents=True, exist_ok=True)
        seeded.write_text(text, "utf-8")
    settings, sandbox, config = run.settings, run.sandbox, run.loaded.config
    compiled = compile_environments(
        run.staging,
        config,
        make_backends(settings, sandbox, compile_cache(settings, sandbox, run.workspace.repo)),
        selected=run.options.environments,
        mode=run.mode,
        max_parallel=settings.max_parallel_compiles,
        timeout_s=settings.compile_timeout_s,
        repo_root=run.workspace.root,
        config_source=run.loaded.source,
        policy=sandbox.policy,
        progress=run.progress,
    )
    if run.options.seed_locks:
        compiled = against_baseline(compiled, run.workspace.root, config, run.options.seed_locks)
    return compiled


def _signals(run: _Run, compiled: CompileStageResult) -> SignalsResult:
    """What the advisory services (and indexes) say about the compiled environments' locks,
    reported as each environment's ``signals`` step."""
    from bot.advisories.service import service_config
    from bot.pipeline.signals import collect_signals, describe_signals
    from bot.upstream.stage import upstream_options

    reuse = run.options.reuse_recent_lookups
    service = service_config(run.settings, reuse_recent=reuse)
    # Lookups switched off are no step of the run: nothing to show per environment.
    names = [r.name for r in compiled.results] if service.service != "off" else []
    for name in names:
        run.progress(ProgressEvent(name, "signals", "running"))
    started = time.perf_counter()
    signals = collect_signals(
        run.staging,
        run.loaded.config,
        compiled,
        service,
        mode=run.mode,
        upstream_options=upstream_options(run.settings, run.sandbox.policy, reuse_recent=reuse),
    )
    elapsed = time.perf_counter() - started
    for name in names:
        state, detail = describe_signals(signals, name)
        run.progress(ProgressEvent(name, "signals", state, elapsed, detail))
    return signals


def _refresh_pins(run: _Run, builder: Builder | None) -> tuple[DockerfilePins, ...]:
    """The selected Dockerfiles' base-image digests and OS package pins, refreshed in the
    staging tree when the config asks for either (none otherwise). Without a builder the
    OS packages are still read (unpinned ones are reported), and pins that a builder would
    have refreshed are named in a note, not a failure: the run chose to build nothing."""
    config = run.loaded.config
    dockerfiles = _dockerfiles(config, run.options.environments)
    if not dockerfiles or not (config.pin_base_images or config.refresh_os_packages):
        return ()
    from bot.pipeline.image_pins import NO_BUILDER, refresh_image_pins

    for environments in dockerfiles.values():
        for name in environments:
            run.progress(ProgressEvent(name, "pins", "running"))
    with stage("pins"):
        started = time.perf_counter()
        pins = refresh_image_pins(
            run.staging,
            dockerfiles,
            builder,
            upgrade=run.mode.kind == "full",
            pin_base_images=config.pin_base_images,
            refresh_os_packages=config.refresh_os_packages,
            insecure_registries=config.insecure_registries,
            timeout_s=run.settings.build_timeout_s,
            policy=run.sandbox.policy,
        )
        elapsed = time.perf_counter() - started
    if builder is None:
        pins = tuple(_without_builder(p, NO_BUILDER) for p in pins)
    for p in pins:
        for name in p.environments:
            run.progress(_pinned_event(name, p, elapsed))
    return pins


def _without_builder(pins: DockerfilePins, no_builder: str) -> DockerfilePins:
    """``pins`` with the error "no builder to refresh the OS packages" turned into a note."""
    kept = tuple(e for e in pins.errors if not e.endswith(no_builder))
    if len(kept) == len(pins.errors):
        return pins
    return replace(pins, errors=kept, notes=(*pins.notes, OS_PINS_NOT_REFRESHED))


def _pinned_event(name: str, pins: DockerfilePins, elapsed: float) -> ProgressEvent:
    if pins.errors:
        return ProgressEvent(name, "pins", "failed", elapsed, pins.errors[0])
    n = len(pins.changes)
    detail = f"{n} pin{'s' if n != 1 else ''} changed" if n else "unchanged"
    return ProgressEvent(name, "pins", "done", elapsed, detail)


def _build(
    run: _Run, compiled: CompileStageResult, builder: Builder | None, built: RunImages
) -> tuple[ImageResult, ...]:
    """The images before (the workspace) and after (the staging tree, new locks)."""
    # Imported here: a locks-only run does not pay for the image stages' start-up.
    from bot.images.digest import ImageCache
    from bot.pipeline.build import build_images

    options, config = run.options, run.loaded.config
    return build_images(
        run.workspace.root,
        run.staging,
        run.workspace.repo,
        config,
        {r.name: r for r in compiled.results},
        builder,
        ImageCache(run.settings.cache_dir),
        verify_reproducible=bool(
            options.verify_reproducible
            if options.verify_reproducible is not None
            else config.verify_reproducible
        ),
        timeout_s=run.settings.build_timeout_s,
        sandbox=run.sandbox,
        progress=run.progress,
        images=built,
    )


def _verify(
    run: _Run, images: tuple[ImageResult, ...], builder: Builder | None
) -> tuple[TestResult, ...]:
    """Each image's check that its lock installs as locked, and its tests."""
    from bot.pipeline.verify import verify_images

    return verify_images(
        run.staging,
        run.loaded.config,
        images,
        builder,
        run_tests=run.options.test,
        progress=run.progress,
    )


def _publish(
    root: Path,
    compiled: CompileStageResult,
    image_pins: tuple[DockerfilePins, ...],
    *,
    force: bool,
) -> tuple[str, ...]:
    """The new locks and refreshed Dockerfiles, written into the workspace (none of them
    over a person's uncommitted work unless ``force``)."""
    pins = {p.dockerfile: p.new_text for p in image_pins if p.changed}
    refuse_overwrites(
        root, {p: t for r in compiled.results for p, t in r.files().items()} | pins, force=force
    )
    written = write_locks(root, compiled.results)
    return written + write_files(root, pins)


def config_index_hosts(config: RepoConfig) -> list[str]:
    """The hosts of every index ``.github/lockwarden.yml`` names."""
    urls = [config.index_url, *config.extra_index_urls]
    for env in config.environments:
        urls += [env.index_url, *env.extra_index_urls]
    return [host for url in urls if url and (host := urlsplit(url).hostname)]


def _dockerfiles(config: RepoConfig, selected: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Dockerfile -> the environments built from it (the selected ones only)."""
    out: dict[str, tuple[str, ...]] = {}
    for env in config.environments:
        if env.dockerfile is not None and (not selected or env.name in selected):
            out[env.dockerfile] = (*out.get(env.dockerfile, ()), env.name)
    return out


def _mode(options: RefreshOptions) -> CompileMode:
    if options.upgrade:
        return CompileMode("full")
    if options.upgrade_packages:
        return CompileMode("targeted", parse_targets(options.upgrade_packages))
    return CompileMode("minimal")
