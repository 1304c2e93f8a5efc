"""The pipeline, top to bottom: checkout -> configure -> compile -> build -> verify -> publish.

``refresh`` runs it for one workspace. The CLI calls it on a working tree; the GitHub
worker calls it on a fresh clone and publishes a pull request instead of writing in place.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from bot.config import LoadedConfig
from bot.locks.backends import CompileMode, LockBackend, tool_environment
from bot.locks.backends.pip_tools import PipToolsBackend
from bot.locks.backends.uv import UvBackend, find_uv
from bot.locks.options import Tool
from bot.pipeline.checkout import Workspace, staging_copy
from bot.pipeline.compile import CompileStageResult, compile_environments, parse_targets
from bot.pipeline.configure import configure
from bot.pipeline.publish import write_locks
from bot.settings import Settings


@dataclass(frozen=True)
class RefreshOptions:
    environments: tuple[str, ...] = ()
    """Only these (and the environments they constrain); empty: all."""
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    dry_run: bool = False


@dataclass(frozen=True)
class RunResult:
    repo: str
    config: LoadedConfig
    mode: CompileMode
    compiled: CompileStageResult
    written: tuple[str, ...] = ()
    dry_run: bool = False
    duration_s: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.compiled.results)


def make_backends(settings: Settings) -> dict[Tool, LockBackend]:
    env = tool_environment(
        os.environ, isolate=settings.isolate_tool_config, cache_dir=settings.cache_dir
    )
    return {
        "pip-tools": PipToolsBackend(env, settings.cache_dir),
        "uv": UvBackend(env, find_uv(settings.uv_bin)),
    }


def refresh(workspace: Workspace, options: RefreshOptions, settings: Settings) -> RunResult:
    started = time.perf_counter()
    mode = _mode(options)

    # configure: environments from .github/lockwarden.yml or discovery
    loaded = configure(workspace, options.environments)

    # compile: in a staging copy, in constraint order; failures are values
    with staging_copy(workspace) as stage:
        compiled = compile_environments(
            stage,
            loaded.config,
            make_backends(settings),
            selected=options.environments,
            mode=mode,
            max_parallel=settings.max_parallel_compiles,
            timeout_s=settings.compile_timeout_s,
        )

    # publish: write the new locks in place (never on a dry run)
    written = () if options.dry_run else write_locks(workspace.root, compiled.results)
    return RunResult(
        repo=workspace.repo,
        config=loaded,
        mode=mode,
        compiled=compiled,
        written=written,
        dry_run=options.dry_run,
        duration_s=time.perf_counter() - started,
    )


def _mode(options: RefreshOptions) -> CompileMode:
    if options.upgrade:
        return CompileMode("full")
    if options.upgrade_packages:
        return CompileMode("targeted", parse_targets(options.upgrade_packages))
    return CompileMode("minimal")
