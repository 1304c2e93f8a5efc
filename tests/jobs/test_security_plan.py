"""Choosing the security pull request's targets from an audit, its text, and what queues it:
no network, no GitHub."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.advisories.audit import Audit, EnvironmentAudit
from bot.config import RepoConfig
from bot.jobs.payloads import SecurityPayload
from bot.jobs.queue import JobRequest
from bot.jobs.security import (
    advisory_name,
    plan_fixes,
    security_wanted,
    unfixed_section,
)
from bot.results import Advisory, BlockedFix, EnvironmentAdvisories, SignalsResult

CONFIG = {
    "environments": [
        {"name": "serve", "spec": "requirements/serve.in"},
        {"name": "dev", "spec": "requirements/dev.in", "constraints": ["serve"]},
    ]
}


def advisory(
    package: str = "wirelib",
    version: str = "1.0",
    fixes: tuple[str, ...] = ("1.1", "1.3"),
    **kw: str,
) -> Advisory:
    return Advisory(
        id=kw.get("id", "GHSA-0000-0000-0001"),
        package=package,
        version=version,
        aliases=("CVE-2099-0001",),
        fixed_versions=fixes,
        link=kw.get("link", "https://osv.dev/vulnerability/GHSA-0000-0000-0001"),
    )


def audit(*envs: tuple[str, tuple[Advisory, ...]]) -> Audit:
    return Audit(
        tuple(EnvironmentAudit(name, f"requirements/{name}.txt", found) for name, found in envs),
        "PyPI (http://127.0.0.1)",
    )


def repo(tmp_path: Path, serve: str = "webapp\n", dev: str = "webapp\n") -> Path:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/serve.in").write_text(serve)
    # dev reads serve's lock as constraints: its pin must not count as a spec requirement
    (tmp_path / "requirements/dev.in").write_text("-c serve.txt\n" + dev)
    (tmp_path / "requirements/serve.txt").write_text("wirelib==1.0\nwebapp==1.0\n")
    return tmp_path


def test_the_target_is_the_lowest_fixed_version_for_every_environment(tmp_path: Path) -> None:
    config = RepoConfig.model_validate(CONFIG)
    found = advisory()

    plan = plan_fixes(repo(tmp_path), config, audit(("serve", (found,)), ("dev", (found,))))

    assert plan.upgrade_packages == ("wirelib==1.1",)
    assert plan.environments == ("serve", "dev")
    [target] = plan.targets
    assert target.locked == (("serve", "1.0"), ("dev", "1.0"))
    assert plan.unfixed == ()


def test_a_spec_requirement_moves_the_target_to_a_fix_it_allows(tmp_path: Path) -> None:
    config = RepoConfig.model_validate(CONFIG)
    found = advisory()

    plan = plan_fixes(
        repo(tmp_path, dev="webapp\nwirelib!=1.1\n"), config, audit(("dev", (found,)))
    )

    assert plan.upgrade_packages == ("wirelib==1.3",)
    assert plan.environments == ("dev",)


def test_one_version_fixes_every_advisory_of_a_package(tmp_path: Path) -> None:
    config = RepoConfig.model_validate(CONFIG)
    first = advisory(fixes=("1.1",))
    second = advisory(fixes=("1.2",), id="PYSEC-2099-2")

    plan = plan_fixes(repo(tmp_path), config, audit(("serve", (first, second))))

    assert plan.upgrade_packages == ("wirelib==1.2",)
    assert [a.id for a in plan.targets[0].advisories] == ["GHSA-0000-0000-0001", "PYSEC-2099-2"]


def test_a_blocked_fix_names_the_spec_line_and_an_unfixable_one_says_so(tmp_path: Path) -> None:
    config = RepoConfig.model_validate(CONFIG)
    blocked = advisory()
    no_fix = advisory(package="otherlib", fixes=(), id="PYSEC-2099-9")

    plan = plan_fixes(
        repo(tmp_path, serve="webapp\n# pinned for the old API\nwirelib<1.1\n"),
        config,
        audit(("serve", (blocked, no_fix)), ("dev", (blocked,))),
    )

    assert plan.targets == ()
    assert plan.environments == ()
    reasons = {u.advisory.package: u for u in plan.unfixed}
    assert reasons["wirelib"].blocked == BlockedFix(
        blocked, "requirements/serve.in:3", "wirelib<1.1"
    )
    assert reasons["wirelib"].environments == ("serve", "dev")
    assert "no fixed version is published yet" in reasons["otherlib"].reason
    text = unfixed_section(plan.unfixed)
    assert text.startswith("### Not fixed\n")
    assert (
        "`wirelib` `1.0` (serve, dev): the fixed versions (1.1, 1.3) are ruled out by "
        "`wirelib<1.1` (`requirements/serve.in:3`)"
    ) in text


def test_a_poetry_environment_is_left_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app/pyproject.toml").write_text('[project]\nname = "app"\nversion = "1"\n')
    config = RepoConfig.model_validate(
        {
            "environments": [
                {"name": "serve", "spec": "requirements/serve.in"},
                {"name": "app", "spec": "app/pyproject.toml", "backend": "poetry"},
            ]
        }
    )
    found = advisory()

    plan = plan_fixes(repo(tmp_path), config, audit(("serve", (found,)), ("app", (found,))))

    assert plan.upgrade_packages == ("wirelib==1.1",)
    assert plan.environments == ("serve",)
    [left] = plan.unfixed
    assert left.environments == ("app",)
    assert "Poetry cannot move one package to a given version" in left.reason
    assert "`/lockwarden pin wirelib==1.1`" in left.reason


@pytest.mark.parametrize(
    ("link", "rendered"),
    [
        (
            "https://osv.dev/vulnerability/GHSA-0000-0000-0001",
            "[`GHSA-0000-0000-0001`](https://osv.dev/vulnerability/GHSA-0000-0000-0001)",
        ),
        ("javascript:alert(1)", "`GHSA-0000-0000-0001`"),
        ("https://evil.example/x) [click](https://evil.example", "`GHSA-0000-0000-0001`"),
    ],
)
def test_an_advisory_is_linked_only_to_a_plain_web_address(link: str, rendered: str) -> None:
    assert advisory_name(advisory(link=link)) == f"{rendered} (`CVE-2099-0001`)"


def test_security_is_wanted_for_an_allowed_fix_left_or_introduced_only() -> None:
    left = advisory()
    introduced = advisory(package="hcore", id="PYSEC-1")
    blocked = advisory(package="blocked")
    unfixable = advisory(package="nofix", fixes=())
    signals = SignalsResult(
        advisories=(
            EnvironmentAdvisories(
                "serve",
                "requirements/serve.txt",
                fixed=(advisory(package="gone"),),
                left=(left, blocked, unfixable),
                introduced=(introduced,),
                blocked=(BlockedFix(blocked, "requirements/serve.in:2", "blocked<1"),),
            ),
        )
    )

    assert security_wanted(signals) == ("hcore", "wirelib")
    assert security_wanted(SignalsResult()) == ()


def test_the_security_payload_reads_back_what_it_stored_and_defaults_when_absent() -> None:
    stored = SecurityPayload(reason="a release", packages=("wirelib",)).to_json()
    request = JobRequest("security", "acme/svc", 7, "d", stored)

    assert stored == {"reason": "a release", "packages": ["wirelib"]}
    assert SecurityPayload.of(request) == SecurityPayload("a release", ("wirelib",))
    assert SecurityPayload.of(JobRequest("security", "acme/svc", 7, "d", {})) == SecurityPayload()
