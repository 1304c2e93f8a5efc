"""``installation`` and ``installation_repositories``: repositories coming and going.

- ``installation.created``, ``installation_repositories.added``: one ``onboard`` job per
  repository listed (the worker reads its config or discovers its environments, and
  schedules its refreshes).
- ``installation.deleted``, ``installation_repositories.removed``: one ``forget`` job per
  repository listed (the worker cancels its scheduled and queued work). The installation's
  token no longer reaches those repositories, so ``forget`` only touches Lockwarden's own
  state.

Other actions (``suspend``, ``unsuspend``, ``new_permissions_accepted``) are ignored: a
suspended installation's jobs fail on their token and are retried by the schedule.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.jobs.payloads import RepositoryPayload
from bot.jobs.queue import JobKind
from bot.server import messages
from bot.server.events import (
    Installation,
    InstallationEvent,
    InstallationRepositoriesEvent,
    RepositoryRef,
    parse,
)
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()


def _per_repository(
    delivery: Delivery,
    kind: JobKind,
    installation: Installation,
    repositories: Iterable[RepositoryRef],
) -> Decision:
    names = dict.fromkeys(repository.full_name for repository in repositories)
    if not names:
        return Ignore(messages.INSTALLATION_NO_REPOSITORIES)
    return Enqueue(
        tuple(make_job(delivery, kind, name, installation, RepositoryPayload()) for name in names)
    )


@router.register("installation", "created")
def on_created(delivery: Delivery, context: Context) -> Decision:
    event = parse(InstallationEvent, delivery.payload)
    return _per_repository(delivery, "onboard", event.installation, event.repositories or ())


@router.register("installation", "deleted")
def on_deleted(delivery: Delivery, context: Context) -> Decision:
    event = parse(InstallationEvent, delivery.payload)
    return _per_repository(delivery, "forget", event.installation, event.repositories or ())


@router.register("installation_repositories", "added")
def on_added(delivery: Delivery, context: Context) -> Decision:
    event = parse(InstallationRepositoriesEvent, delivery.payload)
    return _per_repository(delivery, "onboard", event.installation, event.repositories_added)


@router.register("installation_repositories", "removed")
def on_removed(delivery: Delivery, context: Context) -> Decision:
    event = parse(InstallationRepositoriesEvent, delivery.payload)
    return _per_repository(delivery, "forget", event.installation, event.repositories_removed)
