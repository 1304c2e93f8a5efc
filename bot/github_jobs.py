"""The jobs the GitHub App runs, one at a time per worker.

A refresh reads top to bottom like the pipeline it is:
checkout (clone with an installation token) -> configure -> compile -> build -> verify
(``bot.worker.refresh`` on the clone) -> publish (bot branch, pull request, check run).
Every failure ends up on GitHub (the check run or a PR comment) or in the raised error the
queue retries: never a silent stop.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from githubkit import GitHub
from githubkit.exception import GitHubException

from bot.config import load_config
from bot.errors import LockwardenError
from bot.git import (
    BotIdentity,
    Clone,
    bot_owns_branch,
    clone,
    commit_files,
    fetch_branch,
    push_branch,
)
from bot.github.client import GitHubApp
from bot.github.ensure import (
    delete_branch,
    ensure_check_run,
    ensure_comment,
    ensure_pull_request,
    split_repo,
)
from bot.jobs import JobRequest
from bot.ledger import LedgerEntry, parse_trailers
from bot.pipeline.checkout import Workspace
from bot.pipeline.publish_pr import CHECK_NAME, PublishResult, publish_pull_request
from bot.report import messages
from bot.settings import Settings
from bot.worker import RefreshOptions, refresh

REFRESH_BRANCH = "lockwarden/refresh"
ONBOARDING_BRANCH = "lockwarden/onboarding"
BOT_BRANCH_PREFIX = "lockwarden/"


@dataclass(frozen=True)
class JobOutcome:
    kind: str
    repo: str
    action: str
    pull_number: int | None = None
    note: str | None = None


class JobRunner:
    def __init__(
        self,
        app: GitHubApp,
        settings: Settings,
        *,
        identity: BotIdentity | None = None,
        git_base_url: str | None = None,
    ) -> None:
        self._app = app
        self._settings = settings
        self._identity = identity or BotIdentity()
        # Where repositories are cloned from: github.com (or the GHES host) by default.
        self._git_base_url = git_base_url

    def run(self, job: JobRequest) -> JobOutcome:
        handlers = {
            "refresh": self.refresh,
            "onboard": self.onboard,
            "cleanup": self.cleanup,
        }
        handler = handlers.get(job.kind)
        if handler is None:
            return JobOutcome(job.kind, job.repo, "skipped", note=f"no handler for {job.kind}")
        return handler(job)

    # -- refresh ---------------------------------------------------------------------------

    def refresh(self, job: JobRequest) -> JobOutcome:
        gh = self._app.installation_client(job.installation_id)
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            # checkout: a shallow clone of the default branch, token passed per command
            try:
                repo = self._clone(job, Path(tmp))
            except LockwardenError as exc:
                report_job_failure(gh, job.repo, messages.CHECK_CLONE_FAILED, exc.user_message)
                raise

            # configure -> compile -> build -> verify, on the clone (nothing written in place)
            mode = job.payload.get("mode", "minimal")
            result = refresh(
                Workspace(root=repo.path, repo=job.repo),
                RefreshOptions(
                    upgrade=mode == "full",
                    upgrade_packages=tuple(job.payload.get("packages", ())),
                    environments=tuple(job.payload.get("environments", ())),
                    write=False,
                    verify_reproducible=True if mode == "full" else None,
                ),
                self._settings,
            )

            # publish: the bot branch, the pull request and the check run
            config = result.config.config
            published: PublishResult = publish_pull_request(
                gh,
                repo,
                result,
                branch=REFRESH_BRANCH,
                token=self._token(job),
                identity=self._identity,
                labels=config.labels,
                reviewers=config.reviewers,
            )
        return JobOutcome(
            "refresh", job.repo, published.action, published.pull_number, published.note
        )

    # -- onboarding ------------------------------------------------------------------------

    def onboard(self, job: JobRequest) -> JobOutcome:
        """Propose a ``.github/lockwarden.yml`` from discovery, as a pull request."""
        gh = self._app.installation_client(job.installation_id)
        with tempfile.TemporaryDirectory(prefix="lockwarden-job-") as tmp:
            repo = self._clone(job, Path(tmp))
            loaded = load_config(repo.path)
            if loaded.source != "discovery":
                return JobOutcome("onboard", job.repo, "skipped", note="already configured")
            if not loaded.config.environments:
                return JobOutcome("onboard", job.repo, "skipped", note="no environments found")
            text = onboarding_config(loaded.config.model_dump(mode="json", exclude_defaults=True))
            remote = fetch_branch(repo, ONBOARDING_BRANCH, token=self._token(job))
            if remote is not None and not bot_owns_branch(repo, ONBOARDING_BRANCH, self._identity):
                # Someone edited the proposed config on the branch: theirs wins.
                return JobOutcome(
                    "onboard",
                    job.repo,
                    "blocked",
                    note=messages.PR_HUMAN_PUSH.format(branch=ONBOARDING_BRANCH),
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
            found = "\n".join(f"- {line}" for line in loaded.discovered)
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

    def cleanup(self, job: JobRequest) -> JobOutcome:
        """A bot pull request was closed: delete its branch; a merged one whose tests
        passed is now a known-good set in the ledger (its commit is on the default branch)."""
        branch = str(job.payload.get("branch", ""))
        if not branch.startswith(BOT_BRANCH_PREFIX):
            return JobOutcome("cleanup", job.repo, "skipped", note=f"not a bot branch: {branch}")
        gh = self._app.installation_client(job.installation_id)
        deleted = delete_branch(gh, job.repo, branch)
        number = job.payload.get("number")
        # Only a lock refresh carries a lock set: a merged onboarding PR is not a known-good one.
        merged_locks = job.payload.get("merged") and branch != ONBOARDING_BRANCH
        if merged_locks and isinstance(number, int):
            # The ledger trailers of the merged commit say whether every test passed.
            entry = _ledger_entry(gh, job.repo, str(job.payload.get("head_sha") or ""))
            sha = str(job.payload.get("merge_commit_sha") or "")[:12] or "the merge commit"
            good = entry is not None and entry.known_good
            ensure_comment(
                gh,
                job.repo,
                number,
                marker="lockwarden:known-good",
                body=(messages.KNOWN_GOOD if good else messages.NOT_KNOWN_GOOD).format(sha=sha),
            )
        return JobOutcome("cleanup", job.repo, "deleted" if deleted else "already gone", number)

    # -- helpers ---------------------------------------------------------------------------

    def _token(self, job: JobRequest) -> Any:
        def current() -> str:
            return self._app.installation_token(job.installation_id)

        return current

    def _clone(self, job: JobRequest, into: Path) -> Clone:
        base = self._git_base_url or _git_base(self._settings.github_api_url)
        url = f"{base.rstrip('/')}/{job.repo}.git"
        try:
            return clone(url, into / "repo", token=self._token(job), depth=50)
        except LockwardenError:
            raise
        except Exception as exc:  # pragma: no cover - defensive: every clone error is reported
            raise LockwardenError(f"{job.repo}: clone failed: {exc}") from exc


def _ledger_entry(gh: GitHub[Any], repo: str, sha: str) -> LedgerEntry | None:
    if not sha:
        return None
    owner, name = split_repo(repo)
    try:
        message = gh.rest.repos.get_commit(owner, name, sha).parsed_data.commit.message
    except GitHubException:
        return None
    return parse_trailers(sha, "", message.splitlines()[0] if message else "", message)


def report_job_failure(gh: GitHub[Any], repo: str, title: str, detail: str) -> None:
    """A failed ``lockwarden`` check run on the default branch's head: a job that could not
    even start still tells the repository why."""
    owner, name = split_repo(repo)
    try:
        data = gh.rest.repos.get(owner, name).parsed_data
        head = gh.rest.repos.get_branch(owner, name, data.default_branch).parsed_data.commit.sha
    except GitHubException:
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
