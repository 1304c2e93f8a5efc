"""Process settings: the only module that reads the environment.

``Settings()`` is built once at start-up (by the CLI) and passed down; nothing reads
``os.environ`` at import time or deep inside the core.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import LockwardenError

if TYPE_CHECKING:
    from bot.github.client import AppCredentials


class SettingsError(LockwardenError):
    code = "settings"


class Settings(BaseSettings):
    """``LOCKWARDEN_*`` environment variables; ``docs/operations.md`` is generated from them."""

    model_config = SettingsConfigDict(env_prefix="LOCKWARDEN_", extra="ignore", frozen=True)

    compile_timeout_s: float = Field(
        default=900.0,
        gt=0,
        description="Time limit for one environment's compile (seconds); the compiler is "
        "killed after it.",
    )
    max_parallel_compiles: int = Field(
        default_factory=lambda: max(1, os.cpu_count() or 1),
        ge=1,
        description="Independent environments compiled at once. Default: the CPU count.",
    )
    cache_dir: Path | None = Field(
        default=None,
        description="Cache for pip-compile, pip and uv downloads. Default: each tool's own cache.",
    )
    advisory_service: Literal["pypi", "osv", "off"] = Field(
        default="pypi",
        description="Where published advisories of locked versions are looked up: PyPI's JSON "
        "API (`pypi`), OSV (`osv`), or nowhere (`off`: reports say they were not checked).",
    )
    advisory_url: str | None = Field(
        default=None,
        description="The advisory service's base URL, for a mirror or a proxy "
        "(`https://pypi.example.com`). Default: https://pypi.org or https://api.osv.dev.",
    )
    advisory_cache_dir: Path = Field(
        default_factory=lambda data: _default_cache_subdir(data.get("cache_dir"), "advisories"),
        description="HTTP cache of advisory lookups (revalidated with ETags). Default: "
        "`advisories` in LOCKWARDEN_CACHE_DIR, else ~/.cache/lockwarden/advisories.",
    )
    advisory_timeout_s: float = Field(
        default=15.0, gt=0, description="Time limit for one advisory lookup (seconds)."
    )
    advisory_max_parallel: int = Field(
        default=4, ge=1, le=32, description="Advisory lookups in flight at once."
    )
    uv_bin: str | None = Field(
        default=None, description="The uv executable. Default: the one installed with Lockwarden."
    )
    toolchain_dir: Path = Field(
        default_factory=lambda data: _default_cache_subdir(data.get("cache_dir"), "toolchains"),
        description="Where the pip-tools virtualenvs for locks of other Pythons (one per Python "
        "version) and the Pythons uv installs are kept. Default: `toolchains` in "
        "LOCKWARDEN_CACHE_DIR, else ~/.cache/lockwarden/toolchains.",
    )
    pyenv_root: Path | None = Field(
        default_factory=lambda: Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv"),
        description="pyenv's root, where Pythons for locks of other versions are looked for "
        "(`versions/X.Y.Z`). Default: $PYENV_ROOT, else ~/.pyenv.",
    )
    python_install: Literal["auto", "never"] = Field(
        default="auto",
        description="When no Python of the version a lock was written for is found: auto "
        "installs it with `uv python install`, never reports it missing.",
    )
    python_install_timeout_s: float = Field(
        default=600.0, gt=0, description="Time limit for installing one Python (seconds)."
    )
    piptools_requirements: Path | None = Field(
        default=None,
        description="The hash-locked pip-tools installed in each Python's toolchain. Default: "
        "deploy/requirements-piptools.txt beside the installed code.",
    )
    poetry_bin: str | None = Field(
        default=None,
        description="The Poetry executable (with poetry-plugin-export) for Poetry environments. "
        "Default: poetry on PATH.",
    )
    conda_channel_alias: str = Field(
        default="https://conda.anaconda.org",
        description="Where conda channel names (conda-forge) resolve, for conda environments.",
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
    sandbox: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Run repository content (compilers, build backends, setup.py, hadolint) in "
        "the bubblewrap sandbox. auto: `serve` and `worker` refuse to start without it, the "
        "CLI falls back and says so; on: required everywhere; off: never (a warning at every "
        "job and on /healthz).",
    )
    allowed_private_hosts: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(),
        description="Comma-separated hosts, addresses or CIDR networks in loopback, link-local "
        "or private ranges that compiles and builds may reach (an internal package index). "
        "Everything else not public is refused, whatever a repository's specs or config say.",
    )
    github_api_url: str = Field(
        default="https://api.github.com",
        description="GitHub's REST API: https://api.github.com, or https://<host>/api/v3 for "
        "GitHub Enterprise Server (git then goes to https://<host>).",
    )
    app_id: int | None = Field(
        default=None, gt=0, description="The GitHub App's id. Required by `lockwarden serve`."
    )
    private_key: SecretStr | None = Field(
        default=None,
        description="The App's private key, PEM text (`\\n` escapes allowed). `lockwarden serve` "
        "needs it or LOCKWARDEN_PRIVATE_KEY_PATH.",
    )
    private_key_path: Path | None = Field(
        default=None, description="Or a file holding the App's private key (PEM)."
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="The GitHub App's webhook secret: every delivery's X-Hub-Signature-256 is "
        "checked against it. Required by `lockwarden serve`.",
    )
    webhook_secret_previous: SecretStr | None = Field(
        default=None,
        description="The secret being rotated out: deliveries signed with it are still accepted. "
        "Set it while changing the secret on GitHub, remove it once the new one is in place.",
    )
    webhook_max_body_bytes: int = Field(
        default=25 * 1024 * 1024,
        gt=0,
        description="Largest webhook body accepted (bytes); larger ones get 413 unread. "
        "Default: 25 MiB, GitHub's own cap on payloads.",
    )
    app_slug: str | None = Field(
        default=None,
        description="The GitHub App's slug: answers `@<slug> ...` comment commands and "
        "recognises the app's own pushes (by `<slug>[bot]`).",
    )
    delivery_cache_size: int = Field(
        default=10_000,
        ge=0,
        description="Delivery ids remembered in memory to drop GitHub redeliveries early "
        "(0: off). The job queue still refuses a delivery twice.",
    )
    redeliver_window_s: int = Field(
        default=3600,
        ge=0,
        description="Webhook deliveries that failed (no 2xx from the receiver) within this "
        "many seconds are redelivered once; Lockwarden looks every 5 minutes (0: off).",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL for the durable job queue; without it `serve` keeps jobs "
        "in memory.",
    )
    schedule_spread_s: int = Field(
        default=3600,
        ge=0,
        le=7 * 24 * 3600,
        description="Scheduled refreshes of different repositories due at the same time are "
        "spread over this many seconds (each repository has a fixed offset).",
    )
    schedule_per_minute: int = Field(
        default=10,
        gt=0,
        description="Scheduled refreshes started per installation per minute at most (GitHub "
        "limits content creation to about 80 requests a minute).",
    )
    schedule_per_hour: int = Field(
        default=80,
        gt=0,
        description="Scheduled refreshes started per installation per hour at most (GitHub: "
        "about 500 content-creating requests an hour).",
    )
    watch_cache_dir: Path = Field(
        default_factory=lambda data: _default_cache_subdir(data.get("cache_dir"), "watch"),
        description="The release watch's copies of project pages, revalidated with ETags so an "
        "unchanged page costs a 304. Default: `watch` in LOCKWARDEN_CACHE_DIR, else "
        "~/.cache/lockwarden/watch.",
    )
    upstream_lookups: bool = Field(
        default=True,
        description="After each compile, ask the package indexes which pinned versions are "
        "yanked and which newer releases the release-age quarantine held back (off: neither "
        "is reported).",
    )
    upstream_fresh_s: float = Field(
        default=600,
        ge=0,
        description="Seconds a project page or advisory answer stays good for a later "
        "`lockwarden run` without asking again (PyPI's own pages say ten minutes; some proxies "
        "send nothing to revalidate with). The App's jobs, audits and the release watch always "
        "ask. 0: always ask.",
    )
    watch_interval_min: int = Field(
        default=1,
        ge=0,
        le=60,
        description="Minutes between two passes of the upstream release watch, which asks "
        "each index about the packages repositories watch (a divisor of 60; 0: off). An idle "
        "pass costs one 304 per package; a longer interval lowers the load and adds up to "
        "that many minutes between an upload and its pull request.",
    )
    worker_heartbeat_s: float = Field(
        default=10.0, gt=0, description="How often a worker records that it is alive."
    )
    stalled_after_s: float = Field(
        default=60.0,
        gt=0,
        description="A running job whose worker has sent no heartbeat for this long is handed "
        "back to the queue and run again by another worker.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Least severe log level written by `serve`, `worker` and `migrate`.",
    )
    log_format: Literal["json", "console"] = Field(
        default="json",
        description="Log lines as JSON objects (for log collectors) or as aligned text "
        "(`console`, for people).",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which `lockwarden worker` serves Prometheus metrics (0: off); "
        "`--metrics-port` overrides it.",
    )

    @field_validator("allowed_private_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("watch_interval_min")
    @classmethod
    def _even_ticks(cls, value: int) -> int:
        # The pass is a cron "*/N": only a divisor of 60 gives evenly spaced passes.
        if value and 60 % value:
            raise ValueError("give a divisor of 60 (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        # LOCKWARDEN_LOG_LEVEL=debug is as clear as DEBUG.
        return value.upper() if isinstance(value, str) else value


def _default_cache_subdir(cache_dir: object, name: str) -> Path:
    if isinstance(cache_dir, Path):
        return cache_dir / name
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "lockwarden" / name


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


def app_credentials(settings: Settings) -> AppCredentials:
    """The App's id, key and API URL; a missing or malformed one stops start-up clearly."""
    from bot.github.client import AppCredentials

    if settings.app_id is None:
        raise SettingsError("LOCKWARDEN_APP_ID is not set: give the GitHub App's id")
    if settings.private_key is not None:
        pem = settings.private_key.get_secret_value().replace("\\n", "\n")
    elif settings.private_key_path is not None:
        try:
            pem = settings.private_key_path.read_text("utf-8")
        except OSError as exc:
            raise SettingsError(
                f"LOCKWARDEN_PRIVATE_KEY_PATH: cannot read {settings.private_key_path}: "
                f"{exc.strerror}"
            ) from exc
    else:
        raise SettingsError(
            "no App private key: set LOCKWARDEN_PRIVATE_KEY (PEM text) or "
            "LOCKWARDEN_PRIVATE_KEY_PATH"
        )
    _check_pem(pem)
    if not settings.github_api_url.startswith(("https://", "http://")):
        raise SettingsError(
            f"LOCKWARDEN_GITHUB_API_URL: {settings.github_api_url!r} is not an http(s) URL"
        )
    return AppCredentials(settings.app_id, pem, settings.github_api_url)


def _check_pem(pem: str) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise SettingsError(
            "the App private key is not a valid unencrypted PEM private key "
            "(LOCKWARDEN_PRIVATE_KEY / LOCKWARDEN_PRIVATE_KEY_PATH)"
        ) from exc
