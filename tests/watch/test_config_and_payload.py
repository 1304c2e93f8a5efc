"""The ``watch:`` field, the yanks a refresh payload carries, the pull request's yank
section, and what the watch records of a checkout."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import parse_config
from bot.errors import ConfigError
from bot.jobs.payloads import JobPayloadError, RefreshPayload, Yank
from bot.jobs.queue import JobRequest
from bot.report.pull_request import yanked_notes
from bot.upstream.index import PYPI_SIMPLE
from bot.watch.pins import Pin, repo_pins, watch_policy

PATH = ".github/lockwarden.yml"


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("watch: [torch, NumPy]\n", ("packages", ("torch", "numpy"))),
        ("watch: security\n", ("security", ())),
        ("{}\n", ("none", ())),
        ("watch: []\n", ("none", ())),
    ],
)
def test_watch_forms(text: str, policy: tuple[str, tuple[str, ...]]) -> None:
    assert watch_policy(parse_config(text, PATH)) == policy


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("watch: torch\n", "watch", "write 'security', or list package names ([torch])"),
        ("watch: [security, numpy]\n", "watch[0]", "write 'watch: security' alone"),
        ("watch: ['a b']\n", "watch[0]", "'a b' is not a package name"),
        ("watch: {torch: 1}\n", "watch", "give a list of package names, or the word security"),
    ],
)
def test_a_wrong_watch_names_the_field(text: str, field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, PATH)
    assert f"(field '{field}')" in str(caught.value)
    assert message in str(caught.value)


def job(**payload: object) -> JobRequest:
    return JobRequest("refresh", "acme/one", 7, "watch:acme/one:t", payload)


def test_yanks_survive_the_queue_and_old_payloads_still_parse() -> None:
    made = RefreshPayload(
        mode="targeted", packages=("numpy",), yanked=(Yank("numpy", "1.26.3", "bad ABI"),)
    )
    assert made.to_json()["yanked"] == [
        {"package": "numpy", "version": "1.26.3", "reason": "bad ABI"}
    ]
    assert RefreshPayload.of(job(**made.to_json())) == made
    assert RefreshPayload.of(job(mode="targeted", packages=["numpy"])).yanked == ()


def test_a_malformed_yank_names_the_field() -> None:
    with pytest.raises(JobPayloadError) as caught:
        RefreshPayload.of(job(yanked=[{"package": "numpy"}]))
    assert "payload field 'yanked' must list package/version/reason" in str(caught.value)


def test_the_yank_section_quotes_the_reason_as_text() -> None:
    notes = yanked_notes(
        [
            ("numpy", "1.26.3", "see https://x.example [here](javascript:x)\n# heading"),
            ("a", "1", ""),
        ]
    )
    assert notes.startswith("### Yanked upstream")
    assert "- numpy 1.26.3 was yanked: " in notes
    assert "[here](" not in notes  # escaped: no link
    assert "\n# heading" not in notes
    assert "- a 1 was yanked (the index gives no reason)" in notes
    assert yanked_notes([]) == ""
    assert len(yanked_notes([("a", "1", "x" * 10_000)])) < 1000


LOCK = "beta==1.0.0\n    # via -r requirements/serve.in\ngamma==2.0\n"


def checkout(root: Path, lock_head: str = "") -> Path:
    (root / "requirements").mkdir(parents=True)
    (root / "requirements/serve.in").write_text("beta\ngamma\n")
    (root / "requirements/serve.txt").write_text(lock_head + LOCK)
    return root


ENV = "environments:\n  - name: serve\n    spec: requirements/serve.in\n"


def test_pins_name_the_index_the_lock_or_config_gives(tmp_path: Path) -> None:
    root = checkout(tmp_path / "a", "--index-url https://mirror.example/simple/\n")
    pins = repo_pins(root, "acme/a", 7, parse_config(ENV, PATH)).pins
    assert pins == (
        Pin("https://mirror.example/simple", "beta", "1.0.0"),
        Pin("https://mirror.example/simple", "gamma", "2.0"),
    )
    plain = checkout(tmp_path / "b")
    assert {p.index_url for p in repo_pins(plain, "acme/b", 7, parse_config(ENV, PATH)).pins} == {
        PYPI_SIMPLE
    }


@pytest.mark.parametrize(
    "url",
    [
        "https://user:secret@private.example/simple",
        "https://${TOKEN}@private.example/simple",
        "file:///srv/wheels",
    ],
)
def test_credentials_and_local_indexes_are_never_recorded(tmp_path: Path, url: str) -> None:
    root = checkout(tmp_path / "repo", f"--index-url {url}\n")
    recorded = repo_pins(root, "acme/a", 7, parse_config(ENV, PATH))
    assert recorded.pins == ()
    assert "secret" not in repr(recorded)


def test_a_missing_or_unreadable_lock_is_left_out(tmp_path: Path) -> None:
    root = checkout(tmp_path / "repo")
    (root / "requirements/serve.txt").unlink()
    assert repo_pins(root, "acme/a", 7, parse_config(ENV, PATH)).pins == ()


def test_a_lock_that_leads_outside_the_checkout_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("leaked==1.0\n")
    root = checkout(tmp_path / "repo")
    (root / "requirements/serve.txt").unlink()
    (root / "requirements/serve.txt").symlink_to(outside)
    recorded = repo_pins(root, "acme/a", 7, parse_config(ENV, PATH))
    assert recorded.pins == ()
    assert "leaked" not in repr(recorded)
