"""``issue_comment`` (created, edited): a ``/lockwarden ...`` or ``@<app-slug> ...`` line asks
for a command.

This module only detects a command and enqueues a ``command`` job with what the command
handler needs (the comment, its author and where it was written); the grammar lives in
``bot.commands``. Comments by bots are ignored (Lockwarden's own replies quote commands).
Commands are read only at the start of a line of a top-level paragraph (fences, indented
code, HTML comments, quotes and lists are skipped, as CommonMark reads them), so
documentation of a command does not run it; an edit that leaves the command lines as they
were does not run them again.
"""

from __future__ import annotations

import hashlib

from bot.commands.grammar import command_lines
from bot.jobs.payloads import CommandPayload
from bot.server import messages
from bot.server.events import IssueCommentEvent, parse
from bot.server.webhook import Context, Decision, Delivery, Enqueue, Ignore, Router, make_job

router = Router()


@router.register("issue_comment", "created")
@router.register("issue_comment", "edited")
def on_comment(delivery: Delivery, context: Context) -> Decision:
    event = parse(IssueCommentEvent, delivery.payload)
    comment = event.comment
    author = comment.user
    if author.is_bot:
        return Ignore(messages.COMMENT_BY_BOT.format(login=author.login))
    commands = command_lines(comment.body or "", context.app_slug)
    if not commands:
        return Ignore(messages.COMMENT_NO_COMMAND)
    previous = event.changes.body if event.changes is not None else None
    if (
        delivery.action == "edited"
        and previous is not None
        and command_lines(previous.previous or "", context.app_slug) == commands
    ):
        return Ignore(messages.COMMENT_COMMAND_UNCHANGED)
    if event.installation is None:
        return Ignore(messages.NO_INSTALLATION)
    payload = CommandPayload(
        comment_id=comment.id,
        body=comment.body or "",
        author=author.login,
        author_type=author.type or "",
        author_association=comment.author_association or "",
        issue_number=event.issue.number,
        is_pull_request=event.issue.is_pull_request,
        command_key=hashlib.sha256("\n".join(commands).encode("utf-8")).hexdigest(),
    )
    job = make_job(delivery, "command", event.repository.full_name, event.installation, payload)
    return Enqueue((job,))
