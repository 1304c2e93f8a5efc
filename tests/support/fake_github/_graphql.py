"""GraphQL: ``POST /graphql`` (github.com's path) and ``POST /api/graphql`` (GitHub Enterprise
Server's, which githubkit derives from an ``.../api/v3`` base URL).

Two mutations, the draft switches REST cannot make: ``convertPullRequestToDraft`` and
``markPullRequestReadyForReview``, each with ``input: {pullRequestId, clientMutationId}`` and a
payload of ``pullRequest { id isDraft number state }`` and ``clientMutationId``. Anything else
is refused as GitHub refuses it: ``Field 'x' doesn't exist on type 'Mutation'``.

GitHub's shapes: a document that does not parse or validate gives HTTP 200 with ``errors`` and
no ``data``; a mutation that fails gives ``data: {"<field>": null}`` and an error with a
``type`` (``NOT_FOUND``, ``FORBIDDEN``, ``UNPROCESSABLE``), ``path`` and ``locations``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.support.fake_github._graphql_syntax import (
    Field,
    GraphQLSyntaxError,
    Operation,
    Variable,
    parse,
)
from tests.support.fake_github._render import installation_level_ok, node_id
from tests.support.fake_github._state import JSON, PullRequest, Repo

if TYPE_CHECKING:
    from tests.support.fake_github._fake import FakeGitHub
    from tests.support.fake_github._server import Auth

GRAPHQL_PATHS = ("/graphql", "/api/graphql")
GRAPHQL_DOCS = "https://docs.github.com/graphql"

# mutation: (input type, payload type, draft afterwards, what it does, for messages)
MUTATIONS = {
    "convertPullRequestToDraft": (
        "ConvertPullRequestToDraftInput",
        "ConvertPullRequestToDraftPayload",
        True,
        "converted to a draft",
    ),
    "markPullRequestReadyForReview": (
        "MarkPullRequestReadyForReviewInput",
        "MarkPullRequestReadyForReviewPayload",
        False,
        "marked ready for review",
    ),
}
INPUT_FIELDS = ("pullRequestId", "clientMutationId")
PAYLOAD_FIELDS = ("pullRequest", "clientMutationId", "__typename")
PULL_REQUEST_FIELDS = ("id", "isDraft", "number", "state", "__typename")
Result = tuple[int, JSON]


class Invalid(Exception):
    """A validation error: the document is refused whole, before anything runs."""

    def __init__(self, message: str, at: Field | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.error: JSON = {"message": message, **extra}
        if at is not None:
            self.error["locations"] = [{"line": at.line, "column": at.column}]


class Failed(Exception):
    """A mutation that ran and failed: its field is null and the error has a ``type``."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_
        self.message = message


@dataclass(frozen=True)
class Call:
    """One validated mutation field."""

    field: Field
    input: dict[str, Any]


def handle_graphql(fake: FakeGitHub, body: bytes, auth: Auth) -> Result:
    if auth.kind == "none":
        return 401, {
            "message": "This endpoint requires you to be authenticated.",
            "documentation_url": f"{GRAPHQL_DOCS}/guides/forming-calls-with-graphql"
            "#authenticating-with-graphql",
        }
    if auth.kind != "installation" or auth.token is None:
        return 401, {"message": "Bad credentials", "documentation_url": GRAPHQL_DOCS}
    try:
        request = json.loads(body or b"null")
    except ValueError:
        return 400, {"message": "Problems parsing JSON", "documentation_url": GRAPHQL_DOCS}
    query = request.get("query") if isinstance(request, dict) else None
    if not isinstance(query, str):
        return 200, {
            "errors": [{"message": "A query attribute must be specified and must be a string."}]
        }
    variables = request.get("variables") or {}
    try:
        calls = validate(parse(query), variables if isinstance(variables, dict) else {})
    except GraphQLSyntaxError as exc:
        return 200, exc.body()
    except Invalid as exc:
        return 200, {"errors": [exc.error]}
    with fake.lock:
        return 200, execute(fake, auth, calls)


# -- validation ------------------------------------------------------------------------------


def validate(operation: Operation, variables: dict[str, Any]) -> list[Call]:
    """The mutation fields with their ``input`` resolved; raises ``Invalid``."""
    type_name = "Mutation" if operation.kind == "mutation" else "Query"
    declared = {d.name: d for d in operation.variables}
    label = (
        f"{operation.kind} {operation.name}" if operation.name else f"anonymous {operation.kind}"
    )
    calls = []
    for field in operation.selections:
        if field.name not in MUTATIONS or type_name != "Mutation":
            raise _undefined_field(field, type_name, [operation.kind])
        input_type, payload_type, _, _ = MUTATIONS[field.name]
        _check_selections(field, payload_type, [operation.kind, field.key])
        if set(field.arguments) != {"input"}:
            raise Invalid(
                f"Field '{field.name}' is missing required arguments: input"
                if "input" not in field.arguments
                else f"Field '{field.name}' doesn't accept argument "
                f"'{next(a for a in field.arguments if a != 'input')}'",
                field,
                path=[operation.kind, field.key],
            )
        value = _resolve(field.arguments["input"], declared, variables, label, field)
        calls.append(Call(field, _checked_input(value, input_type, field)))
    return calls


def _check_selections(field: Field, payload_type: str, path: list[str]) -> None:
    if not field.selections:
        raise Invalid(
            f"Field must have selections (field '{field.name}' returns {payload_type} but has "
            "no selections. Did you mean '" + field.name + " { ... }'?)",
            field,
            path=path,
        )
    for selected in field.selections:
        if selected.name not in PAYLOAD_FIELDS:
            raise _undefined_field(selected, payload_type, path)
        if selected.name != "pullRequest":
            continue
        if not selected.selections:
            raise Invalid(
                "Field must have selections (field 'pullRequest' returns PullRequest but has no "
                "selections. Did you mean 'pullRequest { ... }'?)",
                selected,
                path=[*path, selected.key],
            )
        for inner in selected.selections:
            if inner.name not in PULL_REQUEST_FIELDS or inner.selections:
                raise _undefined_field(inner, "PullRequest", [*path, selected.key])


def _undefined_field(field: Field, type_name: str, path: list[str]) -> Invalid:
    return Invalid(
        f"Field '{field.name}' doesn't exist on type '{type_name}'",
        field,
        path=[*path, field.key],
        extensions={"code": "undefinedField", "typeName": type_name, "fieldName": field.name},
    )


def _resolve(
    value: Any, declared: dict[str, Any], variables: dict[str, Any], label: str, at: Field
) -> Any:
    """``value`` with its variables replaced by what the request sent."""
    if isinstance(value, Variable):
        definition = declared.get(value.name)
        if definition is None:
            raise Invalid(f"Variable ${value.name} is used by {label} but not declared", at)
        sent = variables.get(value.name, definition.default)
        if sent is None and definition.type.endswith("!"):
            raise Invalid(
                f"Variable ${value.name} of type {definition.type} was provided invalid value",
                at,
                extensions={
                    "value": None,
                    "problems": [{"path": [], "explanation": "Expected value to not be null"}],
                },
            )
        return sent
    if isinstance(value, dict):
        return {k: _resolve(v, declared, variables, label, at) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, declared, variables, label, at) for v in value]
    return value


def _checked_input(value: Any, input_type: str, at: Field) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Invalid(f"Argument 'input' on Field '{at.name}' has an invalid value", at)
    for key in value:
        if key not in INPUT_FIELDS:
            raise Invalid(f"InputObject '{input_type}' doesn't accept argument '{key}'", at)
    if not isinstance(value.get("pullRequestId"), str):
        raise Invalid(
            f"Argument 'pullRequestId' on InputObject '{input_type}' is required. "
            "Expected type ID!",
            at,
        )
    return value


# -- execution -------------------------------------------------------------------------------


def execute(fake: FakeGitHub, auth: Auth, calls: list[Call]) -> JSON:
    """Runs the mutations in order, as GitHub does; each fails on its own."""
    data: JSON = {}
    errors: list[JSON] = []
    for call in calls:
        try:
            data[call.field.key] = _run(fake, auth, call)
        except Failed as exc:
            data[call.field.key] = None
            errors.append(
                {
                    "type": exc.type,
                    "path": [call.field.key],
                    "locations": [{"line": call.field.line, "column": call.field.column}],
                    "message": exc.message,
                }
            )
    return {"data": data, "errors": errors} if errors else {"data": data}


def _run(fake: FakeGitHub, auth: Auth, call: Call) -> JSON:
    _, _, draft, done = MUTATIONS[call.field.name]
    global_id = call.input["pullRequestId"]
    found = find_pull(fake, global_id)
    assert auth.token is not None
    if found is None or not fake.token_covers(auth.token, found[0]):
        raise Failed(
            "NOT_FOUND", f"Could not resolve to a node with the global id of '{global_id}'"
        )
    pr = found[1]
    if not installation_level_ok(auth.token.permissions.get("pull_requests"), "write"):
        raise Failed("FORBIDDEN", "Resource not accessible by integration")
    if pr.state != "open":
        state = "merged" if pr.merged else "closed"
        raise Failed("UNPROCESSABLE", f"Pull request #{pr.number} is {state}; it cannot be {done}.")
    if pr.draft != draft:
        pr.draft = draft
        pr.updated_at = time.time()
    return _select(call, pr)


def find_pull(fake: FakeGitHub, global_id: str) -> tuple[Repo, PullRequest] | None:
    """The pull request whose ``node_id`` is ``global_id``."""
    for repo in fake.all_repos():
        for pr in repo.pulls.values():
            if node_id("PR", pr.id) == global_id:
                return repo, pr
    return None


def _select(call: Call, pr: PullRequest) -> JSON:
    """The payload with the fields the document selected, under their aliases."""
    _, payload_type, _, _ = MUTATIONS[call.field.name]
    out: JSON = {}
    for selected in call.field.selections:
        if selected.name == "pullRequest":
            out[selected.key] = {f.key: _pull_field(f.name, pr) for f in selected.selections}
        elif selected.name == "clientMutationId":
            out[selected.key] = call.input.get("clientMutationId")
        else:
            out[selected.key] = payload_type  # __typename
    return out


def _pull_field(name: str, pr: PullRequest) -> Any:
    values = {
        "id": node_id("PR", pr.id),
        "isDraft": pr.draft,
        "number": pr.number,
        "state": "MERGED" if pr.merged else pr.state.upper(),
        "__typename": "PullRequest",
    }
    return values[name]
