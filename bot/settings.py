"""Process settings: the only module that reads the environment.

``Settings()`` is built once at start-up (by the CLI) and passed down; nothing reads
``os.environ`` at import time or deep inside the core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import LockwardenError


class SettingsError(LockwardenError):
    code = "settings"


class Settings(BaseSettings):
    """``LOCKWARDEN_*`` environment variables (documented in the README)."""

    model_config = SettingsConfigDict(env_prefix="LOCKWARDEN_", extra="ignore", frozen=True)

    compile_timeout_s: float = Field(
        default=900.0, gt=0, description="Time limit for one environment's compile (seconds)."
    )
    max_parallel_compiles: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="Independent environments compiled at once. Default: the CPU count.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Cache for pip-compile and uv downloads. Default: each tool's own cache.",
    )
    uv_bin: str | None = Field(
        default=None, description="The uv executable. Default: the one installed with Lockwarden."
    )
    builder: Literal["auto", "buildah", "docker", "none"] = Field(
        default="auto",
        description="Image builder: auto (buildah, else docker when a daemon answers), "
        "buildah, docker, or none (no images).",
    )
    build_timeout_s: float = Field(default=1800.0, gt=0, description="Time limit for one build.")
    build_pull: Literal["missing", "always", "never"] = Field(
        default="missing", description="When a build pulls its base images."
    )
    buildah_runtime: str | None = Field(
        default=None,
        description="OCI runtime for buildah (runc, crun). Default: runc on cgroup v1 hosts.",
    )
    isolate_tool_config: bool = Field(
        default=True,
        description="Ignore pip.conf, uv.toml and PIP_*/UV_* index variables of the host, so "
        "a lock depends only on the repository (its specs and .github/lockwarden.yml).",
    )


def load_settings() -> Settings:
    """Read the settings once; a malformed value stops start-up with the variable's name."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"LOCKWARDEN_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
