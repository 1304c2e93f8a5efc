"""``push``: a change to a spec, lock, Dockerfile or the config on the default branch asks
for a minimal refresh of the repository.

Ignored, each with its reason: tag pushes, branch deletions, other branches, Lockwarden's
own pushes, and pushes that touch none of the files a refresh depends on. When GitHub does
not list every commit or every file, the push is assumed to matter: a needless minimal
refresh costs one compile, a missed one leaves a stale lock.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from bot.jobs.payloads import RefreshPayload
from bot.server import messages
from bot.server.events import PushEvent, User, parse
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()

BRANCH_PREFIX = "refs/heads/"
TAG_PREFIX = "refs/tags/"
COMMIT_LIST_LIMIT = 20
"""GitHub lists at most this many commits in some push payloads (timeline events, older
GitHub Enterprise Server); a list this long may be cut, so its files are not trusted."""

RELEVANT_NAMES = (
    "*.in",
    "requirements*.txt",
    "*.lock",
    "pyproject.toml",
    "environment.yml",
    "environment.yaml",
    "Dockerfile*",
    "*.Dockerfile",
    "*.dockerfile",
)
"""File names (in any directory) a refresh depends on."""
IRRELEVANT_NAMES = ("MANIFEST.in",)
"""Names the patterns above catch that are never specs (setuptools' manifest)."""
CONFIG_PATHS = (".github/lockwarden.yml", ".github/lockwarden.yaml")


def is_relevant_path(path: str) -> bool:
    """Whether a change to ``path`` (relative to the repository root) can change a lock or
    an image: specs, locks, Dockerfiles, files under ``docker/``, the Lockwarden config."""
    if path in CONFIG_PATHS:
        return True
    parts = PurePosixPath(path).parts
    if not parts:
        return False
    name = parts[-1]
    if name in IRRELEVANT_NAMES:
        return False
    if any(fnmatchcase(name, pattern) for pattern in RELEVANT_NAMES):
        return True
    directories = parts[:-1]
    if directories and directories[-1] == "requirements" and name.endswith(".txt"):
        return True
    return "docker" in directories


def changed_paths(event: PushEvent) -> set[str] | None:
    """Every path the push touched; ``None`` when the payload cannot tell (a cut commit list,
    commits without file lists, or a forced push or branch move with no commits listed)."""
    commits = event.commits
    if commits is None:
        return None
    if len(commits) >= COMMIT_LIST_LIMIT or (event.size is not None and event.size > len(commits)):
        return None
    if not commits:
        # The ref moved without new commits: onto a commit GitHub already had (head_commit
        # set) or backwards (forced). What changed is unknown.
        return None if event.forced or event.head_commit is not None else set()
    paths: set[str] = set()
    for commit in (*commits, *((event.head_commit,) if event.head_commit else ())):
        touched = commit.paths()
        if touched is None:
            return None
        paths |= touched
    return paths


def is_app_itself(sender: User, app_slug: str | None) -> bool:
    """Whether ``sender`` is this app's bot user, ``<app-slug>[bot]``."""
    return (
        app_slug is not None
        and sender.is_bot
        and sender.login.lower() == f"{app_slug}[bot]".lower()
    )


@router.register("push")
def on_push(delivery: Delivery, context: Context) -> Decision:
    event = parse(PushEvent, delivery.payload)
    repository = event.repository
    if event.ref.startswith(TAG_PREFIX):
        return Ignore(messages.PUSH_TAG)
    if event.deleted:
        return Ignore(messages.PUSH_DELETED)
    if not event.ref.startswith(BRANCH_PREFIX):
        return Ignore(messages.PUSH_NOT_A_BRANCH.format(ref=event.ref))
    branch = event.ref.removeprefix(BRANCH_PREFIX)
    if branch != repository.default_branch:
        return Ignore(
            messages.PUSH_OTHER_BRANCH.format(
                ref=event.ref, default_branch=repository.default_branch
            )
        )
    if event.sender is not None and is_app_itself(event.sender, context.app_slug):
        return Ignore(messages.PUSH_BY_SELF.format(login=event.sender.login))
    paths = changed_paths(event)
    if paths is not None and not any(is_relevant_path(path) for path in paths):
        return Ignore(messages.PUSH_NO_RELEVANT_FILES)
    if event.installation is None:
        return Ignore(messages.NO_INSTALLATION)
    job = make_job(
        delivery,
        "refresh",
        repository.full_name,
        event.installation,
        RefreshPayload(branch=branch, sha=event.after or ""),
    )
    return Enqueue((job,))
