"""Blocked fixes: a lock of another environment read with ``-c`` never blocks one, a real
constraints file does, and the signals stage and the security job agree on it."""

from __future__ import annotations

from pathlib import Path

from bot.advisories.audit import Audit, EnvironmentAudit
from bot.advisories.blocked import environment_requirements
from bot.advisories.service import ServiceConfig, lookup_advisories
from bot.config import RepoConfig
from bot.jobs.security import plan_fixes
from bot.pipeline.signals import advisory_signals
from bot.results import CompileStageResult, LockResult
from tests.support.advisory_service import AdvisoryService, vulnerability

CONFIG = RepoConfig.model_validate(
    {
        "environments": [
            {"name": "serve", "spec": "requirements/serve.in"},
            {"name": "dev", "spec": "requirements/dev.in"},
        ]
    }
)
LOCK = "wirelib==1.0\n"
VULN = vulnerability("GHSA-w1re-0000-0001", ["1.1"], "wirelib trusts every certificate")


def repo(tmp_path: Path, *, constraints: str | None = None) -> Path:
    """serve and dev both lock wirelib 1.0; dev reads serve's lock with ``-c`` (and, with
    ``constraints``, a real constraints file too)."""
    (tmp_path / "requirements").mkdir(parents=True)
    (tmp_path / "requirements/serve.in").write_text("wirelib\n")
    (tmp_path / "requirements/serve.txt").write_text(LOCK)
    (tmp_path / "requirements/dev.txt").write_text(LOCK)
    extra = ""
    if constraints is not None:
        (tmp_path / "requirements/pins.txt").write_text(constraints)
        extra = "-c pins.txt\n"
    # "./serve.txt": the same lock however the path is written
    (tmp_path / "requirements/dev.in").write_text(f"-c ./serve.txt\n{extra}wirelib\n")
    return tmp_path


def compiled() -> CompileStageResult:
    results = tuple(
        LockResult(
            name,
            f"requirements/{name}.in",
            f"requirements/{name}.txt",
            "pip-tools",
            "unchanged",
            old_text=LOCK,
            new_text=LOCK,
        )
        for name in ("serve", "dev")
    )
    return CompileStageResult(results, (), ("serve", "dev"))


def service(advisories: AdvisoryService, tmp_path: Path) -> ServiceConfig:
    advisories.publish("wirelib", "1.0", [VULN])
    return ServiceConfig("pypi", advisories.url, tmp_path / "advisory-cache", 5.0, 2)


def test_a_lock_of_another_environment_is_left_out_and_a_constraints_file_kept(
    tmp_path: Path,
) -> None:
    root = repo(tmp_path, constraints="wirelib<1.1  # held back for the old TLS stack\n")
    dev = CONFIG.environments[1]

    # serve.txt's wirelib==1.0 is not among them; the constraints file's line is
    (requirement,) = environment_requirements(root, CONFIG, dev)["wirelib"]

    assert (requirement.source, requirement.written) == ("requirements/pins.txt:1", "wirelib<1.1")


def test_the_signals_stage_blocks_only_on_a_real_constraints_file(
    tmp_path: Path, advisory_service: AdvisoryService
) -> None:
    config = service(advisory_service, tmp_path)
    free = advisory_signals(repo(tmp_path / "free"), CONFIG, compiled(), config)
    held = advisory_signals(
        repo(tmp_path / "held", constraints="wirelib<1.1\n"), CONFIG, compiled(), config
    )

    assert [(e.environment, [a.id for a in e.left], e.blocked) for e in free.advisories] == [
        ("serve", ["GHSA-w1re-0000-0001"], ()),
        ("dev", ["GHSA-w1re-0000-0001"], ()),
    ]
    serve, dev = held.advisories
    assert serve.blocked == ()
    (blocked,) = dev.blocked
    assert (blocked.spec, blocked.requirement) == ("requirements/pins.txt:1", "wirelib<1.1")


def test_the_security_job_agrees_with_the_signals_stage(
    tmp_path: Path, advisory_service: AdvisoryService
) -> None:
    lookup = lookup_advisories([("wirelib", "1.0")], service(advisory_service, tmp_path))
    found = lookup.advisories("wirelib", "1.0")
    audit = Audit(
        tuple(EnvironmentAudit(n, f"requirements/{n}.txt", found) for n in ("serve", "dev")),
        "PyPI (local)",
    )

    free = plan_fixes(repo(tmp_path / "free"), CONFIG, audit)
    held = plan_fixes(repo(tmp_path / "held", constraints="wirelib<1.1\n"), CONFIG, audit)

    assert (free.upgrade_packages, free.unfixed) == (("wirelib==1.1",), ())
    assert held.upgrade_packages == ()
    (unfixed,) = held.unfixed
    assert unfixed.blocked is not None
    assert (unfixed.blocked.spec, unfixed.blocked.requirement) == (
        "requirements/pins.txt:1",
        "wirelib<1.1",
    )
