"""The permission sets of the jobs: what the App requests covers them all, and none is wider
than the App's manifest allows."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.github.scopes import (
    APP_PERMISSIONS,
    CHECK_RUN_ONLY,
    INSTALLATION_LISTING,
    JOB_ACCESS,
    PUBLISH_PULL_REQUEST,
    Access,
    union,
)

MANIFEST = Path(__file__).parents[2] / "app.yml"


def test_the_manifest_requests_exactly_what_the_jobs_need() -> None:
    requested = yaml.safe_load(MANIFEST.read_text("utf-8"))["default_permissions"]
    assert requested == dict(APP_PERMISSIONS)
    assert APP_PERMISSIONS == {
        "checks": "write",
        "contents": "write",
        "issues": "write",
        "metadata": "read",
        "pull_requests": "write",
    }


def test_every_set_is_within_what_the_app_requests() -> None:
    app = Access.of("the App", **APP_PERMISSIONS)  # type: ignore[arg-type]
    for access in [*JOB_ACCESS.values(), CHECK_RUN_ONLY, INSTALLATION_LISTING]:
        assert app.covers(access.as_dict()), access.purpose


def test_jobs_without_github_work_get_no_token() -> None:
    assert set(JOB_ACCESS) == {"refresh", "onboard", "command", "cleanup", "security"}
    assert "forget" not in JOB_ACCESS


def test_covers_refuses_a_missing_permission_or_a_higher_level() -> None:
    assert PUBLISH_PULL_REQUEST.covers({"contents": "read", "metadata": "read"})
    assert not PUBLISH_PULL_REQUEST.covers({"issues": "write"})
    assert not CHECK_RUN_ONLY.covers({"contents": "write"})
    assert not CHECK_RUN_ONLY.covers({"contents": "admin"})


def test_union_keeps_the_strongest_level() -> None:
    assert union([CHECK_RUN_ONLY, PUBLISH_PULL_REQUEST])["contents"] == "write"
    assert union([INSTALLATION_LISTING]) == {"metadata": "read"}
