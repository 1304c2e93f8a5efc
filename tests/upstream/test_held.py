"""What the upstream checks say about the quarantine, from real index pages (the local index)
and compile results written by hand: what the spec allows, brand-new packages, targeted
moves, indexes without upload times, and one request per package per run."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import LoadedConfig, RepoConfig, parse_config
from bot.locks.modes import CompileMode
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.report.terminal import render_summary
from bot.results import CompileStageResult, LockResult, RunResult, SignalsResult
from bot.sandbox.egress import EgressPolicy
from bot.upstream.held import explain_failures
from bot.upstream.stage import UpstreamOptions, upstream_signals
from tests.support.index_server import PackageIndex, start_index

NOW = datetime.now(UTC).replace(microsecond=0)
OLD = NOW - timedelta(days=30)
YOUNG = NOW - timedelta(hours=1)
ON = UpstreamOptions(enabled=True, policy=EgressPolicy(("127.0.0.1",)), now=NOW)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[PackageIndex]:
    with start_index(tmp_path / "index", serve_json=True) as served:
        for version, when in (("1.0", OLD), ("1.5", YOUNG), ("2.0", YOUNG)):
            served.publish("demo", version)
            served.set_upload_time("demo", version, when)
        yield served


def _config(index_url: str, *envs: str, extra: str = "") -> RepoConfig:
    lines = [f"min_release_age: 3d\nindex_url: {index_url}\nenvironments:"]
    lines += [f"  - {{name: {e}, spec: {e}.in, lock: {e}.txt, backend: uv{extra}}}" for e in envs]
    config = parse_config("\n".join(lines) + "\n", ".github/lockwarden.yml")
    assert isinstance(config, RepoConfig)
    return config


def _result(
    env: str, new: str | None, *, old: str | None = None, failed: bool = False, output: str = ""
) -> LockResult:
    return LockResult(
        name=env,
        spec=f"{env}.in",
        lock=f"{env}.txt",
        backend="uv",
        status="failed" if failed else "changed",
        error="resolution failed" if failed else None,
        tool_output=output,
        old_text=old,
        new_text=new,
    )


def _compiled(*results: LockResult) -> CompileStageResult:
    return CompileStageResult(results, (), tuple(r.name for r in results))


def _run(config: RepoConfig, compiled: CompileStageResult, signals: SignalsResult) -> RunResult:
    loaded = LoadedConfig(config=config, source=".github/lockwarden.yml")
    return RunResult(
        repo="demo", config=loaded, mode=CompileMode("full"), compiled=compiled, signals=signals
    )


def test_held_back_lists_only_what_the_spec_allows(tmp_path: Path, index: PackageIndex) -> None:
    (tmp_path / "serve.in").write_text("demo<2  # the 2.x API is not supported yet\n")
    (tmp_path / "train.in").write_text("demo<1.5\n")
    config = _config(index.url, "serve", "train")
    compiled = _compiled(_result("serve", "demo==1.0\n"), _result("train", "demo==1.0\n"))

    signals = upstream_signals(config, compiled, CompileMode("full"), ON, root=tmp_path)

    # 2.0 is younger too, but demo<2 rules it out; train's spec allows neither.
    [held] = signals.held_back
    assert (held.environment, held.package, held.locked, held.version) == (
        "serve",
        "demo",
        "1.0",
        "1.5",
    )
    assert held.eligible == YOUNG + timedelta(days=3)
    assert signals.notes == ()


def _fresh_failure(
    tmp_path: Path, index: PackageIndex, uploaded: datetime, spec: str
) -> tuple[RepoConfig, CompileStageResult, SignalsResult]:
    """A full refresh of ``spec`` that failed, with fresh 0.1 uploaded at ``uploaded``."""
    index.publish("fresh", "0.1")
    index.set_upload_time("fresh", "0.1", uploaded)
    (tmp_path / "serve.in").write_text(spec)
    config = _config(index.url, "serve")
    compiled = _compiled(_result("serve", None, old="demo==1.0\n", failed=True))
    return (
        config,
        compiled,
        upstream_signals(config, compiled, CompileMode("full"), ON, root=tmp_path),
    )


def test_a_brand_new_package_fails_the_compile_saying_why(
    tmp_path: Path, index: PackageIndex
) -> None:
    config, compiled, signals = _fresh_failure(tmp_path, index, YOUNG, "demo\nfresh>=0.1\n")

    fresh = [h for h in signals.held_back if h.package == "fresh"]
    assert [(h.locked, h.version, h.eligible) for h in fresh] == [
        (None, "0.1", YOUNG + timedelta(days=3))
    ]
    eligible = f"{YOUNG + timedelta(days=3):%Y-%m-%d %H:%M} UTC"
    explained = explain_failures(compiled, signals)
    error = explained.results[0].error or ""
    assert error.startswith("resolution failed\nthe compile failed because of the release-age")
    assert f"the first, 0.1, is eligible from {eligible}" in error
    assert "set `min_release_age: 0d` on the environment serve" in error
    run = _run(config, explained, signals)
    assert "fresh 0.1 held back" in render_summary(run)
    assert "not in the lock" in render_markdown(run)
    assert eligible in render_markdown(run)


def test_failures_the_quarantine_did_not_cause_are_left_alone(
    tmp_path: Path, index: PackageIndex
) -> None:
    _, compiled, signals = _fresh_failure(tmp_path, index, OLD, "fresh\n")

    assert [h.package for h in signals.held_back if h.locked is None] == []
    assert explain_failures(compiled, signals) == compiled


def test_targeted_moves_to_young_releases_are_named(tmp_path: Path, index: PackageIndex) -> None:
    config = _config(index.url, "serve", "train")
    compiled = _compiled(
        _result("serve", "demo==2.0\n", old="demo==1.0\n"),
        _result("train", "demo==1.0\n", old="demo==1.0\n"),
    )

    signals = upstream_signals(config, compiled, CompileMode("targeted", ("demo",)), ON)

    assert signals.quarantine_passed == (
        f"serve: demo 2.0 was uploaded {YOUNG:%Y-%m-%d %H:%M} UTC, less than 3d ago: a targeted "
        "refresh is not held to min_release_age; review the release before merging",
    )
    assert signals.held_back == ()
    run = _run(config, compiled, signals)
    assert "taken despite the quarantine: serve: demo 2.0" in render_summary(run)
    full = upstream_signals(config, compiled, CompileMode("full"), ON)
    assert full.quarantine_passed == ()


@pytest.fixture
def html_index(tmp_path: Path) -> Iterator[PackageIndex]:
    with start_index(tmp_path / "html", serve_json=False) as served:
        served.publish("demo", "1.0")
        yield served


def test_an_index_without_upload_times_is_named_in_every_output(
    tmp_path: Path, html_index: PackageIndex
) -> None:
    (tmp_path / "serve.in").write_text("demo\n")
    config = _config(html_index.url, "serve")
    compiled = _compiled(_result("serve", None, failed=True))

    signals = upstream_signals(config, compiled, CompileMode("full"), ON, root=tmp_path)

    expected = (
        f"serve: the quarantine could not be applied to {html_index.url}: it publishes no "
        "upload times; uv leaves out every file without one, so the compile finds none of its "
        "releases. Use an index that publishes them (PEP 700), or set `min_release_age: 0d` "
        "on the environment serve"
    )
    assert signals.notes == (expected,)
    run = _run(config, compiled, signals)
    assert expected in render_summary(run).replace("\n", " ")
    assert "publishes no upload times" in render_markdown(run)
    assert json.loads(json.dumps(to_json(run)))["signals"]["notes"] == [expected]
    # A minimal refresh is not held to the quarantine: nothing to say.
    minimal = upstream_signals(config, compiled, CompileMode(), ON, root=tmp_path)
    assert minimal.notes == ()


def test_without_lookups_the_resolver_output_names_the_index(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/simple"
    config = _config(url, "serve")
    pip_said = f"InstallationError: Index {url}/demo/ does not provide upload-time metadata."
    uv_said = "warning: `demo-1.0-py3-none-any.whl` is missing an upload date, but user provided"
    for output in (pip_said, uv_said):
        compiled = _compiled(_result("serve", None, failed=True, output=output))
        signals = upstream_signals(config, compiled, CompileMode("full"), UpstreamOptions())
        [note] = signals.notes
        assert note.startswith(f"serve: the quarantine could not be applied to {url}: it ")
    ok = _compiled(_result("serve", "demo==1.0\n", output=uv_said))
    assert upstream_signals(config, ok, CompileMode("full"), UpstreamOptions()).notes == ()


def test_each_package_is_fetched_once_per_run(tmp_path: Path, index: PackageIndex) -> None:
    with start_index(tmp_path / "extra", serve_json=True) as extra:
        extra.publish("only-extra", "1.0")
        extra.set_upload_time("only-extra", "1.0", OLD)
        # Three environments, two index lists that share the first index.
        config = parse_config(
            f"min_release_age: 3d\nindex_url: {index.url}\nenvironments:\n"
            "  - {name: a, spec: a.in, lock: a.txt}\n"
            "  - {name: b, spec: b.in, lock: b.txt}\n"
            f"  - {{name: c, spec: c.in, lock: c.txt, extra_index_urls: [{extra.url}]}}\n",
            ".github/lockwarden.yml",
        )
        assert isinstance(config, RepoConfig)
        lock = "demo==1.0\n"
        compiled = _compiled(
            _result("a", lock), _result("b", lock), _result("c", lock + "only-extra==1.0\n")
        )
        (tmp_path / "c.in").write_text("demo\nonly-extra\n")

        signals = upstream_signals(config, compiled, CompileMode("full"), ON, root=tmp_path)

        # demo and only-extra (a 404) once each on the first index; only-extra once on the
        # second.
        assert (index.page_requests, extra.page_requests) == (2, 1)
    assert [(h.environment, h.version) for h in signals.held_back] == [
        ("a", "2.0"),
        ("b", "2.0"),
        ("c", "2.0"),
    ]
    assert signals.notes == ()
