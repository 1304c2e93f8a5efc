"""The jobs the GitHub App runs, one at a time per worker: one method per job kind, each
reading its payload once through :mod:`bot.jobs.payloads`.

A refresh reads top to bottom like the pipeline it is:
checkout (clone with an installation token) -> configure -> compile -> build -> verify
(``bot.worker.refresh`` on the clone) -> publish (bot branch, pull request, check run).
Every failure ends up on GitHub (the check run or a PR comment) or in the raised error the
queue retries: never a silent stop.

A job's REST clients come from one :class:`~bot.github.client.ClientPool`, opened when the
job starts and closed when it ends: one HTTP connection per token scope for the whole job,
not one per request.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import replace
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

import yaml

from bot.advisories.audit import audit_locks
from bot.advisories.service import service_config
from bot.commands.handlers import CommandRunner
from bot.config import RepoConfig, Schedule, load_config, unlocked_note
from bot.errors import LockwardenError
from bot.git import (
    BotIdentity,
    Clone,
    GitError,
    TokenSource,
    bot_owns_branch,
    carry_changes,
    clone,
    commit_files,
    commit_paths,
    fetch_branch,
    fetch_ref,
    push_branch,
    read_file_at,
)
from bot.github.client import Client, ClientPool, GitHubApp, TokenScope
from bot.github.ensure import (
    delete_branch,
    ensure_check_run,
    ensure_comment,
    ensure_pull_request,
)
from bot.github.interactions import commit_message, default_branch_head
from bot.github.scopes import CHECK_RUN_ONLY, JOB_ACCESS, Access
from bot.jobs.branches import (
    BOT_BRANCH_PREFIX,
    ONBOARDING_BRANCH,
    ROLLBACK_BRANCH,
    BranchOutcome,
    BranchState,
    BranchUpdate,
    JobOutcome,
    RollbackOutcome,
    RollbackRequest,
)
from bot.jobs.payloads import CleanupPayload, RefreshPayload, Yank
from bot.jobs.queue import JobQueue, JobRequest, ScheduleBook
from bot.jobs.security import LockAudit, SecurityJob, enqueue_security, security_wanted
from bot.ledger import LedgerEntry, known_good_sets, parse_trailers
from bot.locks.spec import read_spec_tree
from bot.observe import stage
from bot.pipeline.checkout import Workspace
from bot.pipeline.publish_pr import CHECK_NAME, publish_pull_request
from bot.progress import LoggedProgress
from bot.report import escape, messages
from bot.report.pull_request import yanked_notes
from bot.results import RunResult
from bot.rollback import RollbackTarget, resolve_rollback
from bot.sandbox import Sandbox, open_sandbox
from bot.settings import Settings
from bot.watch.store import WatchBook
from bot.worker import RefreshOptions, refresh

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def rollback_notes(target: RollbackTarget, requested_by: str | None, number: int | None) -> str:
    """The rollback pull request's own section: where the locks come from and which images
    to redeploy."""
    asked = ""
    if requested_by:
        asked = messages.ROLLBACK_ASKED.format(login=requested_by) + (
            f" in #{number}" if number is not None else ""
        )
    lines = [
        messages.ROLLBACK_PR_SECTION,
        "",
        messages.ROLLBACK_PR_SOURCE.format(
            to=escape.code(target.to), sha=escape.code(target.sha[:12]), asked=asked
        ),
    ]
    if target.missing:
        lines.append(
            messages.ROLLBACK_PR_MISSING.format(envs=", ".join(map(escape.text, target.missing)))
        )
    if target.digests:
        lines += ["", messages.ROLLBACK_PR_REDEPLOY, ""]
        lines += [
            messages.ROLLBACK_IMAGE.format(name=escape.code(name), digest=escape.code(digest))
            for name, digest in sorted(target.digests.items())
        ]
    return "\n".join(lines)


def _one_pool(
    method: Callable[Concatenate[JobRunner, P], R],
) -> Callable[Concatenate[JobRunner, P], R]:
    """Run a job method inside the job's client pool (the caller's, when a job is running)."""

    @functools.wraps(method)
    def pooled(runner: JobRunner, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with runner.job_clients():
            return method(runner, *args, **kwargs)

    return pooled


class JobRunner:
    def __init__(
        self,
        app: GitHubApp,
        settings: Settings,
        *,
        identity: BotIdentity | None = None,
        git_base_url: str | None = None,
        schedules: ScheduleBook | None = None,
        watch: WatchBook | None = None,
        sandbox: Sandbox | None = None,
        queue: JobQueue | None = None,
        audit: LockAudit | None = None,
    ) -> None:
        self._app = app
        self._settings = settings
        # Where follow-up jobs go (a security job after a refresh that found a fixable
        # advisory); None: none is queued.
        self._queue = queue
        self._audit = audit or functools.partial(audit_locks, service=service_config(settings))
        # Repository content never runs outside it; see bot.sandbox. Opened on first use:
        # a receiver that only schedules never needs one.
        self._given_sandbox = sandbox
        self._schedules = schedules
        # What each repository locks, for the upstream release watch (bot.watch).
        self._watch = watch
        self._identity = identity or BotIdentity()
        # Where repositories are cloned from: github.com (or the GHES host) by default.
        self._git_base_url = git_base_url
        # The clients of the job running in this thread (or asyncio task): jobs may run in
        # several threads at once, each with its own pool.
        self._pool: ContextVar[ClientPool | None] = ContextVar("job_clients", default=None)

    def installation_client(self, job: JobRequest, access: Access | None = None) -> Client:
        """A client whose token reaches only the job's repository, with the permissions of
        the job's kind (or ``access``). While a job runs, the job's own client of that scope,
        whose connection stays open until the job ends; outside a job, a client that opens a
        connection per request."""
        scope = self._scope(job, access)
        pool = self._pool.get()
        if pool is None:
            return self._app.installation_client(scope)
        return pool.installation(scope)

    @contextlib.contextmanager
    def job_clients(self) -> Iterator[ClientPool]:
        """The running job's client pool: opened by the outermost job method of this thread,
        and closed, connections and all, when that method returns or raises."""
        current = self._pool.get()
        if current is not None:
            yield current
            return
        with self._app.pool() as pool:
            reset = self._pool.set(pool)
            try:
                yield pool
            finally:
                self._pool.reset(reset)

    @functools.cached_property
    def _sandbox(self) -> Sandbox:
        return self._given_sandbox or open_sandbox(self._settings.sandbox, required=True)

    @_one_pool
    def run(self, job: JobRequest) -> JobOutcome:
        if not self._sandbox.isolated:
            log.warning("%s: %s", job.repo, self._sandbox.reason)
        handlers = {
            "refresh": self.refresh,
            "onboard": self.onboard,
            "cleanup": self.cleanup,
            "forget": self.forget,
            "command": CommandRunner(
                self, self._settings.app_slug, service_config(self._settings)
            ).run,
            "security": SecurityJob(self, self._audit).run,
        }
        handler = handlers.get(job.kind)
        if handler is None:
            return JobOutcome(job.kind, job.repo, "skipped", note=f"no handler for {job.kind}")
        return handler(job)

    # -- refresh ---------------------------------------------------------------------------

    @_one_pool
    def refresh(self, job: JobRequest) -> JobOutcome:
        gh = self.installation_client(job)
        payload = RefreshPayload.of(job)
        full = payload.mode == "full"
        options = RefreshOptions(
            upgrade=full,
            upgrade_packages=payload.packages,
            environments=payload.environments,
            verify_reproducible=True if full else None,
        )
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            # checkout: a shallow clone of the default branch, token passed per command
            try:
                repo = self.clone(job, Path(tmp))
            except LockwardenError as exc:
                reporter = self.installation_client(job, CHECK_RUN_ONLY)
                report_job_failure(
                    reporter, job.repo, messages.CHECK_CLONE_FAILED, exc.user_message
                )
                raise
            # configure -> compile -> build -> verify -> publish, keeping the review edits
            # and pins already on the branch
            notes = yanked_notes((y.package, y.version, y.reason) for y in payload.yanked)
            update = self.update_branch(job, gh, repo, BranchUpdate(options=options, notes=notes))
            if update.result is not None and self._watch is not None:
                self._watch.record(
                    repo.path, job.repo, job.installation_id, update.result.config.config
                )
        if update.result is not None:
            self._remember_schedule(job, update.result.config.config.schedule)
            self._follow_up(job, update.result)
            self._move_off_yanked(job, payload, update.result)
        published = update.published
        if published is None:  # pragma: no cover - only commands stop before publishing
            return JobOutcome("refresh", job.repo, "skipped")
        return JobOutcome(
            "refresh", job.repo, published.action, published.pull_number, published.note
        )

    def update_branch(
        self, job: JobRequest, gh: Client, repo: Clone, update: BranchUpdate
    ) -> BranchOutcome:
        """Build the next commit of a bot branch and publish it.

        The branch is always one commit on the current default branch. What the previous
        commit held is kept: its edits to specs and ignore rules are merged onto the default
        branch (three-way, so a person's later change to the same file survives), and its
        locks seed the compile where the default branch has not changed them since (so a
        pin or a push does not undo a full refresh). ``update.edit`` then changes the tree;
        the pipeline runs on it, and the result is diffed against the default branch.
        """
        token = self._token(job)
        config = load_config(repo.path).config
        state = self.branch_state(
            repo,
            update.branch,
            config,
            carry=update.carry,
            strict=update.stop_on_failure,
            token=token,
        )
        notes = update.notes
        if state.dropped is not None:
            dropped = messages.EDITS_DROPPED.format(error=escape.text(state.dropped))
            notes = f"{dropped}\n\n{notes}" if notes else dropped
        if state.blocked and update.stop_on_failure:
            return BranchOutcome(None, None, state, {})
        edited: dict[str, str] = dict(state.carried)
        options = update.options
        if update.edit is not None:
            changed = update.edit(repo, config, state)
            edited.update(changed)
            touched = reading(repo.path, config, changed)
            if update.narrow and touched and not options.environments:
                # Only the edited environments and those they constrain are recompiled;
                # the others keep the branch's locks.
                options = replace(options, environments=touched)
        result = refresh(
            Workspace(root=repo.path, repo=job.repo),
            replace(options, write=False, seed_locks={**state.seeds, **update.seeds}),
            self._settings,
            sandbox=self._sandbox,
            # Each environment's steps in the job's log: how far a slow or stuck job got.
            progress=LoggedProgress(),
        )
        # What a rollback after merging returns to, for the pull request's Rollback section.
        good = known_good_sets(repo.path)
        result = replace(result, known_good=good[0] if good else None)
        if update.stop_on_failure and any(r.status == "failed" for r in result.compiled.results):
            return BranchOutcome(result, None, state, edited)
        # Only files that still differ from the default branch belong in the commit.
        files = {
            path: text
            for path, text in edited.items()
            if read_file_at(repo.path, "HEAD", path) != text
        }
        if update.describe is not None:
            notes = "\n\n".join(part for part in (notes, update.describe(result)) if part)
        cfg = result.config.config
        published = publish_pull_request(
            gh,
            repo,
            result,
            branch=update.branch,
            token=token,
            identity=self._identity,
            labels=tuple(dict.fromkeys((*cfg.labels, *update.labels))),
            reviewers=cfg.reviewers,
            extra_files=files,
            title=update.title,
            notes=notes,
        )
        return BranchOutcome(result, published, state, files)

    def branch_state(
        self,
        repo: Clone,
        branch: str,
        config: RepoConfig,
        *,
        carry: bool,
        strict: bool,
        token: TokenSource,
    ) -> BranchState:
        """What the bot branch holds now, fetched; its edits applied to the working tree."""
        remote = fetch_branch(repo, branch, token=token)
        if remote is None:
            return BranchState(None)
        if not bot_owns_branch(repo, branch, self._identity):
            return BranchState(remote, blocked=True)
        if not carry:
            return BranchState(remote)
        lock_paths = {path for env in config.environments for path in env.lock_paths}
        paths = commit_paths(repo, remote) if remote != repo.base_sha else ()
        seeds: dict[str, str] = {}
        for path in paths:
            if path not in lock_paths:
                continue
            # The branch's lock is still a change on top of the default branch's only when
            # the default branch has not moved that lock since the branch was made.
            if read_file_at(repo.path, f"{remote}^", path) == read_file_at(repo.path, "HEAD", path):
                text = read_file_at(repo.path, remote, path)
                if text is not None:
                    seeds[path] = text
        try:
            carried = carry_changes(repo, remote, [p for p in paths if p not in lock_paths])
        except GitError as exc:
            if strict:
                raise
            # A person changed the same lines on the default branch: theirs wins.
            return BranchState(remote, seeds=seeds, dropped=exc.user_message)
        return BranchState(remote, seeds=seeds, carried=carried)

    # -- rollback --------------------------------------------------------------------------

    @_one_pool
    def rollback(self, job: JobRequest, request: RollbackRequest) -> RollbackOutcome:
        """Open (or update) the rollback pull request: every environment's lock restored
        from a git ref or the newest known-good ledger entry, rebuilt and retested."""
        gh = self.installation_client(job)
        token = self._token(job)
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            repo = self.clone(job, Path(tmp), depth=None)  # the ledger and old refs need it all
            config = load_config(repo.path).config
            target = resolve_rollback(
                repo.path,
                request.to,
                config,
                resolve_ref=lambda ref: fetch_ref(repo, ref, token=token),
            )
            notes = rollback_notes(target, request.requested_by, request.number)
            title = messages.ROLLBACK_PR_TITLE.format(to=target.to, sha=target.sha[:12])

            def restore_dockerfiles(
                clone: Clone, _config: RepoConfig, _state: BranchState
            ) -> Mapping[str, str]:
                # The image inputs go back with the locks: base digests and OS package pins.
                for path, text in target.dockerfiles.items():
                    (clone.path / path).write_text(text, "utf-8")
                return target.dockerfiles

            update = BranchUpdate(
                branch=ROLLBACK_BRANCH,
                carry=False,
                seeds=target.locks,
                edit=restore_dockerfiles if target.dockerfiles else None,
                title=title,
                notes=notes,
            )
            outcome = self.update_branch(job, gh, repo, update)
        return RollbackOutcome(target, outcome, ROLLBACK_BRANCH)

    # -- onboarding ------------------------------------------------------------------------

    @_one_pool
    def onboard(self, job: JobRequest) -> JobOutcome:
        """Propose a ``.github/lockwarden.yml`` from discovery, as a pull request."""
        gh = self.installation_client(job)
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            repo = self.clone(job, Path(tmp))
            loaded = load_config(repo.path)
            proposal = loaded.proposal()  # specs without a lock too: a person reviews it
            if not proposal.environments:
                return JobOutcome("onboard", job.repo, "skipped", note="no environments found")
            self._remember_schedule(job, loaded.config.schedule)
            if self._watch is not None:
                self._watch.record(repo.path, job.repo, job.installation_id, loaded.config)
            if loaded.source != "discovery":
                return JobOutcome("onboard", job.repo, "skipped", note="already configured")
            text = onboarding_config(proposal.model_dump(mode="json", exclude_defaults=True))
            remote = fetch_branch(repo, ONBOARDING_BRANCH, token=self._token(job))
            if remote is not None and not bot_owns_branch(repo, ONBOARDING_BRANCH, self._identity):
                # Someone edited the proposed config on the branch: theirs wins.
                return JobOutcome(
                    "onboard",
                    job.repo,
                    "blocked",
                    note=messages.PR_HUMAN_PUSH.format(branch=escape.code(ONBOARDING_BRANCH)),
                )
            sha = commit_files(
                repo,
                ONBOARDING_BRANCH,
                {".github/lockwarden.yml": text},
                messages.ONBOARDING_COMMIT,
                self._identity,
            )
            push_branch(
                repo,
                ONBOARDING_BRANCH,
                token=self._token(job),
                force=remote is not None,
                expected_remote_sha=remote,
            )
            found = "\n".join(
                [f"- {line}" for line in loaded.discovered]
                + [
                    f"- {unlocked_note(env)} (its first lock is written once merged)"
                    for env in loaded.unlocked
                ]
            )
            pull = ensure_pull_request(
                gh,
                job.repo,
                head=ONBOARDING_BRANCH,
                base=repo.default_branch,
                title=messages.ONBOARDING_TITLE,
                body=messages.ONBOARDING_BODY.format(found=found, config=text, sha=sha[:12]),
            )
        return JobOutcome("onboard", job.repo, "opened" if pull.created else "updated", pull.number)

    # -- cleanup ---------------------------------------------------------------------------

    @_one_pool
    def cleanup(self, job: JobRequest) -> JobOutcome:
        """A bot pull request was closed: delete its branch; a merged one whose tests
        passed is now a known-good set in the ledger (its commit is on the default branch)."""
        payload = CleanupPayload.of(job)
        branch = payload.branch
        if not branch.startswith(BOT_BRANCH_PREFIX):
            return JobOutcome("cleanup", job.repo, "skipped", note=f"not a bot branch: {branch}")
        gh = self.installation_client(job)
        deleted = delete_branch(gh, job.repo, branch)
        number = payload.number
        # Only a lock refresh carries a lock set: a merged onboarding PR is not a known-good one.
        merged_locks = payload.merged and branch != ONBOARDING_BRANCH
        if merged_locks and number is not None:
            # The ledger trailers of the merged commit say whether every test passed.
            entry = _ledger_entry(gh, job.repo, payload.head_sha)
            sha = (payload.merge_commit_sha or "")[:12] or "the merge commit"
            good = entry is not None and entry.known_good
            ensure_comment(
                gh,
                job.repo,
                number,
                marker="lockwarden:known-good",
                body=(messages.KNOWN_GOOD if good else messages.NOT_KNOWN_GOOD).format(sha=sha),
            )
        return JobOutcome("cleanup", job.repo, "deleted" if deleted else "already gone", number)

    def forget(self, job: JobRequest) -> JobOutcome:
        """The App was uninstalled from the repository: no more scheduled refreshes."""
        if self._schedules is not None:
            self._schedules.forget_schedule(job.repo)
        if self._watch is not None:
            self._watch.forget(job.repo)
        return JobOutcome("forget", job.repo, "forgotten")

    # -- helpers ---------------------------------------------------------------------------

    def _follow_up(self, job: JobRequest, result: RunResult) -> None:
        """A refresh that found an advisory with an allowed fix queues the security job (a
        retry of the same refresh adds nothing: the key is the refresh's delivery)."""
        packages = security_wanted(result.signals)
        if self._queue is None or not packages:
            return
        enqueue_security(
            self._queue,
            job.repo,
            job.installation_id,
            delivery_id=f"{job.delivery_id}:after-refresh",
            reason=f"a refresh found advisories of {', '.join(packages)}",
            packages=packages,
        )

    def _move_off_yanked(self, job: JobRequest, payload: RefreshPayload, result: RunResult) -> None:
        """A refresh whose locks still pin a yanked version queues a targeted refresh of
        those packages, whose pull request quotes the index's reason. Not from a refresh that
        was itself that move (it may be unable to move: an exact pin in the spec), so one
        yank asks once; a retry of the same refresh adds nothing either."""
        yanked = {(y.package, y.version): y.reason for y in result.signals.yanked}
        if self._queue is None or not yanked or payload.yanked:
            return
        move = RefreshPayload(
            mode="targeted",
            packages=tuple(sorted({package for package, _ in yanked})),
            yanked=tuple(Yank(p, v, reason) for (p, v), reason in sorted(yanked.items())),
        )
        self._queue.enqueue(
            JobRequest(
                kind="refresh",
                repo=job.repo,
                installation_id=job.installation_id,
                delivery_id=f"{job.delivery_id}:yanked",
                payload={**move.to_json(), "trigger": "yanked"},
            )
        )

    def _remember_schedule(self, job: JobRequest, schedule: Schedule) -> None:
        if self._schedules is not None:
            self._schedules.upsert_schedule(job.repo, job.installation_id, schedule)

    def token(self, job: JobRequest) -> TokenSource:
        return self._token(job)

    def _token(self, job: JobRequest) -> TokenSource:
        scope = self._scope(job)

        def current() -> str:
            return self._app.installation_token(scope)

        return current

    def _scope(self, job: JobRequest, access: Access | None = None) -> TokenScope:
        """The job's repository and the permissions its kind needs (``bot.github.scopes``)."""
        chosen = access or JOB_ACCESS.get(job.kind)
        if chosen is None:
            raise LockwardenError(
                f"a {job.kind} job has no GitHub access; it must not ask for a token"
            )
        return TokenScope(job.installation_id, job.repo, chosen)

    @stage("checkout")
    def clone(
        self, job: JobRequest, into: Path, *, depth: int | None = 50, branch: str | None = None
    ) -> Clone:
        base = self._git_base_url or _git_base(self._settings.github_api_url)
        url = f"{base.rstrip('/')}/{job.repo}.git"
        try:
            return clone(url, into / "repo", token=self._token(job), depth=depth, branch=branch)
        except LockwardenError:
            raise
        except Exception as exc:  # pragma: no cover - defensive: every clone error is reported
            raise LockwardenError(f"{job.repo}: clone failed: {exc}") from exc


def reading(root: Path, config: RepoConfig, files: Mapping[str, str]) -> tuple[str, ...]:
    """Environments whose spec (or a spec it includes) is one of ``files``; () when a file is
    no spec (the ignore rules): then every environment is concerned."""
    names = []
    for path in files:
        found = []
        for env in config.environments:
            try:
                spec_files = read_spec_tree(root, env.spec).files
            except LockwardenError:
                spec_files = (env.spec,)
            if path in spec_files:
                found.append(env.name)
        if not found:
            return ()
        names += found
    return tuple(dict.fromkeys(names))


def _ledger_entry(gh: Client, repo: str, sha: str) -> LedgerEntry | None:
    if not sha:
        return None
    message = commit_message(gh, repo, sha)
    if message is None:
        return None
    return parse_trailers(sha, "", message.splitlines()[0] if message else "", message)


def report_job_failure(gh: Client, repo: str, title: str, detail: str) -> None:
    """A failed ``lockwarden`` check run on the default branch's head: a job that could not
    even start still tells the repository why."""
    head = default_branch_head(gh, repo)
    if head is None:
        return  # GitHub itself is unreachable: the raised error goes to the queue's retry
    ensure_check_run(
        gh, repo, head_sha=head, name=CHECK_NAME, title=title, summary=detail, conclusion="failure"
    )


def _git_base(api_url: str) -> str:
    """``https://api.github.com`` -> ``https://github.com``; GHES ``https://h/api/v3`` -> ``https://h``."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def onboarding_config(data: dict[str, Any]) -> str:
    header = "# Lockwarden configuration, proposed from what was found in this repository.\n"
    header += "# JSON Schema: `lockwarden schema`. Edit freely before merging.\n"
    return header + yaml.safe_dump(data, sort_keys=False)
