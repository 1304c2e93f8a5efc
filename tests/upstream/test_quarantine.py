"""The release-age quarantine and yanked pins, end to end: real pip-compile and uv against
the local index serving PEP 691 JSON with upload times."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import RepoConfig, parse_config
from bot.errors import ConfigError
from bot.locks.modes import CompileMode
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.report.terminal import render_summary
from bot.results import CompileStageResult, LockResult
from bot.upstream.quarantine import parse_age
from bot.upstream.stage import UpstreamOptions, upstream_signals
from tests.pipeline.conftest import Repo, env_config, new_repo
from tests.support.index_server import PackageIndex, start_index

NOW = datetime.now(UTC).replace(microsecond=0)
BACKENDS = ["uv", "pip-tools"]


@pytest.fixture
def json_index(tmp_path: Path) -> Iterator[PackageIndex]:
    with start_index(tmp_path / "index", serve_json=True) as index:
        index.publish("demo", "1.0")
        index.publish("demo", "2.0")
        index.set_upload_time("demo", "1.0", NOW - timedelta(days=10))
        index.set_upload_time("demo", "2.0", NOW - timedelta(hours=1))
        yield index


def _repo(tmp_path: Path, index: PackageIndex, backend: str, spec: str = "demo") -> Repo:
    repo = new_repo(tmp_path, index)
    repo.spec("serve", spec)
    repo.configure(env_config("serve", backend=backend), min_release_age="3d")
    return repo


def _header(repo: Repo) -> str:
    return "".join(line for line in repo.lock_text("serve").splitlines(True) if line[:1] == "#")


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_full_refresh_holds_back_a_young_release(
    tmp_path: Path, json_index: PackageIndex, backend: str
) -> None:
    repo = _repo(tmp_path, json_index, backend)

    held = repo.refresh(upgrade=True, build=False, test=False, upstream_lookups=True)

    assert repo.pins("serve") == {"demo": "1.0"}
    [entry] = held.signals.held_back
    uploaded = NOW - timedelta(hours=1)
    assert (entry.environment, entry.package, entry.locked, entry.version) == (
        "serve",
        "demo",
        "1.0",
        "2.0",
    )
    assert (entry.uploaded, entry.eligible) == (uploaded, uploaded + timedelta(days=3))
    eligible = f"{uploaded + timedelta(days=3):%Y-%m-%d %H:%M} UTC"
    assert "serve: demo 2.0 held back (uploaded" in render_summary(held)
    assert eligible in render_summary(held)
    assert eligible in render_markdown(held)
    header = _header(repo)
    assert "exclude-newer" not in header
    assert "uploaded-prior-to" not in header

    # Once the release is old enough, the next full refresh takes it; the header stays.
    json_index.set_upload_time("demo", "2.0", NOW - timedelta(days=4))
    taken = repo.refresh(upgrade=True, build=False, test=False, upstream_lookups=True)
    assert repo.pins("serve") == {"demo": "2.0"}
    assert taken.signals.held_back == ()
    assert _header(repo) == header


@pytest.mark.slow
def test_targeted_refresh_is_not_held_back(tmp_path: Path, json_index: PackageIndex) -> None:
    repo = _repo(tmp_path, json_index, "uv", spec="demo<2")
    repo.refresh(build=False, test=False)
    repo.spec("serve", "demo")

    result = repo.refresh(upgrade_packages=["demo"], build=False, test=False)

    assert repo.pins("serve") == {"demo": "2.0"}
    assert result.signals.held_back == ()


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_yanked_pin_is_in_every_report(
    tmp_path: Path, json_index: PackageIndex, backend: str
) -> None:
    json_index.mark_yanked("demo", "1.0", "broken <wheel>")
    repo = _repo(tmp_path, json_index, backend, spec="demo==1.0")

    result = repo.refresh(build=False, test=False, upstream_lookups=True)

    [pin] = result.signals.yanked
    assert (pin.environment, pin.package, pin.version, pin.reason) == (
        "serve",
        "demo",
        "1.0",
        "broken <wheel>",
    )
    assert "serve: demo 1.0 is yanked on its index: broken <wheel>" in render_summary(result)
    markdown = render_markdown(result)
    assert "### Yanked releases" in markdown
    assert "broken &lt;wheel&gt;" in markdown
    signals = json.loads(json.dumps(to_json(result)))["signals"]
    assert signals["yanked"] == [
        {
            "environment": "serve",
            "lock": "requirements/serve.txt",
            "package": "demo",
            "version": "1.0",
            "reason": "broken <wheel>",
        }
    ]


@pytest.mark.slow
def test_lookups_off_by_setting(tmp_path: Path, json_index: PackageIndex) -> None:
    json_index.mark_yanked("demo", "1.0")
    repo = _repo(tmp_path, json_index, "uv", spec="demo==1.0")

    result = repo.refresh(build=False, test=False, upstream_lookups=False)

    assert repo.pins("serve") == {"demo": "1.0"}
    assert result.signals.yanked == ()
    assert not [note for note in result.signals.notes if "yank" in note]


@pytest.mark.slow
def test_poetry_and_conda_say_the_quarantine_is_not_applied(
    tmp_path: Path, json_index: PackageIndex
) -> None:
    config = parse_config(
        "min_release_age: 2w\nenvironments:\n"
        "  - {name: app, spec: pyproject.toml, backend: poetry}\n"
        "  - {name: sci, spec: environment.yml, backend: conda, lock: 'conda-{platform}.lock'}\n",
        ".github/lockwarden.yml",
    )
    assert isinstance(config, RepoConfig)
    compiled = CompileStageResult(
        tuple(
            LockResult(
                name=e.name, spec=e.spec, lock=e.lock_path, backend=e.backend, status="failed"
            )
            for e in config.environments
        ),
        (),
        ("app", "sci"),
    )
    signals = upstream_signals(config, compiled, CompileMode("full"), UpstreamOptions())
    assert signals.notes == (
        "app: min_release_age (2w) is not applied to the poetry backend, whose resolver cannot "
        "leave out releases by upload time; review new releases in its lock yourself, or move "
        "the environment to pip-tools or uv",
        "sci: min_release_age (2w) is not applied to the conda backend, whose resolver cannot "
        "leave out releases by upload time; review new releases in its lock yourself, or move "
        "the environment to pip-tools or uv",
    )
    minimal = upstream_signals(config, compiled, CompileMode(), UpstreamOptions())
    assert minimal.notes == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("12h", timedelta(hours=12)),
        ("3d", timedelta(days=3)),
        ("2w", timedelta(weeks=2)),
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_age(text) == expected


@pytest.mark.parametrize("bad", ["3", "3 days", "1.5d", "-1d", "3y", "d", ""])
@pytest.mark.parametrize("where", ["top", "environment"])
def test_bad_durations_name_the_field(bad: str, where: str) -> None:
    if where == "top":
        text = f"min_release_age: '{bad}'\n"
        field = "min_release_age"
    else:
        text = f"environments: [{{name: a, spec: a.in, min_release_age: '{bad}'}}]\n"
        field = "environments[0].min_release_age"
    with pytest.raises(ConfigError) as error:
        parse_config(text, ".github/lockwarden.yml")
    assert error.value.field == field
    assert "whole number and a unit" in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "effect"),
    [
        ("uv", "uv leaves out every file without one"),
        ("pip-tools", "pip refuses such an index, so the compile fails"),
    ],
)
def test_an_html_only_index_cannot_be_held_to_the_quarantine(
    tmp_path: Path, backend: str, effect: str
) -> None:
    # Measured: uv's --exclude-newer leaves out files without an upload time (no version
    # is left) and pip's --uploaded-prior-to refuses the index; both fail the compile.
    with start_index(tmp_path / "index", serve_json=False) as html_index:
        html_index.publish("demo", "1.0")
        repo = _repo(tmp_path, html_index, backend)

        result = repo.refresh(upgrade=True, build=False, test=False, upstream_lookups=True)

    [lock] = result.compiled.results
    assert lock.status == "failed"
    assert not repo.lock_path("serve").exists()
    note = f"serve: the quarantine could not be applied to {html_index.url}: it publishes no "
    [said] = [n for n in result.signals.notes if n.startswith(note)]
    assert effect in said
    assert "publishes no upload times" in render_summary(result)
    assert "publishes no upload times" in render_markdown(result)
    assert said in json.loads(json.dumps(to_json(result)))["signals"]["notes"]


@pytest.mark.slow
def test_a_brand_new_requirement_fails_saying_the_quarantine_is_why(
    tmp_path: Path, json_index: PackageIndex
) -> None:
    json_index.publish("fresh", "0.1")
    json_index.set_upload_time("fresh", "0.1", NOW - timedelta(hours=2))
    repo = _repo(tmp_path, json_index, "uv", spec="demo<2\nfresh")

    result = repo.refresh(upgrade=True, build=False, test=False, upstream_lookups=True)

    [lock] = result.compiled.results
    assert lock.status == "failed"
    eligible = NOW - timedelta(hours=2) + timedelta(days=3)
    assert f"the first, 0.1, is eligible from {eligible:%Y-%m-%d %H:%M} UTC" in (lock.error or "")
    assert "`min_release_age: 0d` on the environment serve" in (lock.error or "")
    assert [(h.package, h.locked) for h in result.signals.held_back] == [("fresh", None)]
    assert "the release-age quarantine" in render_summary(result)
