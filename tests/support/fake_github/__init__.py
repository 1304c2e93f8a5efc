"""A stateful fake of GitHub (Enterprise Server style) for end-to-end tests of the bot.

One threaded HTTP server on 127.0.0.1 serves

* the REST API under ``fake.api_url`` (``http://127.0.0.1:<port>/api/v3``), with GitHub App
  authentication (RS256 JWTs checked against the app's key, installation tokens that expire,
  cover only their installation's repositories and can be narrowed to some of them and to
  fewer permissions, with GitHub's 422 messages for anything wider), rate-limit headers,
  pagination ``Link`` headers, ETags, and GitHub's error bodies; every route checks the
  token's repositories (404 "Not Found" outside them) and permissions (403 "Resource not
  accessible by integration");
* GraphQL at ``fake.graphql_url`` (``.../api/graphql``, GHES's path; ``/graphql`` too): the
  ``convertPullRequestToDraft`` and ``markPullRequestReadyForReview`` mutations, with the same
  tokens and GitHub's error shapes;
* git smart HTTP under ``fake.git_url`` (``<git_url>/<owner>/<repo>.git``) through
  ``git http-backend``, with Basic ``x-access-token:<installation token>`` authentication and
  the same narrowing (fetch needs ``contents: read``, push ``contents: write``).

Tests drive it from Python: create installations and repositories, push commits and open
issues as humans, inspect pull requests, comments, check runs, labels, reviewers and reactions,
inject faults (``fail_next``), read the recorded requests, and build signed webhook deliveries::

    with FakeGitHub() as fake:
        inst = fake.create_installation("acme")
        fake.create_repo("acme/models", files={"requirements.in": "torch\\n"}, installation=inst)
        body = fake.encode(fake.payload("push", repo="acme/models"))
        headers = fake.webhook_headers("push", body)
"""

from tests.support.fake_github._errors import ApiError
from tests.support.fake_github._fake import FakeGitHub
from tests.support.fake_github._git import ZERO_SHA, CommitInfo, FileChanges, Person
from tests.support.fake_github._state import (
    CheckRun,
    Delivery,
    Installation,
    Issue,
    IssueComment,
    Label,
    PullRequest,
    Push,
    Reaction,
    RecordedRequest,
    Repo,
    Token,
    User,
)

__all__ = [
    "ZERO_SHA",
    "ApiError",
    "CheckRun",
    "CommitInfo",
    "Delivery",
    "FakeGitHub",
    "FileChanges",
    "Installation",
    "Issue",
    "IssueComment",
    "Label",
    "Person",
    "PullRequest",
    "Push",
    "Reaction",
    "RecordedRequest",
    "Repo",
    "Token",
    "User",
]
