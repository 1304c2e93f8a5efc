"""``check_run.rerequested`` on Lockwarden's check run: refresh its head branch again.

GitHub sends ``rerequested`` only to the app that made the check run; the name (and the
app's slug, when both are known) is still checked so a mistaken route cannot start work.
"""

from __future__ import annotations

from bot.jobs.payloads import RefreshPayload
from bot.server import messages
from bot.server.events import CheckRun, CheckRunEvent, parse
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()

CHECK_RUN_NAME = "lockwarden"


def head_branch(check_run: CheckRun, repository_id: int | None) -> str | None:
    """The check suite's head branch; failing that (GitHub leaves it out for some forks), the
    head of a pull request of the same repository."""
    if check_run.check_suite is not None and check_run.check_suite.head_branch:
        return check_run.check_suite.head_branch
    for pull in check_run.pull_requests:
        head_repo = pull.head.repo.id if pull.head.repo is not None else None
        if repository_id is not None and head_repo == repository_id:
            return pull.head.ref
    return None


@router.register("check_run", "rerequested")
def on_rerequested(delivery: Delivery, context: Context) -> Decision:
    event = parse(CheckRunEvent, delivery.payload)
    check_run = event.check_run
    if check_run.name != CHECK_RUN_NAME:
        return Ignore(messages.CHECK_RUN_OTHER_NAME.format(name=check_run.name))
    app_slug = check_run.app.slug if check_run.app is not None else None
    if context.app_slug and app_slug and app_slug.lower() != context.app_slug.lower():
        return Ignore(messages.CHECK_RUN_OTHER_APP.format(slug=app_slug))
    branch = head_branch(check_run, event.repository.id)
    if branch is None:
        return Ignore(messages.CHECK_RUN_NO_BRANCH)
    if event.installation is None:
        return Ignore(messages.NO_INSTALLATION)
    payload = RefreshPayload(branch=branch, sha=check_run.head_sha or "", check_run_id=check_run.id)
    job = make_job(delivery, "refresh", event.repository.full_name, event.installation, payload)
    return Enqueue((job,))
