"""The signals stage in a real refresh: advisories fixed, left, introduced and blocked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.report.terminal import render_summary
from tests.pipeline.conftest import Repo, env_config, new_repo
from tests.support.advisory_service import AdvisoryService
from tests.support.index_server import PackageIndex, unused_local_url


def _repo_with_old_lock(tmp_path: Path, index: PackageIndex) -> Repo:
    """serve locked at hcore 1.0 and tokenbag 0.3; newer releases published afterwards."""
    index.publish("hcore", "1.0")
    index.publish("tokenbag", "0.3")
    repo = new_repo(tmp_path, index)
    repo.spec("serve", "hcore<2", "tokenbag")
    repo.configure(env_config("serve"))
    first = repo.refresh(build=False, test=False)
    assert first.compiled.results[0].status == "changed"
    for name, version in (
        ("hcore", "1.1"),
        ("hcore", "1.2"),
        ("hcore", "2.0"),
        ("tokenbag", "0.4"),
    ):
        index.publish(name, version)
    return repo


@pytest.mark.slow
def test_an_upgrade_fixes_leaves_introduces_and_names_the_blocking_line(
    tmp_path: Path, package_index: PackageIndex, advisory_service: AdvisoryService
) -> None:
    repo = _repo_with_old_lock(tmp_path, package_index)

    result = repo.refresh(upgrade=True, build=False, test=False)

    assert repo.pins("serve") == {"hcore": "1.2", "tokenbag": "0.4"}
    (serve,) = result.signals.advisories
    assert [a.id for a in serve.fixed] == ["PYSEC-2099-11"]
    assert [(a.id, a.version) for a in serve.left] == [("GHSA-h1h1-c0re-0002", "1.2")]
    assert [a.id for a in serve.introduced] == ["GHSA-t0ke-nbag-0004"]
    (blocked,) = serve.blocked
    assert (blocked.advisory.id, blocked.spec, blocked.requirement) == (
        "GHSA-h1h1-c0re-0002",
        "requirements/serve.in:1",
        "hcore<2",
    )
    markdown = render_markdown(result)
    assert (
        "- fixes PYSEC-2099-11 (CVE-2099-1111, GHSA-h1h1-c0re-0001) in hcore 1.0 → 1.2" in markdown
    )
    summary = render_summary(result)
    assert (
        "serve: leaves GHSA-h1h1-c0re-0002 (CVE-2099-2222) in hcore 1.2 (fixed in 2.0)" in summary
    )
    assert "serve: introduces GHSA-t0ke-nbag-0004 (CVE-2099-4444) in tokenbag 0.4" in summary
    assert "no fixed version (2.0) is allowed by requirements/serve.in:1: `hcore<2`" in summary
    document = json.loads(json.dumps(to_json(result)))
    (env,) = document["signals"]["advisories"]
    assert env["fixed"][0]["to"] == "1.2"
    assert env["blocked"] == [
        {"id": "GHSA-h1h1-c0re-0002", "spec": "requirements/serve.in:1", "requirement": "hcore<2"}
    ]


@pytest.mark.slow
def test_an_ignored_advisory_is_set_apart(
    tmp_path: Path, package_index: PackageIndex, advisory_service: AdvisoryService
) -> None:
    repo = _repo_with_old_lock(tmp_path, package_index)
    repo.write(
        ".github/lockwarden-ignore.txt", "CVE-2099-4444  # debug logs are off in production\n"
    )

    result = repo.refresh(upgrade=True, build=False, test=False)

    (serve,) = result.signals.advisories
    assert serve.introduced == ()
    (ignored,) = serve.ignored
    assert (ignored.advisory.id, ignored.reason) == (
        "GHSA-t0ke-nbag-0004",
        "debug logs are off in production",
    )
    assert "ignored (debug logs are off in production)" in render_summary(result)


@pytest.mark.slow
def test_an_unreachable_service_is_a_note_not_a_failure(
    tmp_path: Path,
    package_index: PackageIndex,
    advisory_service: AdvisoryService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = _repo_with_old_lock(tmp_path, package_index)
    monkeypatch.setenv("LOCKWARDEN_ADVISORY_URL", unused_local_url())

    result = repo.refresh(upgrade=True, build=False, test=False)

    assert not result.failed
    assert result.signals.advisories == ()
    (note,) = result.signals.notes
    assert note.startswith("advisories were not checked: PyPI (http://127.0.0.1:")
    assert "advisories were not checked" in render_markdown(result)
    assert to_json(result)["signals"]["notes"] == [note]
