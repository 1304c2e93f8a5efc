"""``pull_request.closed`` on a Lockwarden branch: clean up after the pull request.

The ``cleanup`` job deletes the branch and, when the pull request was merged, records the
merged locks as a known-good set (what ``rollback`` goes back to). Pull requests from other
branches, or whose head lives in another repository (a fork that happens to name a branch
``lockwarden/...``), are ignored: Lockwarden never deletes a branch it did not make.
"""

from __future__ import annotations

from bot.jobs.payloads import CleanupPayload
from bot.server import messages
from bot.server.events import PullRequestEvent, parse
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()

BOT_BRANCH_PREFIX = "lockwarden/"


@router.register("pull_request", "closed")
def on_closed(delivery: Delivery, context: Context) -> Decision:
    event = parse(PullRequestEvent, delivery.payload)
    pull = event.pull_request
    head = pull.head
    repo = event.repository.full_name
    if not head.ref.startswith(BOT_BRANCH_PREFIX):
        return Ignore(messages.PR_NOT_BOT_BRANCH.format(ref=head.ref))
    head_repo = head.repo.full_name if head.repo is not None else None
    if head_repo is None or head_repo.lower() != repo.lower():
        return Ignore(
            messages.PR_FOREIGN_HEAD.format(head_repo=head_repo or "a deleted fork", repo=repo)
        )
    if event.installation is None:
        return Ignore(messages.NO_INSTALLATION)
    merged = pull.was_merged
    payload = CleanupPayload(
        branch=head.ref,
        number=pull.number,
        merged=merged,
        head_sha=head.sha or "",
        base=pull.base.ref,
        merge_commit_sha=pull.merge_commit_sha if merged else None,
    )
    return Enqueue((make_job(delivery, "cleanup", repo, event.installation, payload),))
