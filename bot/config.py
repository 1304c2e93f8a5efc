"""Repository configuration: ``.github/lockwarden.yml``, or environments discovered by convention.

Errors name the file, the line and the field, and are raised before anything is written.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot import bounded_yaml
from bot.errors import ConfigError, LockwardenError
from bot.locks.formats import FORMATS, LockFormat, format_for
from bot.locks.formats.base import FieldProblem
from bot.locks.formats.poetry.project import is_poetry_project
from bot.locks.options import MANAGED_OPTIONS
from bot.locks.spec import read_spec_tree
from bot.paths import PathEscapeError, is_file_inside, read_text_inside
from bot.upstream.quarantine import parse_age

CONFIG_PATH = ".github/lockwarden.yml"
CONFIG_PATHS = (CONFIG_PATH, ".github/lockwarden.yaml")

Backend = Literal["pip-tools", "uv", "poetry", "conda"]
"""The backends of ``bot.locks.formats.FORMATS`` (a test keeps the two the same)."""

MAX_CONFIG_BYTES = 64 * 1024
"""A config is a few kilobytes; anything this large is refused before it is parsed. Small
enough that validating the largest config allowed stays well under 0.1 s."""

_ENV_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_PYTHON_VERSION = r"^3\.\d{1,2}$"
_PACKAGE_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?"
WATCH_SECURITY = "security"


def _valid_age(value: str | None) -> str | None:
    if value is not None:
        parse_age(value)
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Schedule(_Model):
    """When scheduled refreshes run (cron syntax, evaluated in ``timezone``)."""

    cron: str = Field(
        default="0 5 * * 1",
        description="Five-field cron expression. Default: Mondays at 05:00.",
    )
    timezone: str = Field(default="UTC", description="IANA time zone name, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _five_fields(cls, value: str) -> str:
        if len(value.split()) != 5:
            raise ValueError("cron needs five fields: minute hour day-of-month month day-of-week")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value


class EnvironmentConfig(_Model):
    """One environment: a spec compiled into a lock, and the image built from that lock."""

    name: Annotated[
        str, Field(pattern=_ENV_NAME, description="Environment name: serve, train, dev.")
    ]
    spec: str = Field(description="The human-edited spec, e.g. requirements/serve.in.")
    lock: str | None = Field(
        default=None, description="The compiled lock. Default: the spec with a .txt suffix."
    )
    constraints: tuple[str, ...] = Field(
        default=(),
        description="Names of environments whose locks constrain this one (passed as -c).",
    )
    python: Annotated[str | None, Field(pattern=_PYTHON_VERSION)] = Field(
        default=None,
        description="Python version to resolve for (3.11). Default: the lock header's, "
        "else the interpreter Lockwarden runs on.",
    )
    backend: Backend = Field(
        default="pip-tools",
        description="pip-tools or uv (spec: a requirements .in file), poetry (spec: "
        "pyproject.toml, lock: poetry.lock beside it) or conda (spec: environment.yml, one "
        "explicit lock per platform).",
    )
    platforms: tuple[str, ...] = Field(
        default=(),
        description="Target platforms, e.g. [linux/amd64, linux/arm64]. Locks are checked for "
        "a wheel of every pinned package on each; conda and uv per-platform resolution write "
        "one lock per platform. Default: the platform Lockwarden runs on (conda: linux-64).",
    )
    resolution: Literal["universal", "per-platform"] = Field(
        default="universal",
        description="uv with several platforms: one lock valid everywhere (--universal), or "
        "one lock per platform (--python-platform); the first platform's is 'lock'.",
    )
    require_wheels: bool = Field(
        default=False,
        description="Fail the environment when a pinned package has no wheel for a target "
        "platform (off: reported as a warning).",
    )
    index_url: str | None = Field(
        default=None,
        description="Package index for this environment only (replaces the repository's).",
    )
    extra_index_urls: tuple[str, ...] = Field(
        default=(),
        description="Extra indexes for this environment only, added to the repository's "
        "(e.g. an accelerator index serving +cu121 builds to the train environment).",
    )
    export: str | None = Field(
        default=None,
        description="Poetry: the requirements file exported from poetry.lock for the image "
        "(poetry export). Default: the file the Dockerfile installs with -r, if any.",
    )
    export_groups: tuple[str, ...] = Field(
        default=("main",), description="Poetry: the dependency groups exported."
    )
    export_extras: tuple[str, ...] = Field(default=(), description="Poetry: extras exported.")
    export_hashes: bool = Field(
        default=True,
        description="Poetry: export with hashes, so the image installs with --require-hashes.",
    )
    poetry_migrate: bool = Field(
        default=False,
        description="Poetry: let Poetry 2 migrate a lock Poetry 1 wrote (lock-version 2.0 or "
        "older) when a refresh changes it. Off: such a lock is kept byte for byte when no "
        "package changes, and a change that needs the migration fails with this hint.",
    )
    compile_args: tuple[str, ...] = Field(
        default=(),
        description="Extra arguments for the compiler, e.g. ['--no-emit-index-url'].",
    )
    min_release_age: str | None = Field(
        default=None,
        description="Release-age quarantine for this environment (replaces the repository's; "
        "0d turns it off).",
    )
    dockerfile: str | None = Field(default=None, description="Dockerfile that builds the image.")
    context: str = Field(default=".", description="Build context, relative to the repository.")
    image: str | None = Field(default=None, description="Image name (registry/repo) to tag.")
    test_command: tuple[str, ...] | None = Field(
        default=None,
        description="Command run inside the built image, as a list or a shell-like string.",
    )
    build_args: dict[str, str] = Field(
        default_factory=dict, description="Build arguments passed to the image build."
    )
    test_timeout_s: float = Field(
        default=600, gt=0, le=7200, description="Time limit for the tests in the image."
    )
    test_memory: Annotated[str, Field(pattern=r"^[1-9][0-9]*[kmg]$")] = Field(
        default="2g", description="Memory limit of the test container (e.g. 512m, 2g)."
    )
    test_cpus: float = Field(default=1.0, gt=0, le=64, description="CPUs for the test container.")
    test_network: bool = Field(
        default=False,
        description="Give the test container a private network whose only way out is the "
        "egress proxy (public hosts, and private ones the operator allows); off: no network.",
    )

    _release_age = field_validator("min_release_age")(_valid_age)

    @field_validator("platforms")
    @classmethod
    def _distinct_platforms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # Which names are known is the format's to say (``check_fields``).
        if len(set(value)) != len(value):
            raise ValueError("a platform is listed twice")
        return value

    @field_validator("index_url", "extra_index_urls")
    @classmethod
    def _index_urls(cls, value: Any) -> Any:
        for url in (value,) if isinstance(value, str) else (value or ()):
            if not re.match(r"^(https?|file)://", url):
                raise ValueError(f"{url!r} is not an http(s):// or file:// URL")
        return value

    @model_validator(mode="after")
    def _format_fields(self) -> EnvironmentConfig:
        fmt = self.format
        fmt.check_fields(self)
        for other in FORMATS:
            for field_name in sorted(other.own_fields - fmt.own_fields):
                if getattr(self, field_name):
                    owners = " or ".join(other.backends)
                    raise FieldProblem(
                        (field_name,),
                        f"not supported with the {self.backend} backend: only for the "
                        f"{owners} backend",
                    )
        return self

    @field_validator("spec", "lock", "dockerfile", "context", "export")
    @classmethod
    def _relative_path(cls, value: str | None) -> str | None:
        if value is None:
            return None
        path = PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError(f"{value!r} must be a path inside the repository")
        return str(path)

    @field_validator("python", mode="before")
    @classmethod
    def _quoted_version(cls, value: Any) -> Any:
        if isinstance(value, int | float):
            raise ValueError(
                f'write the version in quotes (python: "3.10"): YAML reads {value} as a number'
            )
        return value

    @field_validator("test_command", mode="before")
    @classmethod
    def _split_command(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise ValueError(f"cannot split command: {exc}") from exc
        return value

    @field_validator("compile_args")
    @classmethod
    def _unmanaged_args(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for arg in value:
            flag = arg.split("=", 1)[0]
            if flag in MANAGED_OPTIONS:
                raise ValueError(
                    f"{flag} is managed by Lockwarden (the run mode, the output file, "
                    "'python', the cache); remove it from compile_args"
                )
            if "\n" in arg or "\x00" in arg:
                raise ValueError("arguments cannot contain newlines")
        return value

    @property
    def format(self) -> LockFormat:
        """The lock format this environment's backend writes."""
        return format_for(self.backend)

    @property
    def lock_path(self) -> str:
        """The main lock (for conda and per-platform uv: the first platform's)."""
        return self.format.lock_path(self)

    @property
    def installed_lock(self) -> str | None:
        """The requirements file the image installs with pip: the lock, a Poetry project's
        export; None for conda (the image installs the explicit lock with conda/micromamba)."""
        return self.format.installed_lock(self)

    @property
    def lock_platforms(self) -> tuple[str, ...]:
        """Platforms with a lock of their own, main lock first; empty: one lock for all."""
        return self.format.lock_platforms(self)

    def platform_lock(self, platform: str) -> str:
        """The lock path of one platform (conda: from the ``{platform}`` pattern)."""
        return self.format.platform_lock(self, platform)

    @property
    def outputs(self) -> tuple[tuple[str, Literal["platform-lock", "export"], str | None], ...]:
        """Files the compile writes besides the main lock: (path, kind, platform)."""
        out: list[tuple[str, Literal["platform-lock", "export"], str | None]] = [
            (self.platform_lock(p), "platform-lock", p) for p in self.lock_platforms[1:]
        ]
        if self.export is not None:
            out.append((self.export, "export", None))
        return tuple(out)

    @property
    def lock_paths(self) -> tuple[str, ...]:
        """Every file the compile owns: the main lock first, then ``outputs``."""
        return (self.lock_path, *(path for path, _, _ in self.outputs))


class DockerfileChecks(_Model):
    """Severities of the Dockerfile checks; findings never block unless ``fail_on`` says so."""

    severity: dict[str, Literal["error", "warning", "info", "style"]] = Field(
        default_factory=dict,
        description="Rule id (LW001, DL3008, ...) -> severity, overriding the default.",
    )
    ignore: tuple[str, ...] = Field(default=(), description="Rule ids to skip.")
    fail_on: Literal["error", "warning", "never"] = Field(
        default="never",
        description="Fail the environment when a finding has this severity or worse.",
    )


class RepoConfig(_Model):
    """The whole ``.github/lockwarden.yml``."""

    version: Literal[1] = Field(default=1, description="Config format version.")
    environments: tuple[EnvironmentConfig, ...] = Field(
        default=(), description="The environments, compiled in constraint order."
    )
    schedule: Schedule = Field(default_factory=Schedule)
    labels: tuple[str, ...] = Field(default=("dependencies",), description="PR labels.")
    reviewers: tuple[str, ...] = Field(default=(), description="PR reviewers (GitHub logins).")
    consistent: tuple[str, ...] = Field(
        default=(),
        description="Packages that must have one version across all environments.",
    )
    index_url: str | None = Field(
        default=None, description="Package index for every compile. Default: PyPI."
    )
    extra_index_urls: tuple[str, ...] = Field(default=(), description="Extra package indexes.")
    registry: str | None = Field(
        default=None,
        description="Registry (host[:port][/namespace]) to push the before and after images "
        "to, so the report can give their manifest digests.",
    )
    registry_tls_verify: bool = Field(
        default=True, description="Verify the registry's TLS certificate (off: plain HTTP)."
    )
    verify_reproducible: bool | None = Field(
        default=None,
        description="Rebuild each image without cache and compare digests. Default: on for "
        "scheduled refreshes, off otherwise.",
    )
    source_date_epoch: int = Field(
        default=0,
        ge=0,
        description="Fixed timestamp (SOURCE_DATE_EPOCH) for reproducible image builds.",
    )
    dockerfile_checks: DockerfileChecks = Field(default_factory=lambda: DockerfileChecks())
    pin_base_images: bool = Field(
        default=False,
        description="Pin every FROM image to its digest (image:tag@sha256:...) and refresh the "
        "digests on full refreshes, resolved from the registry.",
    )
    refresh_os_packages: bool = Field(
        default=True,
        description="On full refreshes, move pinned apt/apk packages (pkg=version) in the "
        "Dockerfiles to the version their base image offers now.",
    )
    insecure_registries: tuple[str, ...] = Field(
        default=(),
        description="Registries (host:port) reached over plain HTTP when resolving base-image "
        "digests; localhost and 127.0.0.0/8 always are.",
    )
    min_release_age: str | None = Field(
        default=None,
        description="Release-age quarantine: full refreshes pick only releases uploaded at "
        "least this long ago (90m, 12h, 3d, 2w); targeted and security refreshes are not held "
        "back. pip-tools and uv only. Default: none.",
    )
    watch: Literal["security"] | tuple[str, ...] = Field(
        default=(),
        description="Upstream release watch: a list of locked packages ([torch, numpy]) whose "
        "new releases start a targeted refresh between schedules, or the word security "
        "(only advisories start one). Default: no watch. A pin the watch sees yanked is "
        "refreshed off either way.",
    )

    _release_age = field_validator("min_release_age")(_valid_age)

    @field_validator("watch", mode="before")
    @classmethod
    def _watch_form(cls, value: Any) -> Any:
        # Either form alone: "security" inside a list would read as a package of that name.
        if isinstance(value, str):
            if value != WATCH_SECURITY:
                raise ValueError(f"{value!r}: write 'security', or list package names ([{value}])")
            return value
        if not isinstance(value, list | tuple):
            raise ValueError("give a list of package names, or the word security")
        for position, name in enumerate(value):
            if not isinstance(name, str) or not re.fullmatch(_PACKAGE_NAME, name):
                raise FieldProblem((position,), f"{name!r} is not a package name")
            if name == WATCH_SECURITY:
                raise FieldProblem(
                    (position,), "write 'watch: security' alone, or list only package names"
                )
        return tuple(value)

    @model_validator(mode="after")
    def _environments_agree(self) -> RepoConfig:
        names = [env.name for env in self.environments]
        known = set(names)
        first: dict[str, int] = {}
        for index, env in enumerate(self.environments):
            if first.setdefault(env.name, index) != index:
                raise FieldProblem(("environments", index, "name"), f"duplicate name {env.name!r}")
            for position, upstream in enumerate(env.constraints):
                if upstream not in known:
                    raise FieldProblem(
                        ("environments", index, "constraints", position),
                        f"unknown environment {upstream!r} (known: {', '.join(names)})",
                    )
                if upstream == env.name:
                    raise FieldProblem(
                        ("environments", index, "constraints", position),
                        "an environment cannot constrain itself",
                    )
        owner: dict[str, int] = {}
        for index, env in enumerate(self.environments):
            for path in env.lock_paths:
                if path in owner:
                    raise FieldProblem(
                        ("environments", index, "lock"), f"lock {path} is used twice"
                    )
                owner[path] = index
        return self

    def environment(self, name: str) -> EnvironmentConfig:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments) or "none"
        raise ConfigError(CONFIG_PATH, f"unknown environment {name!r} (known: {known})")


@dataclass(frozen=True)
class LoadedConfig:
    """The config and where it came from: a file, or discovery (with what was found)."""

    config: RepoConfig
    source: str
    """The config file path, or ``"discovery"``."""
    discovered: tuple[str, ...] = ()
    """Human-readable lines describing what discovery found."""
    unlocked: tuple[EnvironmentConfig, ...] = ()
    """Discovery: specs found without their lock. Not refreshed (a spec alone may be a
    development file nobody locks); a config that lists them gets their first locks."""

    def proposal(self) -> RepoConfig:
        """The config to propose for this repository: what discovery found, with the
        unlocked specs too (a person reviews the proposal before anything is locked)."""
        if not self.unlocked:
            return self.config
        envs = (*self.config.environments, *self.unlocked)
        return self.config.model_copy(update={"environments": envs})


def json_schema() -> dict[str, Any]:
    """The JSON Schema of ``.github/lockwarden.yml`` (printed by ``lockwarden schema``)."""
    schema = RepoConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Lockwarden repository configuration (.github/lockwarden.yml)"
    return schema


def load_config(root: Path) -> LoadedConfig:
    """Read the repository config, or discover environments when there is none."""
    for relative in CONFIG_PATHS:
        # Escapes (a symlink out of the repository) raise; a missing file means discovery.
        if is_file_inside(root, relative, source=relative):
            text = read_text_inside(root, relative, source=relative, max_bytes=MAX_CONFIG_BYTES)
            config = with_inferred_settings(root, parse_config(text, relative))
            return LoadedConfig(config=config, source=relative)
    discovered = discover(root)
    return replace(discovered, config=with_inferred_settings(root, discovered.config))


def with_inferred_settings(root: Path, config: RepoConfig) -> RepoConfig:
    """Fill in what each format reads from the repository where the config is silent: the
    tool a requirements lock's header names, the export a Poetry Dockerfile installs."""
    envs = []
    for env in config.environments:
        taken = frozenset(p for e in config.environments if e is not env for p in e.lock_paths)
        update = env.format.inferred_settings(root, env, taken | frozenset(env.lock_paths))
        envs.append(env.model_copy(update=update) if update else env)
    return config.model_copy(update={"environments": tuple(envs)})


def parse_config(text: str, path: str) -> RepoConfig:
    """Parse and validate config text; every error names ``path``, a line and a field."""
    node = _compose(text, path)
    if node is None:
        raise ConfigError(path, "the file is empty; it needs at least 'environments'", line=1)
    lines: dict[tuple[str | int, ...], int] = {}
    data = _to_python(node, (), lines, path)
    if not isinstance(data, dict):
        raise ConfigError(path, "the top level must be a mapping", line=node.start_mark.line + 1)
    try:
        return RepoConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first["loc"])
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, FieldProblem):
            loc, message = (*loc, *cause.loc), str(cause)
        else:
            message = _pydantic_message(first)
        raise ConfigError(
            path, message, line=_line_for(loc, lines), field=_dotted(loc) or None
        ) from exc


def _compose(text: str, path: str) -> yaml.Node | None:
    """The YAML node tree of ``text``, within ``MAX_CONFIG_BYTES`` and ``bounded_yaml``'s
    limits (no anchors or aliases, bounded nesting)."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigError(
            path,
            f"the file is {size:,} bytes, over the {MAX_CONFIG_BYTES:,} bytes allowed; "
            "keep only Lockwarden's settings in it",
        )
    return bounded_yaml.compose_file(text, path)


def _pydantic_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required field is missing"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _line_for(loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _to_python(
    node: yaml.Node, loc: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int], path: str
) -> Any:
    """Construct plain data from a YAML node, recording the line of every key and item."""
    lines.setdefault(loc, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = yaml.constructor.SafeConstructor().construct_object(key_node)
            if not isinstance(key, str):
                raise ConfigError(
                    path, f"keys must be strings, got {key!r}", line=key_node.start_mark.line + 1
                )
            if key in out:
                raise ConfigError(
                    path,
                    "duplicate key",
                    line=key_node.start_mark.line + 1,
                    field=_dotted((*loc, key)),
                )
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _to_python(value_node, (*loc, key), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), lines, path) for i, item in enumerate(node.value)]
    return yaml.constructor.SafeConstructor().construct_object(node)


# --- discovery --------------------------------------------------------------------------------

_SPEC_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("requirements/*.in", re.compile(r"^requirements/(?P<env>[^/]+)\.in$")),
    ("requirements-*.in", re.compile(r"^requirements-(?P<env>[^/]+)\.in$")),
    ("requirements.in", re.compile(r"^(?P<env>requirements)\.in$")),
    ("*.in", re.compile(r"^(?P<env>[^/]+)\.in$")),
)
_DOCKERFILE_PATTERNS = ("Dockerfile.{env}", "{env}.Dockerfile", "docker/{env}.Dockerfile")


def discover(root: Path) -> LoadedConfig:
    """Find environments by convention: ``requirements/<env>.in`` and friends, Poetry projects
    and ``environment.yml``. Only a spec whose lock exists is proposed: the lock shows someone
    compiles it; the others are listed in ``unlocked``.

    Constraint edges come from ``-c`` lines in the specs (followed through ``-r``) that
    point at another environment's lock.
    """
    found = _requirements_specs(root)
    lock_to_env = {lock: name for name, (_, lock) in found.items()}
    locked = {name for name, (_, lock) in found.items() if (root / lock).is_file()}
    environments: list[EnvironmentConfig] = []
    unlocked: list[EnvironmentConfig] = []
    notes = []
    for name, (spec, lock) in found.items():
        upstream = sorted(
            lock_to_env[c]
            for c in read_spec_tree(root, spec).constraint_files
            if c in lock_to_env and lock_to_env[c] != name
        )
        env = EnvironmentConfig(
            name=name,
            spec=spec,
            lock=lock,
            constraints=tuple(upstream),
            dockerfile=_project_dockerfile(root, PurePosixPath("."), name, plain=False),
        )
        if name not in locked:
            unlocked.append(env)
            continue
        # An edge to a spec that is not refreshed would name an unknown environment.
        env = env.model_copy(update={"constraints": tuple(u for u in upstream if u in locked)})
        environments.append(env)
        notes.append(_discovered_note(env, f"{spec} -> {lock}"))
    taken = set(found)
    for env in (*_discover_poetry(root, taken), *_discover_conda(root, taken)):
        taken.add(env.name)
        if not any((root / path).is_file() for path in env.lock_paths):
            unlocked.append(env)
            continue
        environments.append(env)
        outputs = f"{env.spec} -> {', '.join(env.lock_paths)} ({env.backend})"
        notes.append(_discovered_note(env, outputs, new=not (root / env.lock_path).is_file()))
    return LoadedConfig(
        config=RepoConfig(environments=tuple(environments)),
        source="discovery",
        discovered=tuple(notes),
        unlocked=tuple(unlocked),
    )


def _requirements_specs(root: Path) -> dict[str, tuple[str, str]]:
    """Environment name -> (spec, lock) of the requirements specs found by convention."""
    candidates: list[str] = sorted(
        str(p.relative_to(root).as_posix())
        for pattern in ("requirements/*.in", "requirements-*.in", "*.in")
        for p in root.glob(pattern)
        if p.is_file() and p.name != "MANIFEST.in"
    )
    found: dict[str, tuple[str, str]] = {}
    for relative in candidates:
        for label, regex in _SPEC_PATTERNS:
            match = regex.match(relative)
            if match:
                if label == "*.in" and not (root / relative).with_suffix(".txt").is_file():
                    break  # a loose top-level .in is no spec at all without its lock
                name = match.group("env")
                name = "main" if name == "requirements" else name
                if name not in found and re.match(_ENV_NAME, name):
                    found[name] = (relative, str(PurePosixPath(relative).with_suffix(".txt")))
                break
    return found


def _discovered_note(env: EnvironmentConfig, files: str, *, new: bool = False) -> str:
    """One line of what discovery found: files, constraints, image."""
    parts = [f"{env.name}: {files}{' (new lock)' if new else ''}"]
    if env.constraints:
        parts.append(f"constrained by {', '.join(env.constraints)}")
    if env.dockerfile:
        parts.append(f"image from {env.dockerfile}")
    return "; ".join(parts)


def unlocked_note(env: EnvironmentConfig) -> str:
    """One line naming a spec discovery found without its lock."""
    return f"{env.spec}: no {', '.join(env.lock_paths)}"


def _free_name(wanted: str, taken: set[str], fallback: str) -> str:
    for name in (wanted, fallback, *(f"{fallback}-{i}" for i in range(2, 100))):
        if re.match(_ENV_NAME, name) and name not in taken:
            return name
    raise ConfigError("discovery", f"no free environment name for {wanted!r}")


def _project_dockerfile(
    root: Path, directory: PurePosixPath, name: str, *, plain: bool = True
) -> str | None:
    """The environment's Dockerfile by the discovery patterns; with ``plain``, a project's own
    ``Dockerfile`` too (one project directory, one image)."""
    for pattern in (*_DOCKERFILE_PATTERNS, *(("Dockerfile",) if plain else ())):
        candidate = directory / pattern.format(env=name)
        if (root / candidate).is_file():
            return str(candidate)
    return None


def _discover_poetry(root: Path, taken: set[str]) -> list[EnvironmentConfig]:
    """A Poetry project (``pyproject.toml`` with ``poetry.lock`` beside it) at the top level
    or one directory down."""
    out: list[EnvironmentConfig] = []
    for pyproject in sorted((root.glob("pyproject.toml")), key=str) + sorted(
        root.glob("*/pyproject.toml"), key=str
    ):
        spec = pyproject.relative_to(root).as_posix()
        if not is_poetry_project(root, spec):
            continue
        directory = PurePosixPath(spec).parent
        wanted = "main" if str(directory) == "." else directory.name
        name = _free_name(wanted, taken | {e.name for e in out}, "poetry")
        env = EnvironmentConfig(
            name=name,
            spec=spec,
            backend="poetry",
            dockerfile=_project_dockerfile(root, directory, name),
        )
        update = env.format.inferred_settings(root, env, frozenset(env.lock_paths))
        out.append(env.model_copy(update=update) if update else env)
    return out


def _discover_conda(root: Path, taken: set[str]) -> list[EnvironmentConfig]:
    """``environment.yml`` (or ``.yaml``) at the top level, named by its ``name:``."""
    out: list[EnvironmentConfig] = []
    for candidate in ("environment.yml", "environment.yaml"):
        if not (root / candidate).is_file():
            continue
        try:
            text = read_text_inside(root, candidate, source=candidate, max_bytes=MAX_CONFIG_BYTES)
            data = bounded_yaml.safe_load(text)
        except PathEscapeError:
            raise
        except (yaml.YAMLError, LockwardenError):
            data = None  # the compile stage reports the file's error with its line
        wanted = str(data.get("name", "conda")) if isinstance(data, dict) else "conda"
        name = _free_name(wanted, taken, "conda")
        platforms = data.get("platforms") if isinstance(data, dict) else None
        dockerfile = _project_dockerfile(root, PurePosixPath("."), name, plain=False)
        try:
            env = EnvironmentConfig(
                name=name,
                spec=candidate,
                backend="conda",
                platforms=tuple(platforms) if isinstance(platforms, list) else (),
                dockerfile=dockerfile,
            )
        except ValidationError:  # unknown platforms: the solver reports them
            env = EnvironmentConfig(
                name=name, spec=candidate, backend="conda", dockerfile=dockerfile
            )
        out.append(env)
        break
    return out
