"""``check_suite.rerequested``: "Re-run all checks" on Lockwarden's pull request refreshes its
branch again, as re-running the ``lockwarden`` check run alone does.

GitHub sends check suite events only to the App the suite belongs to; its slug is still
checked (when both are known) so a mistaken route cannot start work. Suites of branches other
than Lockwarden's and the default branch (where a failed refresh leaves its check run) are
ignored: a re-run there is not a request for new locks. ``requested`` (a new suite) needs
no job: Lockwarden creates its check run itself, when it refreshes.
"""

from __future__ import annotations

from bot.jobs.payloads import RefreshPayload
from bot.server import messages
from bot.server.events import CheckSuiteEvent, parse
from bot.server.pull_request import BOT_BRANCH_PREFIX
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()


@router.register("check_suite", "rerequested")
def on_rerequested(delivery: Delivery, context: Context) -> Decision:
    event = parse(CheckSuiteEvent, delivery.payload)
    suite = event.check_suite
    app_slug = suite.app.slug if suite.app is not None else None
    if context.app_slug and app_slug and app_slug.lower() != context.app_slug.lower():
        return Ignore(messages.CHECK_SUITE_OTHER_APP.format(slug=app_slug))
    branch = suite.head_branch
    if not branch:
        return Ignore(messages.CHECK_SUITE_NO_BRANCH)
    # The default branch too: a refresh that failed there leaves its check run on its head.
    ours = branch.startswith(BOT_BRANCH_PREFIX) or branch == event.repository.default_branch
    if not ours:
        return Ignore(messages.CHECK_SUITE_OTHER_BRANCH.format(branch=branch))
    if event.installation is None:
        return Ignore(messages.NO_INSTALLATION)
    payload = RefreshPayload(branch=branch, sha=suite.head_sha or "")
    job = make_job(delivery, "refresh", event.repository.full_name, event.installation, payload)
    return Enqueue((job,))


@router.register("check_suite", "requested")
def on_requested(delivery: Delivery, context: Context) -> Decision:
    return Ignore(messages.CHECK_SUITE_REQUESTED)
