"""Labels on pull requests in the fake GitHub, as on GitHub: added through the issues API,
created on first use, shown on the pull request, and refused with GitHub's 404 and 422."""

from __future__ import annotations

from typing import Any

import pytest
from githubkit import GitHub
from githubkit.exception import RequestFailed

from tests.support.fake_github import FakeGitHub, Installation
from tests.support.test_fake_github import install_client

REPO = "acme/models"


@pytest.fixture
def github(fake: FakeGitHub) -> GitHub[Any]:
    installation: Installation = fake.create_installation("acme")
    fake.create_repo(REPO, files={"requirements.txt": "torch==2.3.0\n"}, installation=installation)
    fake.push_files(REPO, {"requirements.txt": "torch==2.4.0\n"}, branch="lockwarden/security")
    client = install_client(fake, installation)
    client.rest.pulls.create(
        "acme", "models", title="Security fixes", head="lockwarden/security", base="main"
    )
    return client


def refused(call: Any, *args: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(RequestFailed) as info:
        call(*args, **kwargs)
    return info.value.response.status_code, info.value.response.json()


def test_a_label_is_created_on_first_use_and_shown_on_the_pull_request(
    fake: FakeGitHub, github: GitHub[Any]
) -> None:
    before: list[Any] = github.rest.issues.list_labels_for_repo("acme", "models").parsed_data
    assert before == []

    added = github.rest.issues.add_labels("acme", "models", 1, labels=["security"])
    again = github.rest.issues.add_labels("acme", "models", 1, labels=["Security", "deps"])

    assert added.status_code == 200
    names: list[Any] = again.parsed_data
    assert [label.name for label in names] == ["security", "deps"]  # one per name, any case
    assert fake.pull(REPO, 1).labels == ["security", "deps"]
    pull = github.rest.pulls.get("acme", "models", 1).parsed_data
    assert [label.name for label in pull.labels] == ["security", "deps"]
    listed = github.rest.pulls.list("acme", "models", state="open").parsed_data
    assert [label.name for label in listed[0].labels] == ["security", "deps"]
    made = github.rest.issues.get_label("acme", "models", "security").parsed_data
    assert (made.name, made.color, made.default) == ("security", "ededed", False)
    everything: list[Any] = github.rest.issues.list_labels_for_repo("acme", "models").parsed_data
    assert [label.name for label in everything] == ["deps", "security"]


def test_labels_on_a_missing_pull_request_are_a_404_and_create_nothing(
    fake: FakeGitHub, github: GitHub[Any]
) -> None:
    status, body = refused(github.rest.issues.add_labels, "acme", "models", 99, labels=["x"])

    assert (status, body["message"]) == (404, "Not Found")
    assert github.rest.issues.list_labels_for_repo("acme", "models").parsed_data == []
    status, body = refused(github.rest.issues.get_label, "acme", "models", "x")
    assert (status, body["message"]) == (404, "Not Found")


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({}, {"resource": "Label", "code": "custom"}),
        ({"labels": [""]}, {"resource": "Label", "field": "name", "code": "invalid"}),
        ({"labels": ["x" * 51]}, {"resource": "Label", "field": "name", "code": "custom"}),
    ],
)
def test_invalid_labels_are_a_422_and_leave_the_pull_request_as_it_was(
    fake: FakeGitHub, github: GitHub[Any], data: dict[str, Any], error: dict[str, str]
) -> None:
    status, body = refused(github.rest.issues.add_labels, "acme", "models", 1, data=data)

    assert (status, body["message"]) == (422, "Validation Failed")
    assert {key: body["errors"][0][key] for key in error} == error
    assert fake.pull(REPO, 1).labels == []
    assert github.rest.issues.list_labels_for_repo("acme", "models").parsed_data == []


def test_removing_a_label_the_pull_request_lacks_is_a_404(
    fake: FakeGitHub, github: GitHub[Any]
) -> None:
    github.rest.issues.add_labels("acme", "models", 1, labels=["security"])

    status, body = refused(github.rest.issues.remove_label, "acme", "models", 1, "other")
    removed = github.rest.issues.remove_label("acme", "models", 1, "SECURITY")

    assert (status, body["message"]) == (404, "Label does not exist")
    assert removed.parsed_data == []
    assert fake.pull(REPO, 1).labels == []
