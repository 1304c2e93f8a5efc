"""The fake GitHub's GraphQL: the draft mutations through githubkit's own GraphQL client, on a
GHES base URL (``.../api/v3`` posts to ``/api/graphql``) and a github.com-style one (``/``
posts to ``/graphql``), and GitHub's error shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from githubkit import GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GraphQLFailed
from githubkit.graphql import GraphQLError, GraphQLResponse

from tests.support.fake_github import FakeGitHub, Installation, PullRequest

REPO = "acme/models"
TO_DRAFT = """
mutation($id: ID!) {
  convertPullRequestToDraft(input: {pullRequestId: $id}) { pullRequest { id isDraft } }
}
"""
READY = """
mutation($id: ID!) {
  markPullRequestReadyForReview(input: {pullRequestId: $id}) { pullRequest { id isDraft } }
}
"""


@pytest.fixture
def inst(fake: FakeGitHub) -> Installation:
    installation = fake.create_installation("acme")
    fake.create_repo(REPO, files={"README.md": "hi\n"}, installation=installation)
    return installation


@pytest.fixture
def pull(fake: FakeGitHub, inst: Installation) -> PullRequest:
    fake.push_files(REPO, {"requirements.txt": "numpy==2.0.0\n"}, branch="lockwarden/refresh")
    return fake.open_pull(REPO, head="lockwarden/refresh", title="Update locks", user="bot")


def client(
    fake: FakeGitHub, inst: Installation, *, base: str = "ghes", **grants: str
) -> GitHub[Any]:
    """githubkit with an installation token (narrowed to ``grants`` when given), on the GHES
    base URL (``.../api/v3``) or a github.com-style one (the server's root)."""
    token = fake.issue_token(inst, permissions=grants or None).token
    base_url = fake.api_url if base == "ghes" else fake.git_url + "/"
    return GitHub(TokenAuthStrategy(token), base_url=base_url, cache_strategy=MemCacheStrategy())


def pull_node_id(gh: GitHub[Any], number: int) -> str:
    """The pull request's ``node_id`` as REST shows it."""
    owner, name = REPO.split("/")
    return gh.rest.pulls.get(owner, name, number).parsed_data.node_id


def graphql_failure(gh: GitHub[Any], query: str, variables: dict[str, Any]) -> GraphQLResponse:
    """The response of a request githubkit raises ``GraphQLFailed`` for."""
    with pytest.raises(GraphQLFailed) as info:
        gh.graphql(query, variables)
    return info.value.response


def graphql_errors(gh: GitHub[Any], query: str, variables: dict[str, Any]) -> list[GraphQLError]:
    return list(graphql_failure(gh, query, variables).errors or [])


# -- the mutations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path"), [("ghes", "/api/graphql"), ("github.com", "/graphql")], ids=["ghes", "dotcom"]
)
def test_draft_and_ready_again_through_githubkit(
    fake: FakeGitHub, inst: Installation, pull: PullRequest, base: str, path: str
) -> None:
    rest = client(fake, inst)
    gh = client(fake, inst, base=base)
    pr_id = pull_node_id(rest, pull.number)
    assert pr_id.startswith("PR_")

    drafted = gh.graphql(TO_DRAFT, {"id": pr_id})

    assert drafted == {"convertPullRequestToDraft": {"pullRequest": {"id": pr_id, "isDraft": True}}}
    assert fake.pull(REPO, pull.number).draft is True
    owner, name = REPO.split("/")
    assert rest.rest.pulls.get(owner, name, pull.number).parsed_data.draft is True

    ready = gh.graphql(READY, {"id": pr_id})

    assert ready == {
        "markPullRequestReadyForReview": {"pullRequest": {"id": pr_id, "isDraft": False}}
    }
    assert fake.pull(REPO, pull.number).draft is False
    posted = fake.requests_to("POST", f"^{path}$")
    assert [(r.status, r.auth) for r in posted] == [(200, f"installation:{inst.id}")] * 2


def test_async_client_named_operation_aliases_and_client_mutation_id(
    fake: FakeGitHub, inst: Installation, pull: PullRequest
) -> None:
    gh = client(fake, inst)
    pr_id = pull_node_id(gh, pull.number)
    query = """
    # a comment, commas and a named operation are all GraphQL
    mutation Draft($id: ID!, $client: String = "lw-1") {
      first: convertPullRequestToDraft(input: {pullRequestId: $id, clientMutationId: $client}) {
        clientMutationId
        __typename
        pr: pullRequest { number, state, isDraft, __typename }
      }
    }
    """
    result = asyncio.run(gh.async_graphql(query, {"id": pr_id}))

    assert result == {
        "first": {
            "clientMutationId": "lw-1",
            "__typename": "ConvertPullRequestToDraftPayload",
            "pr": {
                "number": pull.number,
                "state": "OPEN",
                "isDraft": True,
                "__typename": "PullRequest",
            },
        }
    }


def test_converting_a_draft_again_leaves_it_a_draft(
    fake: FakeGitHub, inst: Installation, pull: PullRequest
) -> None:
    gh = client(fake, inst)
    pr_id = pull_node_id(gh, pull.number)
    gh.graphql(TO_DRAFT, {"id": pr_id})

    again = gh.graphql(TO_DRAFT, {"id": pr_id})

    assert again["convertPullRequestToDraft"]["pullRequest"]["isDraft"] is True


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "token ghs_not_a_token"], ids=["missing", "invalid"])
def test_without_a_valid_token_it_is_401(
    fake: FakeGitHub, pull: PullRequest, header: str | None
) -> None:
    headers = {"Authorization": header} if header else {}
    before = pull.draft

    response = httpx.post(
        fake.graphql_url, json={"query": TO_DRAFT, "variables": {"id": "PR_x"}}, headers=headers
    )

    assert response.status_code == 401
    expected = "Bad credentials" if header else "This endpoint requires you to be authenticated."
    assert response.json()["message"] == expected
    assert fake.pull(REPO, pull.number).draft is before


def test_an_unknown_node_id_is_not_found(fake: FakeGitHub, inst: Installation) -> None:
    gh = client(fake, inst)

    [error] = graphql_errors(gh, TO_DRAFT, {"id": "PR_kwDOnothere"})

    assert error.type == "NOT_FOUND"
    assert error.message == "Could not resolve to a node with the global id of 'PR_kwDOnothere'"
    assert error.path == ["convertPullRequestToDraft"]
    assert error.locations is not None
    assert error.locations[0].line == 3


def test_a_pull_request_outside_the_tokens_repositories_is_not_found(
    fake: FakeGitHub, inst: Installation, pull: PullRequest
) -> None:
    pr_id = pull_node_id(client(fake, inst), pull.number)
    fake.create_repo("acme/other", files={"a": "a"}, installation=inst)
    token = fake.issue_token(inst, repositories=["acme/other"]).token
    narrowed = GitHub(TokenAuthStrategy(token), base_url=fake.api_url)

    [error] = graphql_errors(narrowed, TO_DRAFT, {"id": pr_id})

    assert (error.type, error.message) == (
        "NOT_FOUND",
        f"Could not resolve to a node with the global id of '{pr_id}'",
    )
    assert fake.pull(REPO, pull.number).draft is False


def test_a_token_without_pull_requests_write_is_forbidden(
    fake: FakeGitHub, inst: Installation, pull: PullRequest
) -> None:
    pr_id = pull_node_id(client(fake, inst), pull.number)
    gh = client(fake, inst, metadata="read", pull_requests="read", contents="write")

    response = graphql_failure(gh, TO_DRAFT, {"id": pr_id})

    assert response.data == {"convertPullRequestToDraft": None}
    [error] = response.errors or []
    assert (error.type, error.message) == ("FORBIDDEN", "Resource not accessible by integration")
    assert error.path == ["convertPullRequestToDraft"]
    assert fake.pull(REPO, pull.number).draft is False


@pytest.mark.parametrize("merged", [False, True], ids=["closed", "merged"])
def test_a_closed_or_merged_pull_request_is_unprocessable(
    fake: FakeGitHub, inst: Installation, pull: PullRequest, merged: bool
) -> None:
    gh = client(fake, inst)
    pr_id = pull_node_id(gh, pull.number)
    if merged:
        fake.merge_pull(REPO, pull.number)
    else:
        fake.close_pull(REPO, pull.number)

    [error] = graphql_errors(gh, TO_DRAFT, {"id": pr_id})

    state = "merged" if merged else "closed"
    assert error.type == "UNPROCESSABLE"
    assert (
        error.message
        == f"Pull request #{pull.number} is {state}; it cannot be converted to a draft."
    )
    assert fake.pull(REPO, pull.number).draft is False


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        pytest.param(
            'mutation { mergePullRequest(input: {pullRequestId: "x"}) { clientMutationId } }',
            {},
            "Field 'mergePullRequest' doesn't exist on type 'Mutation'",
            id="other-mutation",
        ),
        pytest.param(
            "query { viewer { login } }",
            {},
            "Field 'viewer' doesn't exist on type 'Query'",
            id="query",
        ),
        pytest.param(
            "mutation($id: ID!) { convertPullRequestToDraft(input: {pullRequestId: $id}) "
            "{ pullRequest { title } } }",
            {"id": "x"},
            "Field 'title' doesn't exist on type 'PullRequest'",
            id="unknown-pull-request-field",
        ),
        pytest.param(
            "mutation { convertPullRequestToDraft(input: {pullRequestId: $id}) "
            "{ clientMutationId } }",
            {"id": "x"},
            "Variable $id is used by anonymous mutation but not declared",
            id="undeclared-variable",
        ),
        pytest.param(
            TO_DRAFT,
            {},
            "Variable $id of type ID! was provided invalid value",
            id="missing-variable",
        ),
        pytest.param(
            'mutation { convertPullRequestToDraft(input: {pullRequestId: "x", draft: true}) '
            "{ clientMutationId } }",
            {},
            "InputObject 'ConvertPullRequestToDraftInput' doesn't accept argument 'draft'",
            id="unknown-input-field",
        ),
        pytest.param(
            "mutation { convertPullRequestToDraft { clientMutationId } }",
            {},
            "Field 'convertPullRequestToDraft' is missing required arguments: input",
            id="no-input",
        ),
    ],
)
def test_documents_outside_the_subset_are_refused_whole(
    fake: FakeGitHub,
    inst: Installation,
    pull: PullRequest,
    query: str,
    variables: dict[str, Any],
    message: str,
) -> None:
    gh = client(fake, inst)

    response = graphql_failure(gh, query, variables)

    assert response.data is None
    assert [e.message for e in response.errors or []] == [message]
    assert fake.pull(REPO, pull.number).draft is False


@pytest.mark.parametrize(
    ("query", "message", "line", "column"),
    [
        (
            "mutation { convertPullRequestToDraft(input: {}) }}",
            'Parse error on "}" (RCURLY)',
            1,
            50,
        ),
        ("mutation {\n  x(a: 1) { ...Frag }\n}", 'Parse error on "..." (ELLIPSIS)', 2, 13),
        ("mutation { x(a: %) }", 'Parse error on "%" (error)', 1, 17),
        ("mutation { x", "Unexpected end of document", None, None),
    ],
    ids=["extra-brace", "fragment", "bad-character", "unfinished"],
)
def test_syntax_errors_have_githubs_parse_error_shape(
    fake: FakeGitHub,
    inst: Installation,
    query: str,
    message: str,
    line: int | None,
    column: int | None,
) -> None:
    token = fake.issue_token(inst).token

    response = httpx.post(
        fake.graphql_url, json={"query": query}, headers={"Authorization": f"bearer {token}"}
    )

    assert response.status_code == 200
    [error] = response.json()["errors"]
    assert "data" not in response.json()
    assert error["message"].startswith(message)
    if line is not None:
        assert error["message"].endswith(f"at [{line}, {column}]")
        assert error["locations"] == [{"line": line, "column": column}]


def test_a_body_without_a_query_string_is_refused(fake: FakeGitHub, inst: Installation) -> None:
    token = fake.issue_token(inst).token
    headers = {"Authorization": f"token {token}"}

    no_query = httpx.post(fake.graphql_url, json={"variables": {}}, headers=headers)
    not_json = httpx.post(fake.graphql_url, content=b"{", headers=headers)

    assert (no_query.status_code, no_query.json()["errors"][0]["message"]) == (
        200,
        "A query attribute must be specified and must be a string.",
    )
    assert (not_json.status_code, not_json.json()["message"]) == (400, "Problems parsing JSON")
