"""The ``lockwarden/security`` pull request: only the packages an advisory affects, each moved
to the lowest fixed version every spec allows, in every environment that locks it.

The job clones the default branch, audits its locks, chooses the targets (``plan_fixes``)
and runs the refresh pipeline in targeted mode (``pkg==1.1``), so the locks are compiled,
built and tested like any refresh, and nothing but the targets moves. It publishes on its
own branch with the ``security`` label, updates that pull request on the next run, and
closes it, saying why, once nothing is left to fix.

Two things ask for it: a refresh whose signals show an advisory with an allowed fix
(``security_wanted``), and the release watch (``enqueue_security``). One waits per
repository; a later request joins it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.version import InvalidVersion, Version

from bot.advisories.audit import Audit
from bot.advisories.blocked import SpecRequirement, environment_requirements
from bot.config import EnvironmentConfig, RepoConfig, load_config
from bot.github.client import Client
from bot.github.ensure import close_pull_request, delete_branch, find_open_pull_request
from bot.jobs.branches import BranchJobs, BranchUpdate, JobOutcome
from bot.jobs.payloads import SecurityPayload
from bot.jobs.queue import JobQueue, JobRequest
from bot.report import escape, messages
from bot.results import (
    Advisory,
    BlockedFix,
    EnvironmentAdvisories,
    RunResult,
    SignalsResult,
)
from bot.worker import RefreshOptions

SECURITY_BRANCH = "lockwarden/security"
SECURITY_LABEL = "security"
LockAudit = Callable[[Path, RepoConfig], Audit]
"""The advisories that affect a checked-out repository's locks, per environment."""


@dataclass(frozen=True)
class SecurityTarget:
    package: str
    version: str
    """The lowest fixed version every environment's spec allows."""
    locked: tuple[tuple[str, str], ...]
    """(environment, locked version), for each environment that locks an affected version."""
    advisories: tuple[Advisory, ...]


@dataclass(frozen=True)
class Unfixed:
    """An advisory the pull request cannot fix, and why (one line for people)."""

    advisory: Advisory
    environments: tuple[str, ...]
    reason: str
    blocked: BlockedFix | None = None


@dataclass(frozen=True)
class SecurityPlan:
    targets: tuple[SecurityTarget, ...] = ()
    unfixed: tuple[Unfixed, ...] = ()
    environments: tuple[str, ...] = ()
    """The environments that lock a target, in config order (the compile orders them)."""

    @property
    def upgrade_packages(self) -> tuple[str, ...]:
        return tuple(f"{t.package}=={t.version}" for t in self.targets)


@dataclass
class _Affected:
    """One package's advisories over the environments (being collected)."""

    advisories: dict[str, Advisory] = field(default_factory=dict)
    locked: dict[str, str] = field(default_factory=dict)
    """environment -> locked version."""


# -- choosing the targets --------------------------------------------------------------------


def current_advisories(env: EnvironmentAdvisories) -> tuple[Advisory, ...]:
    """The advisories that affect ``env``'s lock as it is (ignored ones are not among them)."""
    return (*env.left, *env.introduced)


def plan_fixes(root: Path, config: RepoConfig, audit: Audit) -> SecurityPlan:
    """Each affected package's target (the lowest fixed version all of its specs allow) and
    the advisories no allowed version fixes, with the spec line that rules the fixes out.
    Advisories an ignore rule sets aside are not in ``audit``'s lists, so they stay."""
    envs = {env.name: env for env in config.environments}
    affected: dict[str, _Affected] = {}
    for found in audit.environments:
        for advisory in found.advisories:
            entry = affected.setdefault(advisory.package, _Affected())
            entry.advisories.setdefault(advisory.id, advisory)
            entry.locked[found.environment] = advisory.version
    targets: list[SecurityTarget] = []
    unfixed: list[Unfixed] = []
    for package, entry in sorted(affected.items()):
        names = [name for name in entry.locked if name in envs]
        # A format that can only move to the newest allowed version cannot take a chosen fix.
        poetry = tuple(n for n in names if not envs[n].format.moves_to_chosen_versions)
        rest = [envs[n] for n in names if n not in poetry]
        advisories = tuple(entry.advisories.values())
        target, left = _choose(root, config, package, advisories, entry.locked, rest)
        if target is not None:
            targets.append(target)
        unfixed += left
        unfixed += [_poetry_unfixed(a, poetry, target) for a in advisories if poetry]
    chosen = {name for t in targets for name, _ in t.locked}
    order = tuple(env.name for env in config.environments if env.name in chosen)
    return SecurityPlan(tuple(targets), tuple(unfixed), order)


def _choose(
    root: Path,
    config: RepoConfig,
    package: str,
    advisories: tuple[Advisory, ...],
    locked: dict[str, str],
    envs: Sequence[EnvironmentConfig],
) -> tuple[SecurityTarget | None, list[Unfixed]]:
    """The target for one package over ``envs``, and the advisories it leaves."""
    if not envs:
        return None, []
    names = tuple(env.name for env in envs)
    lines = [line for env in envs for line in spec_lines(root, config, env, package)]
    floor = max(_version(locked[n]) or Version("0") for n in names)
    unfixed: list[Unfixed] = []
    fixable: list[tuple[Advisory, list[Version]]] = []
    for advisory in advisories:
        fixes = sorted(v for v in map(_version, advisory.fixed_versions) if v and v > floor)
        allowed = [v for v in fixes if _allowed(v, lines)]
        if allowed:
            fixable.append((advisory, allowed))
        else:
            unfixed.append(_unfixable(advisory, names, fixes, lines))
    version = _lowest_for_all(fixable, lines)
    if version is None:
        unfixed += [_unfixable(a, names, fixes, lines) for a, fixes in fixable]
        return None, unfixed
    target = SecurityTarget(
        package,
        str(version),
        tuple((n, locked[n]) for n in names),
        tuple(a for a, _ in fixable),
    )
    return target, unfixed


def _lowest_for_all(
    fixable: Sequence[tuple[Advisory, list[Version]]], lines: Sequence[SpecRequirement]
) -> Version | None:
    """The lowest allowed version at or above a fix of every advisory (None: none is)."""
    if not fixable:
        return None
    candidates = sorted({v for _, fixes in fixable for v in fixes})
    for candidate in candidates:
        if _allowed(candidate, lines) and all(fixes[0] <= candidate for _, fixes in fixable):
            return candidate
    return None


def _unfixable(
    advisory: Advisory,
    envs: tuple[str, ...],
    fixes: Sequence[Version],
    lines: Sequence[SpecRequirement],
) -> Unfixed:
    """Why no version fixes ``advisory``: none is published, or a spec line rules them out."""
    if not fixes:
        return Unfixed(advisory, envs, messages.SECURITY_NO_FIX)
    # The line that rules out every fix, else the one that rules out the lowest.
    blocking = next((ln for ln in lines if not any(_allowed(v, [ln]) for v in fixes)), None)
    blocking = blocking or next((ln for ln in lines if not _allowed(fixes[0], [ln])), None)
    if blocking is None:
        # Each fix is allowed, but no one version fixes every advisory of the package.
        return Unfixed(advisory, envs, messages.SECURITY_NO_COMMON_FIX)
    blocked = BlockedFix(advisory, blocking.source, blocking.written)
    reason = messages.SECURITY_BLOCKED.format(
        fixes=", ".join(map(str, fixes)),
        requirement=escape.code(blocking.written),
        spec=escape.code(blocking.source),
    )
    return Unfixed(advisory, envs, reason, blocked)


def _poetry_unfixed(
    advisory: Advisory, envs: tuple[str, ...], target: SecurityTarget | None
) -> Unfixed:
    fix = target.version if target is not None else (advisory.fixed_versions or ("VERSION",))[0]
    return Unfixed(
        advisory,
        envs,
        messages.SECURITY_POETRY.format(
            pin=escape.code(f"/lockwarden pin {advisory.package}=={fix}")
        ),
    )


def _allowed(version: Version, lines: Iterable[SpecRequirement]) -> bool:
    return all(line.specifier.contains(version, prereleases=True) for line in lines)


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def spec_lines(
    root: Path, config: RepoConfig, env: EnvironmentConfig, package: str
) -> tuple[SpecRequirement, ...]:
    """The requirements on ``package`` in ``env``'s spec tree (its includes and constraints
    files), except other environments' locks: those move with their own compile first."""
    return tuple(environment_requirements(root, config, env).get(package, ()))


# -- the job ---------------------------------------------------------------------------------


class SecurityJob:
    """Runs ``security`` jobs on the runner's clones, branches and clients."""

    def __init__(self, jobs: BranchJobs, audit: LockAudit) -> None:
        self._jobs = jobs
        self._audit = audit

    def run(self, job: JobRequest) -> JobOutcome:
        SecurityPayload.of(job)  # a malformed stored payload fails here, naming the field
        gh = self._jobs.installation_client(job)
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            repo = self._jobs.clone(job, Path(tmp))
            config = load_config(repo.path).config
            audit = self._audit(repo.path, config)
            if not audit.checked:
                # Nothing is known: the pull request stays as it is until a run that can look.
                note = "; ".join(audit.notes) or messages.SECURITY_UNCHECKED
                return JobOutcome("security", job.repo, "skipped", note=note)
            plan = plan_fixes(repo.path, config, audit)
            if not plan.targets:
                return self._nothing_to_fix(job, gh, plan)
            update = BranchUpdate(
                options=RefreshOptions(
                    upgrade_packages=plan.upgrade_packages, environments=plan.environments
                ),
                branch=SECURITY_BRANCH,
                carry=False,  # always from the default branch's locks: only the targets move
                title=security_title(plan),
                labels=(SECURITY_LABEL,),
                describe=lambda result: security_notes(plan, result),
            )
            outcome = self._jobs.update_branch(job, gh, repo, update)
        published = outcome.published
        if published is None:  # pragma: no cover - only commands stop before publishing
            return JobOutcome("security", job.repo, "skipped")
        return JobOutcome(
            "security", job.repo, published.action, published.pull_number, published.note
        )

    def _nothing_to_fix(self, job: JobRequest, gh: Client, plan: SecurityPlan) -> JobOutcome:
        """No target: an open security pull request is closed, saying why."""
        why = unfixed_section(plan.unfixed)
        reason = messages.SECURITY_NOTHING_TO_FIX + (f"\n\n{why}" if why else "")
        number = find_open_pull_request(gh, job.repo, SECURITY_BRANCH)
        if number is None:
            return JobOutcome("security", job.repo, "unchanged", note=reason)
        close_pull_request(gh, job.repo, number, messages.SECURITY_CLOSED.format(reason=reason))
        delete_branch(gh, job.repo, SECURITY_BRANCH)
        return JobOutcome("security", job.repo, "closed", number, note=reason)


# -- the pull request's text -----------------------------------------------------------------


def security_title(plan: SecurityPlan) -> str:
    moves = ", ".join(f"{t.package} {t.version}" for t in plan.targets)
    return messages.SECURITY_PR_TITLE.format(moves=moves)


def advisory_name(advisory: Advisory) -> str:
    """The advisory's id, linked when its link is a web address, and its aliases."""
    name = escape.code(advisory.id)
    if advisory.link.startswith("https://") and not any(c in advisory.link for c in " ()<>"):
        name = f"[{name}]({advisory.link})"
    if advisory.aliases:
        name += " (" + ", ".join(escape.code(a) for a in advisory.aliases) + ")"
    return name


def security_notes(plan: SecurityPlan, result: RunResult) -> str:
    """The advisories fixed (id, aliases, package old -> new, link), those not fixed, and
    the fixes taken although they are younger than the release-age quarantine (as the run's
    signals stage found them: a targeted refresh is not held back)."""
    moved = _moved(result)
    lines = [messages.SECURITY_SECTION, "", messages.SECURITY_INTRO, ""]
    still: list[Unfixed] = list(plan.unfixed)
    for target in plan.targets:
        wanted = Version(target.version)
        envs = [
            (env, old)
            for env, old in target.locked
            if _version(moved.get((env, target.package), "")) == wanted
        ]
        if not envs:
            still += [
                Unfixed(a, tuple(e for e, _ in target.locked), messages.SECURITY_NOT_MOVED)
                for a in target.advisories
            ]
            continue
        for advisory in target.advisories:
            lines.append(
                messages.SECURITY_FIXED.format(
                    advisory=advisory_name(advisory),
                    package=escape.code(target.package),
                    old=escape.code(advisory.version),
                    new=escape.code(target.version),
                    environments=", ".join(escape.text(env) for env, _ in envs),
                )
            )
    section = unfixed_section(tuple(still))
    quarantine = quarantine_section(result.signals.quarantine_passed)
    return "\n".join(lines) + "".join(f"\n\n{part}" for part in (section, quarantine) if part)


def unfixed_section(unfixed: Sequence[Unfixed]) -> str:
    if not unfixed:
        return ""
    lines = [messages.SECURITY_UNFIXED_SECTION, ""]
    lines += [
        messages.SECURITY_UNFIXED.format(
            advisory=advisory_name(item.advisory),
            package=escape.code(item.advisory.package),
            version=escape.code(item.advisory.version),
            environments=", ".join(map(escape.text, item.environments)),
            reason=item.reason,
        )
        for item in unfixed
    ]
    return "\n".join(lines)


def quarantine_section(passed: Sequence[str]) -> str:
    if not passed:
        return ""
    lines = [messages.SECURITY_QUARANTINE, ""]
    return "\n".join(lines + [f"- {escape.text(line)}" for line in dict.fromkeys(passed)])


def _moved(result: RunResult) -> dict[tuple[str, str], str]:
    """(environment, package) -> the version the run's new lock has, for each package moved."""
    out: dict[tuple[str, str], str] = {}
    for lock in result.compiled.results:
        if lock.status != "changed" or lock.diff is None:
            continue
        for change in lock.diff.changes:
            if change.after is not None and change.after != change.before:
                out[(lock.name, change.name)] = change.after
    return out


# -- what asks for it ------------------------------------------------------------------------


def security_wanted(signals: SignalsResult) -> tuple[str, ...]:
    """The packages with an advisory a version the specs allow fixes (``left`` and
    ``introduced`` alike, not the blocked ones): a security job is worth running."""
    packages = []
    for env in signals.advisories:
        blocked = {(b.advisory.id, b.advisory.package) for b in env.blocked}
        for advisory in current_advisories(env):
            if advisory.fixed_versions and (advisory.id, advisory.package) not in blocked:
                packages.append(advisory.package)
    return tuple(sorted(set(packages)))


def enqueue_security(
    queue: JobQueue,
    repo: str,
    installation_id: int,
    *,
    delivery_id: str,
    reason: str,
    packages: Sequence[str] = (),
) -> str | None:
    """Queue a ``security`` job for ``repo``; a job already waiting for it is joined (its
    id comes back, ``joined``), and the same ``delivery_id`` twice adds nothing (None)."""
    payload = SecurityPayload(reason=reason, packages=tuple(packages))
    request = JobRequest(
        kind="security",
        repo=repo,
        installation_id=installation_id,
        delivery_id=delivery_id,
        payload=payload.to_json(),
    )
    return queue.enqueue(request)
