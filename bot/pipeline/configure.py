"""Configure: a Workspace becomes a RepoConfig, from ``.github/lockwarden.yml`` or discovery."""

from __future__ import annotations

from bot.config import LoadedConfig, load_config
from bot.errors import ConfigError
from bot.pipeline.checkout import Workspace


def configure(workspace: Workspace, selected: tuple[str, ...] = ()) -> LoadedConfig:
    loaded = load_config(workspace.root)
    if not loaded.config.environments:
        where = loaded.source if loaded.source != "discovery" else "the repository"
        raise ConfigError(
            loaded.source if loaded.source != "discovery" else str(workspace.root),
            f"no environments found in {where}; add requirements/<env>.in files or list "
            "them under 'environments' in .github/lockwarden.yml",
        )
    for name in selected:
        loaded.config.environment(name)  # raises ConfigError naming the known environments
    return loaded
