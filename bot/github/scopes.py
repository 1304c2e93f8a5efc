"""What each job may do on GitHub: the permissions its installation token is narrowed to.

A job's token covers one repository (the job's) and only the permissions below, so a token
that leaks from a job, or a bug in one, reaches no other repository of the installation and
cannot do what the job never does. Each set is what the job's code calls, no more:

- publishing a refresh, rollback or security fix: clone, fetch and push the bot branch
  (``contents``), open, update, label and close its pull request, switch its draft status and
  comment on it (``pull_requests``; GitHub takes ``pull_requests`` for labels and comments on a
  pull request, and the GraphQL draft switches are refused to a token without
  ``contents: write`` too), the ``lockwarden`` check run (``checks``);
- the onboarding pull request: the branch and the pull request, no check run;
- slash commands: everything a refresh does, plus replies and reactions on plain issues
  (``issues``) and the author's role on the repository (``metadata``);
- cleanup after a bot pull request closed: delete the branch (``contents``), read the merged
  commit's trailers and comment on the pull request;
- reporting a job that could not start: the default branch's head and a check run;
- installation-wide listing of repositories: ``metadata`` only.

``forget`` calls GitHub not at all, and redelivering webhooks is done as the App (its JWT).
The App itself must request at least the union (``app.yml``; ``APP_PERMISSIONS``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

Level = Literal["read", "write"]
_RANK = {"read": 1, "write": 2}


@dataclass(frozen=True)
class Access:
    """A named set of installation permissions, in GitHub's names and levels."""

    purpose: str
    grants: tuple[tuple[str, Level], ...]
    """(permission, level) pairs sorted by permission: hashable, so it can key a cache."""

    @classmethod
    def of(cls, purpose: str, **grants: Level) -> Access:
        return cls(purpose, tuple(sorted(grants.items())))

    @classmethod
    def publishing(cls, purpose: str, **more: Level) -> Access:
        """A set for a job that publishes a bot branch: :data:`BRANCH_AND_PULL_REQUEST`, and
        ``more``."""
        return cls.of(purpose, **BRANCH_AND_PULL_REQUEST, **more)

    def as_dict(self) -> dict[str, str]:
        """The ``permissions`` body of ``POST /app/installations/{id}/access_tokens``."""
        return dict(self.grants)

    def covers(self, granted: Mapping[str, str]) -> bool:
        """Whether ``granted`` (GitHub's permissions object) is within this set: no permission
        it lacks, no level above its own."""
        mine = dict(self.grants)
        return all(
            name in mine and _RANK.get(level, 99) <= _RANK[mine[name]]
            for name, level in granted.items()
        )

    def describe(self) -> str:
        return ", ".join(f"{name}: {level}" for name, level in self.grants)


BRANCH_AND_PULL_REQUEST: Mapping[str, Level] = MappingProxyType(
    {"contents": "write", "pull_requests": "write", "metadata": "read"}
)
"""What every job that publishes a bot branch needs: push it, open and comment on its pull
request, read the repository."""

PUBLISH_PULL_REQUEST = Access.publishing(
    "refresh or roll back the locks and publish the pull request and its check run",
    checks="write",
)
ONBOARDING_PULL_REQUEST = Access.publishing("propose the configuration in a pull request")
COMMAND_HANDLING = Access.publishing(
    "answer slash commands and update the bot pull request they change",
    issues="write",
    checks="write",
)
CLEANUP = Access.publishing("delete a closed bot branch and mark a merged lock set known-good")
CHECK_RUN_ONLY = Access.of(
    "report on the default branch's head that a job could not start",
    checks="write",
    contents="read",
    metadata="read",
)
INSTALLATION_LISTING = Access.of(
    "list the repositories of an installation",
    metadata="read",
)

JOB_ACCESS: Mapping[str, Access] = MappingProxyType(
    {
        "refresh": PUBLISH_PULL_REQUEST,
        "security": PUBLISH_PULL_REQUEST,
        "onboard": ONBOARDING_PULL_REQUEST,
        "command": COMMAND_HANDLING,
        "cleanup": CLEANUP,
    }
)
"""The token each job kind works with; a kind missing here gets no token (``forget``)."""


def union(sets: Iterable[Access]) -> dict[str, str]:
    """The strongest level of each permission over ``sets``: what the App must request."""
    merged: dict[str, str] = {}
    for access in sets:
        for name, level in access.grants:
            if _RANK[level] > _RANK.get(merged.get(name, ""), 0):
                merged[name] = level
    return dict(sorted(merged.items()))


APP_PERMISSIONS: Mapping[str, str] = MappingProxyType(
    union([*JOB_ACCESS.values(), CHECK_RUN_ONLY, INSTALLATION_LISTING])
)
"""What the App requests (``app.yml``'s ``default_permissions`` must hold at least this)."""
