"""GitHub's error responses."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

DOCS = "https://docs.github.com/enterprise-server@3.14/rest"


class ApiError(Exception):
    """Raised by the fake's operations; the server turns it into GitHub's error JSON.

    The Python-side helpers (``FakeGitHub.merge_pull`` ...) raise it too, for the same mistakes.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        documentation_url: str = DOCS,
    ) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = dict(headers or {})
        self.documentation_url = documentation_url

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"message": self.message}
        if self.errors is not None:
            data["errors"] = self.errors
        data["documentation_url"] = self.documentation_url
        data["status"] = str(self.status)
        return data


def not_found() -> ApiError:
    return ApiError(404, "Not Found")


def bad_credentials() -> ApiError:
    return ApiError(401, "Bad credentials")


def validation_failed(
    resource: str, message: str, *, field: str | None = None, code: str = "custom"
) -> ApiError:
    error: dict[str, Any] = {"resource": resource, "code": code}
    if field is not None:
        error["field"] = field
    error["message"] = message
    return ApiError(422, "Validation Failed", errors=[error])


def invalid_field(resource: str, field: str, code: str = "invalid") -> ApiError:
    return ApiError(
        422, "Validation Failed", errors=[{"resource": resource, "field": field, "code": code}]
    )


def missing_field(resource: str, field: str) -> ApiError:
    return invalid_field(resource, field, "missing_field")


def default_fault_body(status: int, headers: Mapping[str, str]) -> dict[str, Any]:
    lowered = {k.lower(): v for k, v in headers.items()}
    if status in (403, 429) and "retry-after" in lowered:
        message = (
            "You have exceeded a secondary rate limit. Please wait a few minutes before you "
            "try again. If you reach out to GitHub Support for help, please include the "
            "request ID."
        )
    elif status in (403, 429) and lowered.get("x-ratelimit-remaining") == "0":
        message = "API rate limit exceeded for installation."
    else:
        try:
            message = HTTPStatus(status).phrase
        except ValueError:
            message = "Error"
    return {"message": message, "documentation_url": DOCS, "status": str(status)}


BODY_LIMIT = 65536


def check_body_length(resource: str, body: str | None) -> None:
    """GitHub's 422 for bodies over 65536 characters (its wording differs per resource)."""
    if body is None or len(body) <= BODY_LIMIT:
        return
    if resource == "IssueComment":
        raise validation_failed(
            "IssueComment",
            f"Body is too long (maximum is {BODY_LIMIT} characters)",
            field="data",
            code="unprocessable",
        )
    raise validation_failed(
        "Issue", f"body is too long (maximum is {BODY_LIMIT} characters)", field="body"
    )
