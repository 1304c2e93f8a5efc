"""The bot branches a job writes, and what the runner offers the review commands.

A job ends in one commit on a bot branch (``lockwarden/...``) on top of the default branch;
these values say what the branch held before and what the update asks for and produced.
:class:`BranchJobs` is the part of the runner the review commands build on, so the
commands and the runner that dispatches to them do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bot.config import RepoConfig
from bot.git import Clone, TokenSource
from bot.github.client import Client
from bot.github.scopes import Access
from bot.jobs.queue import JobRequest
from bot.results import PublishResult, RunResult
from bot.rollback import RollbackTarget
from bot.worker import RefreshOptions

REFRESH_BRANCH = "lockwarden/refresh"
ROLLBACK_BRANCH = "lockwarden/rollback"
ONBOARDING_BRANCH = "lockwarden/onboarding"
BOT_BRANCH_PREFIX = "lockwarden/"


@dataclass(frozen=True)
class JobOutcome:
    kind: str
    repo: str
    action: str
    pull_number: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class BranchState:
    """A bot branch before an update."""

    remote_sha: str | None
    blocked: bool = False
    """A person pushed to it: the bot no longer rewrites it."""
    seeds: Mapping[str, str] = field(default_factory=dict)
    """Lock path -> the branch's lock, where it is still a change on the default branch."""
    carried: Mapping[str, str] = field(default_factory=dict)
    """Path -> text of the branch's other edits (specs, ignore rules), merged onto the tree."""
    dropped: str | None = None
    """Why the branch's edits could not be carried over (they conflict), when they were not."""


EditTree = Callable[[Clone, RepoConfig, BranchState], Mapping[str, str]]
"""Edits the working tree of a clone; returns the files it wrote (path -> text)."""


@dataclass(frozen=True)
class BranchUpdate:
    options: RefreshOptions = field(default_factory=RefreshOptions)
    branch: str = REFRESH_BRANCH
    edit: EditTree | None = None
    carry: bool = True
    """Keep the branch's edits and locks; False starts again from the default branch."""
    seeds: Mapping[str, str] = field(default_factory=dict)
    """Locks to start from, over the branch's (a rollback's restored locks)."""
    stop_on_failure: bool = False
    """Publish nothing when a compile fails (a command's error goes in its reply instead)."""
    title: str | None = None
    notes: str = ""
    narrow: bool = False
    """Recompile only the environments whose specs the edit changed (and those downstream)."""
    labels: tuple[str, ...] = ()
    """Labels for the pull request besides the repository's own (``labels:``)."""
    describe: Callable[[RunResult], str] | None = None
    """Notes written from the run's result, put after ``notes``."""


@dataclass(frozen=True)
class BranchOutcome:
    result: RunResult | None
    published: PublishResult | None
    state: BranchState
    edited: Mapping[str, str]
    """Files the commit changes besides the locks."""


@dataclass(frozen=True)
class RollbackRequest:
    """What a rollback is asked for: from the command line or a review comment."""

    to: str
    """A git revision, or ``known-good``."""
    requested_by: str | None = None
    """The login of the person who asked (named in the pull request)."""
    number: int | None = None
    """The pull request or issue the command came from."""


@dataclass(frozen=True)
class RollbackOutcome:
    target: RollbackTarget
    outcome: BranchOutcome
    branch: str


class BranchJobs(Protocol):
    """What the review commands ask of the job runner."""

    def installation_client(self, job: JobRequest, access: Access | None = None) -> Client:
        """A client whose token reaches only the job's repository."""
        ...

    def token(self, job: JobRequest) -> TokenSource:
        """The job's git token, renewed before it expires."""
        ...

    def clone(
        self, job: JobRequest, into: Path, *, depth: int | None = 50, branch: str | None = None
    ) -> Clone:
        """A clone of the job's repository under ``into``: its default branch, or ``branch``."""
        ...

    def update_branch(
        self, job: JobRequest, gh: Client, repo: Clone, update: BranchUpdate
    ) -> BranchOutcome:
        """Build the next commit of a bot branch and publish it."""
        ...

    def rollback(self, job: JobRequest, request: RollbackRequest) -> RollbackOutcome:
        """Open (or update) the rollback pull request."""
        ...
