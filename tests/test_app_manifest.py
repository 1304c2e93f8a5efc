"""The GitHub App manifest asks for the events the receiver routes and no more permission
than the bot uses."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[1] / "app.yml"


def test_manifest_fields_and_minimal_permissions() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text("utf-8"))

    assert manifest["name"] == "Lockwarden"
    assert manifest["hook_attributes"]["url"].endswith("/webhook")
    assert set(manifest["default_events"]) == {
        "push",
        "pull_request",
        "issue_comment",
        "installation",
        "installation_repositories",
        "check_run",
        "check_suite",
    }
    assert manifest["default_permissions"] == {
        "contents": "write",
        "pull_requests": "write",
        "issues": "write",
        "checks": "write",
        "metadata": "read",
    }
    assert manifest["public"] is False
