"""Build: each environment's image, from the base lock (before) and the new lock (after).

Reproducible by construction (fixed ``--timestamp`` and ``SOURCE_DATE_EPOCH``, declared in
every stage: see ``bot.images.reproducible``), so equal inputs give equal digests; optionally
proven by a rebuild without cache, which names the files that differ when it is not. "Before" images
come from the image cache when the same inputs were built earlier. A failing build is a
value for that environment; the others still build.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.images import Builder, BuildSpec, Finding, ImageInfo, Severity
from bot.images.digest import ImageCache, input_key
from bot.images.dockerfile.checks import check_dockerfile
from bot.images.reproducible import layer_file_differences
from bot.images.retention import RunImages
from bot.paths import PathEscapeError
from bot.pipeline.compile import check_environment_paths
from bot.progress import Progress, ProgressEvent, no_progress
from bot.results import ImageResult, LockResult
from bot.sandbox import Sandbox

_SEVERITY_RANK: dict[Severity, int] = {"style": 0, "info": 1, "warning": 2, "error": 3}


def lint_environments(
    root: Path, config: RepoConfig, locks: dict[str, LockResult], sandbox: Sandbox | None = None
) -> dict[str, tuple[Finding, ...]]:
    """Dockerfile findings per environment (of the tree as it will be committed)."""
    out: dict[str, tuple[Finding, ...]] = {}
    checks = config.dockerfile_checks
    for env in config.environments:
        if (
            env.dockerfile is None
            or _path_escape(env, root)
            or not (root / env.dockerfile).is_file()
        ):
            continue
        installed = env.installed_lock
        has_hashes = "--hash=" in _installed_text(root, env, locks.get(env.name))
        out[env.name] = check_dockerfile(
            root / env.dockerfile,
            display_path=env.dockerfile,
            lock_path=installed,
            lock_has_hashes=has_hashes,
            severities=checks.severity,
            ignore=checks.ignore,
            sandbox=sandbox,
        )
    return out


def _same_file(first: Path, second: Path, relative: str) -> bool:
    return (first / relative).read_bytes() == (second / relative).read_bytes()


def _installed_text(root: Path, env: EnvironmentConfig, lock: LockResult | None) -> str:
    """The text of the file the image installs (the lock, or a Poetry export) as it will be
    committed: this run's result where there is one, else the tree's file."""
    installed = env.installed_lock
    if installed is None:
        return ""
    if installed == env.lock_path:
        return (lock.new_text or lock.old_text or "") if lock is not None else ""
    output = next((o for o in lock.outputs if o.path == installed), None) if lock else None
    if output is not None:
        return output.new_text or output.old_text or ""
    path = root / installed
    return path.read_text("utf-8", errors="replace") if path.is_file() else ""


def build_images(
    before_root: Path,
    after_root: Path,
    repo: str,
    config: RepoConfig,
    locks: dict[str, LockResult],
    builder: Builder | None,
    cache: ImageCache,
    *,
    verify_reproducible: bool,
    timeout_s: float,
    sandbox: Sandbox | None = None,
    progress: Progress = no_progress,
    images: RunImages | None = None,
) -> tuple[ImageResult, ...]:
    """Each selected environment's images; its building and built (or failed, or skipped)
    go to ``progress``. ``images`` learns which image of each environment to keep and which
    to remove when the run ends (``bot.images.retention``); without it they all stay."""
    kept = images if images is not None else RunImages(builder)
    findings = lint_environments(after_root, config, locks, sandbox)
    results = []
    for env in config.environments:
        lock = locks.get(env.name)
        if lock is None:
            continue  # not selected for this run
        started = time.perf_counter()
        progress(ProgressEvent(env.name, "build", "running"))
        env_findings = findings.get(env.name, ())
        base = ImageResult(
            name=env.name,
            status="skipped",
            dockerfile=env.dockerfile,
            findings=env_findings,
            lint_failed=_lint_fails(env_findings, config.dockerfile_checks.fail_on),
        )
        result = _build_one(
            base,
            env,
            lock,
            before_root,
            after_root,
            repo,
            config,
            builder,
            cache,
            kept,
            verify_reproducible=verify_reproducible,
            timeout_s=timeout_s,
        )
        results.append(replace(result, build_s=time.perf_counter() - started))
        progress(_built_event(results[-1]))
    return tuple(results)


def _built_event(image: ImageResult) -> ProgressEvent:
    if image.status == "built" and image.lint_failed:
        return ProgressEvent(image.name, "build", "failed", image.build_s, "Dockerfile checks")
    state = "done" if image.status == "built" else image.status
    return ProgressEvent(image.name, "build", state, image.build_s, image.reason or "")


def _build_one(
    base: ImageResult,
    env: EnvironmentConfig,
    lock: LockResult,
    before_root: Path,
    after_root: Path,
    repo: str,
    config: RepoConfig,
    builder: Builder | None,
    cache: ImageCache,
    images: RunImages,
    *,
    verify_reproducible: bool,
    timeout_s: float,
) -> ImageResult:
    not_built = _not_built(base, env, lock, before_root, after_root, builder)
    if not_built is not None:
        return not_built
    # Both checked by _not_built; the asserts tell the type checker.
    assert env.dockerfile is not None
    assert builder is not None
    recipe = _Recipe(
        env, config, builder, _image_name(env, repo), env.dockerfile, timeout_s, images
    )
    after_key = recipe.key(after_root)
    after_outcome = builder.build(recipe.spec(after_root, after_key))
    if not after_outcome.ok or after_outcome.image is None:
        return replace(
            base,
            status="failed",
            reason=f"{env.dockerfile}: {after_outcome.error or 'the build failed'}",
            log_tail=after_outcome.log_tail,
        )
    after = after_outcome.image
    images.keep(recipe.name, after, after_outcome.stages)
    cache.put(after_key, after)
    before, before_cached, note = _before_image(recipe, lock, before_root, after_root, after, cache)
    reproducible: bool | None = None
    differences: tuple[str, ...] = ()
    if verify_reproducible:
        reproducible, differences = _rebuild_check(recipe, after_root, after_key, after)
    if config.registry:
        try:
            before, after = _push_pair(recipe, before, after)
        except LockwardenError as exc:
            note = f"{note + '; ' if note else ''}{exc.user_message}"
    return replace(
        base,
        status="built",
        reason=note,
        before=before,
        after=after,
        before_cached=before_cached,
        reproducible=reproducible,
        differences=differences,
        log_tail=after_outcome.log_tail,
    )


def _not_built(
    base: ImageResult,
    env: EnvironmentConfig,
    lock: LockResult,
    before_root: Path,
    after_root: Path,
    builder: Builder | None,
) -> ImageResult | None:
    """The result for an environment whose image is not built (skipped or failed before
    building), or None when it can be built."""
    if env.dockerfile is None:
        return replace(base, reason="no Dockerfile configured or discovered")
    escape = _path_escape(env, after_root, before_root)
    if escape is not None:
        return replace(base, status="failed", reason=escape)
    if builder is None:
        return replace(base, reason="no image builder available (buildah or docker)")
    if not (after_root / env.dockerfile).is_file():
        return replace(base, status="failed", reason=f"{env.dockerfile}: Dockerfile not found")
    if lock.status == "failed":
        return replace(base, reason="the lock did not compile")
    return None


@dataclass(frozen=True)
class _Recipe:
    """How one environment's image is built from either tree (before or after)."""

    env: EnvironmentConfig
    config: RepoConfig
    builder: Builder
    name: str
    dockerfile: str
    timeout_s: float
    images: RunImages
    """Where the images this recipe builds are recorded: kept, or removed at the run's end."""

    def build_args(self) -> dict[str, str]:
        return {"SOURCE_DATE_EPOCH": str(self.config.source_date_epoch), **self.env.build_args}

    def spec(self, root: Path, key: str, *, no_cache: bool = False, suffix: str = "") -> BuildSpec:
        return BuildSpec(
            context=root / self.env.context,
            dockerfile=root / self.dockerfile,
            tag=f"{self.name}:{key[:16]}{suffix}",
            build_args=self.build_args(),
            timestamp=self.config.source_date_epoch,
            no_cache=no_cache,
            timeout_s=self.timeout_s,
        )

    def key(self, root: Path) -> str:
        return input_key(
            root / self.env.context,
            root / self.dockerfile,
            self.build_args(),
            self.builder.name,
            self.config.source_date_epoch,
        )


def _before_image(
    recipe: _Recipe,
    lock: LockResult,
    before_root: Path,
    after_root: Path,
    after: ImageInfo,
    cache: ImageCache,
) -> tuple[ImageInfo | None, bool, str | None]:
    """The image of the current lock: (image or None, whether it came from the cache, a note
    when it did not build)."""
    if not (before_root / recipe.dockerfile).is_file():
        return None, False, None
    if lock.status == "unchanged" and _same_file(before_root, after_root, recipe.dockerfile):
        # Neither the lock nor the Dockerfile's pins moved: the same image.
        return after, False, None
    before_key = recipe.key(before_root)
    cached = cache.get(before_key)
    if cached is not None and recipe.builder.inspect(cached.reference) is not None:
        return cached, True, None
    outcome = recipe.builder.build(recipe.spec(before_root, before_key))
    if outcome.ok and outcome.image is not None:
        # Compared once, then removed with the run's other images; its layers up to the
        # lock's are the kept "after" image's too.
        recipe.images.made_for_now(outcome.image, outcome.stages)
        cache.put(before_key, outcome.image)
        return outcome.image, False, None
    return None, False, f"the image of the current lock did not build: {outcome.error}"


def _rebuild_check(
    recipe: _Recipe, after_root: Path, after_key: str, after: ImageInfo
) -> tuple[bool, tuple[str, ...]]:
    """Rebuild the new image without cache: (whether it is identical, what differs: the
    layers, then the first files that differ in each)."""
    rebuild = recipe.builder.build(
        recipe.spec(after_root, after_key, no_cache=True, suffix="-rebuild")
    )
    if rebuild.ok and rebuild.image is not None:
        # Removed even when the comparison is cut short; its stages when the run ends.
        recipe.images.made_for_now(rebuild.image, rebuild.stages)
        differences = _layer_differences(after, rebuild.image)
        differences += layer_file_differences(recipe.builder, after, rebuild.image)
        recipe.images.discard(rebuild.image)
        return rebuild.image.image_id == after.image_id, differences
    return False, (f"the rebuild without cache failed: {rebuild.error}",)


def _push_pair(
    recipe: _Recipe, before: ImageInfo | None, after: ImageInfo
) -> tuple[ImageInfo | None, ImageInfo]:
    """Push both images to the configured registry; returns (before, after) with digests."""
    same = before is after  # an unchanged lock: one image, pushed once
    after = _push(recipe.builder, after, recipe.config, recipe.name)
    if same:
        before = after
    elif before is not None:
        before = _push(recipe.builder, before, recipe.config, recipe.name)
    return before, after


def _path_escape(env: EnvironmentConfig, *roots: Path) -> str | None:
    """Why the Dockerfile or build context of ``env`` may not be used: it leads outside a
    root (a symlink, ``..``); None when every path stays inside."""
    try:
        check_environment_paths(roots, env)
    except PathEscapeError as exc:
        return exc.user_message
    return None


def _push(builder: Builder, image: ImageInfo, config: RepoConfig, name: str) -> ImageInfo:
    repository = f"{config.registry}/{name.rsplit('/', 1)[-1]}"
    tag = image.reference.rsplit(":", 1)[-1]
    digest = builder.push(
        image.reference, f"{repository}:{tag}", tls_verify=config.registry_tls_verify
    )
    return replace(image, repo_digest=f"{repository}@{digest}")


def _layer_differences(first: ImageInfo, second: ImageInfo) -> tuple[str, ...]:
    if first.image_id == second.image_id:
        return ()
    out = []
    for index in range(max(len(first.layers), len(second.layers))):
        a = first.layers[index] if index < len(first.layers) else "(none)"
        b = second.layers[index] if index < len(second.layers) else "(none)"
        if a != b:
            out.append(f"layer {index + 1}: {a[:19]} vs {b[:19]}")
    if not out:
        out.append("same layers, different image configuration (labels, history or dates)")
    return tuple(out)


def _image_name(env: EnvironmentConfig, repo: str) -> str:
    raw = env.image or f"lockwarden/{repo}-{env.name}"
    name = re.sub(r"[^a-z0-9._/:-]+", "-", raw.lower()).strip("-./")
    first = name.split("/", 1)[0]
    # A local tag, unless the name already says which registry it belongs to.
    if "/" in name and ("." in first or ":" in first or first == "localhost"):
        return name
    return f"localhost/{name}"


def _lint_fails(findings: tuple[Finding, ...], fail_on: str) -> bool:
    if fail_on == "never":
        return False
    threshold = _SEVERITY_RANK["error" if fail_on == "error" else "warning"]
    return any(_SEVERITY_RANK[f.severity] >= threshold for f in findings)
