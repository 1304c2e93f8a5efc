"""Every status, reason and message the webhook receiver answers with, in one place.

GitHub shows a delivery's response body in the App's "Recent Deliveries" page, so these are
what an administrator reads when asking "why did the bot not react?".
"""

from __future__ import annotations

# -- statuses (the "status" field of every JSON answer) --------------------------------------
STATUS_OK = "ok"
STATUS_PONG = "pong"
STATUS_QUEUED = "queued"
STATUS_IGNORED = "ignored"
STATUS_DUPLICATE = "duplicate"
STATUS_COALESCED = "coalesced"
WORKER_RUNNING = "running"
WORKER_STOPPED = "stopped"
STATUS_ERROR = "error"
STATUS_INVALID = "invalid"
STATUS_UNAVAILABLE = "unavailable"

# -- request errors --------------------------------------------------------------------------
BODY_TOO_LARGE = "the body is larger than {limit} bytes"
BAD_CONTENT_LENGTH = "the Content-Length header is not a number"
CLIENT_DISCONNECTED = "the client disconnected before sending the whole body"
SIGNATURE_MISSING = "the X-Hub-Signature-256 header is missing"
SIGNATURE_MALFORMED = "the X-Hub-Signature-256 header is not 'sha256=' and 64 hex digits"
SIGNATURE_MISMATCH = "the signature does not match the body (check the webhook secret)"
HEADER_MISSING = "the {header} header is missing"
HEADER_INVALID = "the {header} header is not valid"
BODY_NOT_JSON = "the body is not valid JSON: {error}"
BODY_NOT_OBJECT = "the body is not a JSON object"
BODY_NOT_UTF8 = "the body is not UTF-8 (byte {offset}); send the payload as application/json"
BODY_TOO_DEEP = "the body nests JSON more than {limit} levels deep"
PAYLOAD_INVALID = "{field}: {error}"
QUEUE_UNAVAILABLE = "the job queue is unavailable; GitHub can deliver again later"
INTERNAL_ERROR = "the delivery could not be handled; see the receiver's log"

# -- readiness -------------------------------------------------------------------------------
QUEUE_READY = "ready"
QUEUE_NOT_READY = "not ready"

# -- start-up --------------------------------------------------------------------------------
SIGNING_NOT_CONFIGURED = (
    "LOCKWARDEN_WEBHOOK_SECRET is not set: the receiver cannot verify deliveries without it. "
    "Set it to the webhook secret of the GitHub App."
)

# -- reasons for ignoring a delivery ---------------------------------------------------------
EVENT_NOT_HANDLED = "event '{event}' is not handled"
ACTION_NOT_HANDLED = "action '{action}' of event '{event}' is not handled"
NO_INSTALLATION = "the delivery names no installation (is this a repository webhook?)"

PUSH_TAG = "a tag push"
PUSH_DELETED = "the branch was deleted"
PUSH_OTHER_BRANCH = "a push to {ref}, not to the default branch '{default_branch}'"
PUSH_NOT_A_BRANCH = "a push to {ref}, which is not a branch"
PUSH_BY_SELF = "a push by {login}, Lockwarden itself"
PUSH_NO_RELEVANT_FILES = "no spec, lock, Dockerfile or Lockwarden config file changed"

INSTALLATION_NO_REPOSITORIES = "the delivery lists no repositories"

PR_NOT_CLOSED = "the pull request is not closed"
PR_NOT_BOT_BRANCH = "the head branch '{ref}' is not a Lockwarden branch"
PR_FOREIGN_HEAD = "the head branch belongs to {head_repo}, not to {repo}"

COMMENT_BY_BOT = "a comment by {login}, a bot"
COMMENT_NO_COMMAND = "the comment has no Lockwarden command"
COMMENT_COMMAND_UNCHANGED = "the edit did not change the comment's commands"

CHECK_RUN_OTHER_NAME = "the check run '{name}' is not Lockwarden's"
CHECK_RUN_OTHER_APP = "the check run belongs to the app '{slug}'"
CHECK_RUN_NO_BRANCH = "the check run's head branch is unknown (a fork's pull request?)"

CHECK_SUITE_REQUESTED = (
    "a new check suite needs no job: Lockwarden creates its check run when it refreshes"
)
CHECK_SUITE_OTHER_APP = "the check suite belongs to the app '{slug}'"
CHECK_SUITE_NO_BRANCH = (
    "the check suite has no head branch (a fork's pull request, or a branch deleted since)"
)
CHECK_SUITE_OTHER_BRANCH = (
    "the check suite is on '{branch}', neither a Lockwarden branch nor the default branch; "
    "re-run from the "
    "Lockwarden pull request's Checks tab, or comment /lockwarden refresh"
)
