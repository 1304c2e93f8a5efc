"""Image pins: the base-image digests and OS package versions in each environment's
Dockerfile, refreshed on purpose before the images are built.

Besides the Python lock, two inputs of an image drift: the base image behind a tag, and the
OS packages the mirror serves. This sub-stage of the build makes both explicit edits that
show up in the pull request:

* with ``pin_base_images``, every ``FROM`` of a registry image gets the digest its tag points
  at (always, for an unpinned one; when ``upgrade``, a pinned one is resolved again and a
  new digest is a change);
* with ``refresh_os_packages`` and ``upgrade``, every exact apt/apk pin is compared with the
  candidate the package manager offers in the stage's base image (the newly pinned base,
  when its digest just moved) and moved to it. Unpinned packages are reported, never
  pinned behind anyone's back.

Failures are values in each Dockerfile's result (``errors``). All updates of a Dockerfile
are computed first and written once, atomically, so a Dockerfile is never half-updated.
Digests and candidates are looked up once per image for all Dockerfiles.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import LockwardenError
from bot.images import Builder
from bot.images.base_images import RegistryError, resolve_digest
from bot.images.dockerfile.from_lines import (
    BaseImageRef,
    find_base_images,
    find_unpinnable_images,
    rewrite_base_images,
)
from bot.images.os_packages import (
    CandidateLookup,
    Manager,
    OsPackage,
    find_os_packages,
    is_downgrade,
    lookup_candidates,
    rewrite_os_pins,
)
from bot.paths import write_text_inside
from bot.results import DockerfilePins, PinChange, UnpinnedPackage
from bot.sandbox.egress import EgressPolicy

REGISTRY_TIMEOUT_S = 30.0
NO_BUILDER = "no image builder: OS package pins were not refreshed"


@dataclass
class _Plan:
    """One Dockerfile between the look-ups and the write."""

    dockerfile: str
    environments: tuple[str, ...]
    text: str | None
    errors: list[str] = field(default_factory=list)
    changes: list[PinChange] = field(default_factory=list)
    base_updates: dict[int, str] = field(default_factory=dict)
    unpinned: tuple[UnpinnedPackage, ...] = ()
    unpinnable: tuple[str, ...] = ()
    to_refresh: list[tuple[OsPackage, str]] = field(default_factory=list)
    """Exact pins, each with the image its candidate is looked up in."""


def refresh_image_pins(
    root: Path,
    dockerfiles: Mapping[str, tuple[str, ...]],
    builder: Builder | None,
    *,
    upgrade: bool,
    pin_base_images: bool,
    refresh_os_packages: bool,
    insecure_registries: Sequence[str] = (),
    timeout_s: float = 600,
    policy: EgressPolicy,
) -> tuple[DockerfilePins, ...]:
    """Refresh the pins of each Dockerfile (repository-relative path -> the environments
    built from it) under ``root`` and write the changed ones; one result per Dockerfile, in
    path order. Every error starts with the Dockerfile's path (and line, where there is one).
    ``timeout_s`` bounds each package lookup in a container."""
    digests: dict[tuple[str, str, str], str | RegistryError] = {}

    def digest_of(ref: BaseImageRef) -> str | RegistryError:
        key = (ref.registry, ref.repository, ref.tag or "latest")
        if key not in digests:
            try:
                digests[key] = resolve_digest(
                    ref,
                    timeout_s=min(REGISTRY_TIMEOUT_S, timeout_s),
                    insecure_registries=insecure_registries,
                    policy=policy,
                )
            except RegistryError as exc:
                digests[key] = exc
        return digests[key]

    plans = [
        _plan(
            root,
            dockerfile,
            tuple(dockerfiles[dockerfile]),
            digest_of,
            upgrade=upgrade,
            pin_base_images=pin_base_images,
            refresh_os_packages=refresh_os_packages,
        )
        for dockerfile in sorted(dockerfiles)
    ]
    wanted: dict[tuple[Manager, str], set[str]] = {}
    for plan in plans:
        if plan.to_refresh and builder is None:
            plan.errors.append(f"{plan.dockerfile}: {NO_BUILDER}")
            plan.to_refresh.clear()
        for package, image in plan.to_refresh:
            wanted.setdefault((package.manager, image), set()).add(package.name)
    lookups: dict[tuple[Manager, str], CandidateLookup] = {}
    if builder is not None:
        for (manager, image), names in sorted(wanted.items()):
            lookups[(manager, image)] = lookup_candidates(
                builder, image, manager, sorted(names), timeout_s=timeout_s
            )
    return tuple(_finish(root, plan, lookups) for plan in plans)


def _plan(
    root: Path,
    dockerfile: str,
    environments: tuple[str, ...],
    digest_of: Callable[[BaseImageRef], str | RegistryError],
    *,
    upgrade: bool,
    pin_base_images: bool,
    refresh_os_packages: bool,
) -> _Plan:
    try:
        text = (root / dockerfile).read_bytes().decode("utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return _Plan(dockerfile, environments, None, [f"{dockerfile}: cannot read ({reason})"])
    except UnicodeDecodeError:
        return _Plan(dockerfile, environments, None, [f"{dockerfile}: not UTF-8 text"])
    plan = _Plan(dockerfile, environments, text)
    pinned_images: dict[str, str] = {}  # base image as written -> with its new digest
    if pin_base_images:
        plan.unpinnable = find_unpinnable_images(text)
        for ref in find_base_images(text, dockerfile):
            if ref.digest is not None and (not upgrade or ref.tag is None):
                continue  # kept as pinned; a digest without a tag follows nothing
            digest = digest_of(ref)
            if isinstance(digest, RegistryError):
                error = f"{dockerfile}:{ref.line}: {digest.user_message}"
                if not any(e.endswith(f": {digest.user_message}") for e in plan.errors):
                    plan.errors.append(error)
                continue
            if digest != ref.digest:
                plan.base_updates[ref.line] = digest
                pinned_images[ref.image] = ref.pinned(digest)
                plan.changes.append(
                    PinChange("base-image", dockerfile, ref.line, ref.name, ref.digest, digest)
                )
    if not refresh_os_packages:
        return plan
    packages = find_os_packages(text, dockerfile)
    plan.unpinned = tuple(
        UnpinnedPackage(p.file, p.line, p.manager, p.name) for p in packages if p.version is None
    )
    if not upgrade:
        return plan
    for package in packages:
        if not package.refreshable:
            continue
        image = package.image or ""
        where = f"{dockerfile}:{package.line}: {package.name} was not refreshed: its stage"
        if "$" in image:
            plan.errors.append(f"{where} starts from {image}, which is only known at build time")
            continue
        if not image or image.lower() == "scratch":
            plan.errors.append(
                f"{where} starts from {image or 'no image'}, which has no package manager to ask"
            )
            continue
        plan.to_refresh.append((package, pinned_images.get(image, image)))
    return plan


def _finish(
    root: Path, plan: _Plan, lookups: Mapping[tuple[Manager, str], CandidateLookup]
) -> DockerfilePins:
    if plan.text is None:
        errors = tuple(plan.errors)
        return DockerfilePins(plan.dockerfile, plan.environments, (), (), (), errors, "", "")
    os_updates: dict[tuple[str, str, int], str] = {}
    reported: set[tuple[Manager, str]] = set()
    for package, image in plan.to_refresh:
        lookup = lookups[(package.manager, image)]
        if lookup.error is not None:
            if (package.manager, image) not in reported:
                reported.add((package.manager, image))
                plan.errors.append(
                    f"{plan.dockerfile}: {package.manager} pins were not refreshed: {lookup.error}"
                )
            continue
        if package.name in lookup.missing:
            plan.errors.append(
                f"{plan.dockerfile}:{package.line}: {image} offers no {package.manager} package"
                f" {package.name}; is its package source set up in the base image?"
            )
            continue
        candidate = lookup.versions.get(package.name)
        if candidate is None or candidate == package.version:
            continue
        key = (package.manager, package.name, package.line)
        if key in os_updates:
            continue  # the same package twice on one line: one change
        os_updates[key] = candidate
        plan.changes.append(
            PinChange(
                "os-package",
                plan.dockerfile,
                package.line,
                package.name,
                package.version,
                candidate,
                manager=package.manager,
                image=image,
                downgrade=package.version is not None
                and is_downgrade(package.manager, package.version, candidate),
            )
        )
    changes = tuple(sorted(plan.changes, key=lambda c: (c.line, c.kind, c.name)))
    new_text = plan.text
    try:
        new_text = rewrite_os_pins(rewrite_base_images(plan.text, plan.base_updates), os_updates)
        if new_text != plan.text:
            write_text_inside(root, plan.dockerfile, new_text, source=plan.dockerfile)
    except LockwardenError as exc:
        plan.errors.append(f"{plan.dockerfile}: not updated: {exc.user_message}")
        new_text, changes = plan.text, ()
    return DockerfilePins(
        dockerfile=plan.dockerfile,
        environments=plan.environments,
        changes=changes,
        unpinned=plan.unpinned,
        unpinnable_images=plan.unpinnable,
        errors=tuple(plan.errors),
        old_text=plan.text,
        new_text=new_text,
    )


def restore_pins(current: str, old: str, path: str) -> str:
    """``current`` with the pins ``old`` had: each base image followed in both gets its old
    digest back, and each exactly pinned OS package pinned in both its old version. What
    people changed since (new stages, other packages, other instructions) stays as it is.

    This is how a rollback returns a Dockerfile's image inputs to a known-good set without
    undoing anyone's edits."""
    try:
        old_images = find_base_images(old, path)
        old_packages = find_os_packages(old, path)
        current_images = find_base_images(current, path)
        current_packages = find_os_packages(current, path)
    except LockwardenError:
        return current  # unreadable at either end: nothing is restored rather than guessed
    digests = {ref.canonical: ref.digest for ref in old_images if ref.digest is not None}
    image_updates = {
        ref.line: digests[ref.canonical]
        for ref in current_images
        if ref.canonical in digests and ref.digest != digests[ref.canonical]
    }
    versions = {
        (p.manager, p.name): p.version
        for p in reversed(old_packages)  # the first pin of a name wins
        if p.refreshable and p.version is not None
    }
    package_updates: dict[tuple[str, str, int], str] = {
        (p.manager, p.name, p.line): versions[(p.manager, p.name)]
        for p in current_packages
        if p.refreshable
        and (p.manager, p.name) in versions
        and p.version != versions[(p.manager, p.name)]
    }
    try:
        text = rewrite_base_images(current, image_updates) if image_updates else current
        return rewrite_os_pins(text, package_updates) if package_updates else text
    except LockwardenError:
        return current
