"""Configure: a Workspace becomes a RepoConfig, from ``.github/lockwarden.yml`` or discovery."""

from __future__ import annotations

from bot.config import CONFIG_PATH, LoadedConfig, load_config, unlocked_note
from bot.errors import ConfigError
from bot.pipeline.checkout import Workspace


def configure(workspace: Workspace, selected: tuple[str, ...] = ()) -> LoadedConfig:
    loaded = load_config(workspace.root)
    discovered = loaded.source == "discovery"
    where = str(workspace.root) if discovered else loaded.source
    if not loaded.config.environments:
        raise ConfigError(where, _nothing_found(loaded))
    known = [env.name for env in loaded.config.environments]
    for name in selected:
        if name in known:
            continue
        if not discovered:
            loaded.config.environment(name)  # raises ConfigError naming the known environments
        raise ConfigError(
            where,
            f"unknown environment {name!r}: there is no {CONFIG_PATH}, and discovery found "
            f"{', '.join(known)}; pass one of those to --env, or list the environment in "
            f"{CONFIG_PATH} (see 'lockwarden schema')",
        )
    return loaded


def _nothing_found(loaded: LoadedConfig) -> str:
    """Why a repository has nothing to refresh, and what to do about it."""
    if loaded.source != "discovery":
        return f"no environments in {loaded.source}; list them under 'environments'"
    if not loaded.unlocked:
        return (
            "no environments found; add requirements/<env>.in files with their locks, or list "
            f"the environments under 'environments' in {CONFIG_PATH}"
        )
    specs = "; ".join(unlocked_note(env) for env in loaded.unlocked)
    first = loaded.unlocked[0]
    example = first.format.first_lock_hint(first)
    return (
        f"no environment to refresh: discovery proposes only specs that have a lock, and these "
        f"have none ({specs}). Create the locks (e.g. '{example}'), "
        f"or list the environments under 'environments' in {CONFIG_PATH} and Lockwarden "
        "writes their first locks (see 'lockwarden schema')"
    )
