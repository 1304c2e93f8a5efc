"""The compile stage end to end: ``bot.worker.refresh`` on repositories built in tmp_path,
with real pip-compile and real uv resolving against the local package index."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import uv

from bot.errors import ConstraintCycleError
from bot.locks.diff import PackageChange
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.results import LockResult, RunResult
from tests.pipeline.conftest import BACKENDS, Repo, env_config, pins_of

both_backends = pytest.mark.parametrize("backend", BACKENDS)


def result(run: RunResult, name: str) -> LockResult:
    found = [r for r in run.compiled.results if r.name == name]
    assert len(found) == 1, [r.name for r in run.compiled.results]
    return found[0]


def changes(r: LockResult) -> dict[str, PackageChange]:
    assert r.diff is not None, r.error
    return {c.name: c for c in r.diff.changes}


def new_pins(r: LockResult) -> dict[str, str]:
    assert r.new_text is not None, r.error
    return pins_of(r.new_text, r.lock)


def requirements_dir(repo: Repo) -> list[str]:
    return sorted(p.name for p in (repo.root / "requirements").iterdir())


# -- 1. new locks --------------------------------------------------------------------------


@pytest.mark.slow
@both_backends
def test_new_locks_follow_the_constraint_chain(repo: Repo, backend: str) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha")  # alone, train would take beta 2.0.0
    repo.spec("dev", "alpha", "gamma")
    # Listed out of order on purpose: the constraints decide the order.
    repo.configure(
        env_config("dev", backend=backend, constraints=["train"], compile_args=()),
        env_config("serve", backend=backend, compile_args=()),
        env_config("train", backend=backend, constraints=["serve"], compile_args=()),
    )

    run = repo.refresh()

    assert run.compiled.order == ("serve", "train", "dev")
    assert [r.name for r in run.compiled.results] == ["serve", "train", "dev"]
    assert run.written == (
        "requirements/serve.txt",
        "requirements/train.txt",
        "requirements/dev.txt",
    )
    assert not run.failed
    program = "pip-compile" if backend == "pip-tools" else "uv pip compile"
    expected_headers = {
        "serve": f"{program} --allow-unsafe --generate-hashes --strip-extras "
        "--output-file=requirements/serve.txt requirements/serve.in",
        "train": f"{program} --allow-unsafe --constraint=requirements/serve.txt "
        "--generate-hashes --strip-extras --output-file=requirements/train.txt "
        "requirements/train.in",
        "dev": f"{program} --allow-unsafe --constraint=requirements/train.txt "
        "--generate-hashes --strip-extras --output-file=requirements/dev.txt "
        "requirements/dev.in",
    }
    for name, header in expected_headers.items():
        r = result(run, name)
        assert r.status == "changed", r.error
        assert r.old_text is None
        assert r.header_command == header
        lock = repo.lock(name)
        assert lock.header.tool == ("pip-compile" if backend == "pip-tools" else "uv")
        assert shlex.join(lock.header.command) == header
        assert lock.requirements
        assert all(entry.hashes for entry in lock.requirements), name
        assert repo.lock_text(name) == r.new_text
        assert {c.change for c in changes(r).values()} == {"added"}
        assert set(changes(r)) == set(repo.pins(name))

    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.0.1"}
    assert repo.pins("train") == {"alpha": "1.1.0", "beta": "1.0.1"}
    assert repo.pins("dev") == {"alpha": "1.1.0", "beta": "1.0.1", "gamma": "1.0.0"}
    assert result(run, "train").constrained_by == ("serve",)
    assert result(run, "dev").constrained_by == ("train",)

    report = to_json(run)
    assert [e["status"] for e in report["environments"]] == ["changed"] * 3
    serve_changes = report["environments"][0]["changes"]
    assert {(c["name"], c["change"], c["from"], c["to"]) for c in serve_changes} == {
        ("alpha", "added", None, "1.1.0"),
        ("beta", "added", None, "1.0.1"),
    }
    assert all(c["direct"] for c in serve_changes)
    train_beta = next(c for c in report["environments"][1]["changes"] if c["name"] == "beta")
    assert train_beta["direct"] is False


# -- 2. recorded options are replayed ------------------------------------------------------


@pytest.mark.slow
@both_backends
def test_header_options_are_replayed_when_config_no_longer_has_them(
    repo: Repo, backend: str
) -> None:
    repo.spec("serve", "alpha", "beta")
    repo.configure(
        env_config(
            "serve",
            backend=backend,
            compile_args=["--no-emit-index-url", "--annotation-style=line"],
        )
    )
    first = repo.refresh()
    assert result(first, "serve").status == "changed"
    # beta comes from the spec and from alpha: one line in "line" style.
    line_style = re.compile(
        r"^\s+# via (-r requirements/serve\.in, alpha|alpha, -r requirements/serve\.in)$",
        re.MULTILINE,
    )
    assert line_style.search(repo.lock_text("serve"))

    # The options now live only in the lock header.
    repo.configure(env_config("serve", backend=backend, compile_args=()))
    repo.spec("serve", "alpha", "beta", "gamma")
    second = repo.refresh()

    r = result(second, "serve")
    assert r.status == "changed", r.error
    assert {name: c.change for name, c in changes(r).items()} == {"gamma": "added"}
    text = repo.lock_text("serve")
    lock = repo.lock("serve")
    assert {"--annotation-style=line", "--no-emit-index-url", "--generate-hashes"} <= set(
        lock.header.command
    )
    assert all(entry.hashes for entry in lock.requirements)
    assert line_style.search(text)
    assert repo.index.url not in text
    assert lock.index.index_url is None


@pytest.mark.slow
@both_backends
def test_lock_without_hashes_stays_without_hashes(
    repo: Repo, backend: str, isolated_tool_env: dict[str, str]
) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve", backend=backend, compile_args=()))
    # The project compiled its lock by hand, without --generate-hashes.
    compiler = (
        [sys.executable, "-m", "piptools", "compile"]
        if backend == "pip-tools"
        else [uv.find_uv_bin(), "pip", "compile"]
    )
    subprocess.run(
        [
            *compiler,
            "--quiet",
            f"--index-url={repo.index.url}",
            "--output-file=requirements/serve.txt",
            "requirements/serve.in",
        ],
        cwd=repo.root,
        env=isolated_tool_env,
        check=True,
        capture_output=True,
    )
    assert not repo.lock("serve").has_hashes

    repo.spec("serve", "alpha", "gamma")
    run = repo.refresh()

    r = result(run, "serve")
    assert r.status == "changed", r.error
    assert {name: c.change for name, c in changes(r).items()} == {"gamma": "added"}
    assert "--hash" not in repo.lock_text("serve")
    assert "--generate-hashes" not in repo.lock("serve").header.command
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "2.0.0", "gamma": "1.0.0"}


# -- 3. constraint cycles ------------------------------------------------------------------


def test_constraint_cycle_is_an_error_and_nothing_is_written(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.configure(
        env_config("serve", constraints=["train"]),
        env_config("train", constraints=["serve"]),
    )
    before = repo.snapshot()

    with pytest.raises(ConstraintCycleError) as excinfo:
        repo.refresh()

    message = str(excinfo.value)
    assert "cycle" in message
    assert re.search(r"(serve -> train -> serve|train -> serve -> train)", message), message
    assert repo.snapshot() == before


# -- 4. the three modes --------------------------------------------------------------------


@pytest.mark.slow
@both_backends
def test_minimal_full_and_targeted_modes(repo: Repo, backend: str) -> None:
    repo.spec("serve", "alpha", "beta<2", "delta")
    repo.configure(env_config("serve", backend=backend))
    initial = repo.refresh()
    assert result(initial, "serve").status == "changed"
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.0.1", "delta": "1.0.0"}
    index = repo.index
    index.publish("beta", "1.0.2")
    index.publish("beta", "1.1.0")
    index.publish("delta", "1.1.0")

    # minimal: newer releases alone change nothing
    locked = repo.lock_path("serve").read_bytes()
    run = repo.refresh()
    r = result(run, "serve")
    assert r.status == "unchanged", r.error
    assert r.diff is not None
    assert not r.diff.changes
    assert run.written == ()
    assert repo.lock_path("serve").read_bytes() == locked
    assert to_json(run)["environments"][0]["status"] == "unchanged"

    # minimal after a spec edit: only what the edit forces
    repo.spec("serve", "alpha", "beta<2", "delta", "gamma")
    r = result(repo.refresh(), "serve")
    assert r.status == "changed", r.error
    assert {name: (c.change, c.after) for name, c in changes(r).items()} == {
        "gamma": ("added", "1.0.0")
    }
    assert repo.pins("serve")["beta"] == "1.0.1"

    # targeted at an exact version, not the newest one
    run = repo.refresh(upgrade_packages=["beta==1.0.2"])
    assert run.mode.kind == "targeted"
    r = result(run, "serve")
    assert r.status == "changed", r.error
    assert {name: (c.change, c.before, c.after) for name, c in changes(r).items()} == {
        "beta": ("upgraded", "1.0.1", "1.0.2")
    }

    # targeted by name: newest allowed beta, delta stays although 1.1.0 is out
    r = result(repo.refresh(upgrade_packages=["beta"]), "serve")
    assert {name: (c.change, c.kind, c.after) for name, c in changes(r).items()} == {
        "beta": ("upgraded", "minor", "1.1.0")
    }
    assert repo.pins("serve") == {
        "alpha": "1.1.0",
        "beta": "1.1.0",
        "delta": "1.0.0",
        "gamma": "1.0.0",
    }

    # full: everything moves to the newest allowed version
    index.publish("beta", "1.2.0")
    run = repo.refresh(upgrade=True)
    assert run.mode.kind == "full"
    r = result(run, "serve")
    assert {name: (c.change, c.before, c.after) for name, c in changes(r).items()} == {
        "beta": ("upgraded", "1.1.0", "1.2.0"),
        "delta": ("upgraded", "1.0.0", "1.1.0"),
    }
    assert repo.pins("serve") == {
        "alpha": "1.1.0",
        "beta": "1.2.0",
        "delta": "1.1.0",
        "gamma": "1.0.0",
    }
    assert all(entry.hashes for entry in repo.lock("serve").requirements)


# -- 5. an upstream patch release ----------------------------------------------------------


@pytest.mark.slow
def test_upstream_patch_is_reported_with_kind_and_link(repo: Repo) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha", "gamma")
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))
    repo.refresh()
    assert repo.pins("train")["beta"] == "1.0.1"
    repo.index.publish("beta", "1.0.2")

    run = repo.refresh(upgrade=True)

    serve_beta = changes(result(run, "serve"))["beta"]
    train_beta = changes(result(run, "train"))["beta"]
    for change in (serve_beta, train_beta):
        assert (change.change, change.kind, change.before, change.after) == (
            "upgraded",
            "patch",
            "1.0.1",
            "1.0.2",
        )
    assert serve_beta.direct is True
    assert train_beta.direct is False
    assert set(changes(result(run, "serve"))) == {"beta"}
    assert repo.pins("train")["beta"] == "1.0.2"

    markdown = render_markdown(run)
    link = f"[beta]({repo.index.url}/beta/)"
    assert link in markdown
    assert "| upgraded | `1.0.1` | `1.0.2` | patch | direct |" in markdown
    assert "| upgraded | `1.0.1` | `1.0.2` | patch | transitive |" in markdown
    beta_json = next(c for c in to_json(run)["environments"][0]["changes"] if c["name"] == "beta")
    assert beta_json["url"] == f"{repo.index.url}/beta/"


# -- 6. a re-upload of the same version ----------------------------------------------------


@pytest.mark.slow
def test_republished_file_is_a_loud_hash_only_change(repo: Repo) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.configure(env_config("serve"))
    repo.refresh()
    old_beta = repo.lock("serve").find("beta")[0].hashes
    repo.index.republish("beta", "1.0.1", salt="re-upload")

    run = repo.refresh(upgrade=True)

    r = result(run, "serve")
    assert r.status == "changed", r.error
    assert r.diff is not None
    assert [c.name for c in r.diff.hash_only] == ["beta"]
    beta = changes(r)["beta"]
    assert (beta.change, beta.before, beta.after, beta.kind) == (
        "hash-only",
        "1.0.1",
        "1.0.1",
        None,
    )
    assert beta.hashes_removed == old_beta
    assert len(beta.hashes_added) == 1
    assert set(changes(r)) == {"beta"}
    markdown = render_markdown(run)
    assert "> [!WARNING]" in markdown
    assert "**Hash-only change**: `beta==1.0.1` in `serve`" in markdown
    assert "⚠️ **hash-only**" in markdown


# -- 7. failures leave the old lock alone --------------------------------------------------


def assert_untouched(repo: Repo, env: str, before: tuple[bytes, int], listing: list[str]) -> None:
    path = repo.lock_path(env)
    assert path.read_bytes() == before[0]
    assert path.stat().st_mtime_ns == before[1]
    assert requirements_dir(repo) == listing  # no temporary file left beside the lock


@pytest.mark.slow
def test_new_upstream_lock_that_fails_leaves_its_downstream_uncompiled(repo: Repo) -> None:
    repo.spec("serve", "alpha", "nonexistent-pkg")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))

    run = repo.refresh()

    assert result(run, "serve").failure == "not-found"
    train = result(run, "train")
    assert train.status == "failed"
    assert train.failure == "upstream"
    assert "serve" in (train.error or "")
    assert run.written == ()
    assert not repo.lock_path("train").exists()


@pytest.mark.slow
@both_backends
def test_unknown_package_fails_one_environment_and_keeps_the_others(
    repo: Repo, backend: str
) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma<1")
    repo.configure(env_config("serve", backend=backend), env_config("train", backend=backend))
    repo.refresh()
    repo.spec("serve", "alpha", "nonexistent-pkg")
    repo.spec("train", "gamma<1", "delta")
    before = repo.snapshot()["requirements/serve.txt"]
    listing = requirements_dir(repo)

    run = repo.refresh()

    serve = result(run, "serve")
    assert serve.status == "failed"
    assert serve.failure == "not-found"
    assert serve.error is not None
    assert "nonexistent-pkg" in serve.error
    assert "nonexistent-pkg" in serve.tool_output
    assert serve.new_text is None
    train = result(run, "train")
    assert train.status == "changed", train.error
    assert {name: c.change for name, c in changes(train).items()} == {"delta": "added"}
    assert run.written == ("requirements/train.txt",)
    assert repo.pins("train") == {"gamma": "0.9.0", "delta": "1.0.0"}
    assert run.failed
    assert_untouched(repo, "serve", before, listing)
    assert to_json(run)["environments"][0]["failure"] == "not-found"


@pytest.mark.slow
@both_backends
def test_conflicting_pins_fail_with_the_resolvers_words(repo: Repo, backend: str) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve", backend=backend))
    repo.refresh()
    repo.spec("serve", "beta==1.0.0", "alpha==1.1.0")  # alpha 1.1.0 needs beta>=1.0.1
    before = repo.snapshot()["requirements/serve.txt"]
    listing = requirements_dir(repo)

    run = repo.refresh()

    r = result(run, "serve")
    assert r.status == "failed"
    assert r.failure == "conflict", r.tool_output
    assert r.error is not None
    assert "conflict" in r.error
    assert "beta==1.0.0" in r.tool_output
    assert "beta>=1.0.1" in r.tool_output
    assert run.failed
    assert run.written == ()
    assert_untouched(repo, "serve", before, listing)


@pytest.mark.slow
def test_pip_compile_conflict_explanation_reaches_tool_output(repo: Repo) -> None:
    repo.spec("serve", "beta==1.0.0", "alpha==1.1.0")
    repo.configure(env_config("serve", backend="pip-tools"))

    r = result(repo.refresh(), "serve")

    assert r.failure == "conflict"
    assert "conflicting dependencies" in r.tool_output


@pytest.mark.slow
def test_unreachable_index_is_reported_and_the_lock_kept(
    repo: Repo, unreachable_index_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    repo.refresh()
    # uv retries a refused connection with backoff; once is enough to classify it.
    monkeypatch.setenv("UV_HTTP_RETRIES", "0")
    repo.spec("serve", "alpha", "gamma")
    repo.configure(env_config("serve"), index_url=unreachable_index_url)
    before = repo.snapshot()["requirements/serve.txt"]
    listing = requirements_dir(repo)

    run = repo.refresh()

    r = result(run, "serve")
    assert r.status == "failed"
    assert r.failure == "index-unreachable", r.tool_output
    assert r.error is not None
    assert "index" in r.error
    assert r.tool_output
    assert run.failed
    assert_untouched(repo, "serve", before, listing)


# -- 8. dry runs and selected environments -------------------------------------------------


@pytest.mark.slow
def test_dry_run_reports_changes_and_writes_nothing(repo: Repo) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.configure(env_config("serve"))
    repo.refresh()
    repo.index.publish("beta", "1.0.2")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))
    before = repo.snapshot()

    run = repo.refresh(upgrade=True, dry_run=True)

    assert run.dry_run
    assert run.written == ()
    assert repo.snapshot() == before
    serve, train = result(run, "serve"), result(run, "train")
    assert serve.status == "changed"
    assert {name: (c.change, c.after) for name, c in changes(serve).items()} == {
        "beta": ("upgraded", "1.0.2")
    }
    assert train.status == "changed"  # a new lock, reported but not created
    assert {name: c.change for name, c in changes(train).items()} == {"gamma": "added"}
    assert new_pins(train) == {"gamma": "1.0.0"}
    assert new_pins(serve)["beta"] == "1.0.2"
    assert not repo.lock_path("train").exists()
    assert "dry run: nothing written" in render_markdown(run)


@pytest.mark.slow
def test_selected_environment_compiles_with_what_it_constrains(repo: Repo) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha")
    repo.spec("other", "gamma")
    repo.configure(
        env_config("serve"), env_config("train", constraints=["serve"]), env_config("other")
    )

    run = repo.refresh(environments=["serve"])

    assert [r.name for r in run.compiled.results] == ["serve", "train"]
    assert all(r.status == "changed" for r in run.compiled.results)
    assert run.written == ("requirements/serve.txt", "requirements/train.txt")
    assert not repo.lock_path("other").exists()
    assert repo.pins("train")["beta"] == "1.0.1"

    repo.spec("train", "alpha", "delta")
    run = repo.refresh(environments=["train"])
    assert [r.name for r in run.compiled.results] == ["train"]
    assert run.written == ("requirements/train.txt",)
    assert repo.pins("train") == {"alpha": "1.1.0", "beta": "1.0.1", "delta": "1.0.0"}
    assert not repo.lock_path("other").exists()


# -- 9. consistency across environments ----------------------------------------------------


@pytest.mark.slow
def test_differing_versions_are_reported(repo: Repo) -> None:
    repo.spec("serve", "beta<2")
    repo.spec("train", "beta>=2")
    repo.configure(env_config("serve"), env_config("train"))

    run = repo.refresh()

    assert not run.failed
    assert [(i.package, i.versions, i.required) for i in run.compiled.consistency] == [
        ("beta", (("serve", "1.0.1"), ("train", "2.0.0")), False)
    ]
    assert run.written == ("requirements/serve.txt", "requirements/train.txt")
    assert to_json(run)["consistency"] == [
        {"package": "beta", "versions": {"serve": "1.0.1", "train": "2.0.0"}, "required": False}
    ]


@pytest.mark.slow
def test_consistent_packages_must_agree(repo: Repo) -> None:
    repo.spec("serve", "beta<2")
    repo.spec("train", "beta>=2")
    repo.configure(env_config("serve"), env_config("train"), consistent=["beta"])

    run = repo.refresh()

    assert run.failed
    assert [(i.package, i.required) for i in run.compiled.consistency] == [("beta", True)]
    assert result(run, "serve").status == "changed"
    train = result(run, "train")
    assert train.status == "failed"
    assert train.failure == "consistency"
    assert train.error is not None
    assert "beta is 2.0.0 here but 1.0.1 in serve" in train.error
    assert run.written == ("requirements/serve.txt",)
    assert not repo.lock_path("train").exists()


@pytest.mark.slow
def test_lock_constrained_by_a_rejected_lock_is_not_written(repo: Repo) -> None:
    repo.spec("serve", "beta<2")
    repo.spec("train", "beta>=2", "gamma<1")
    repo.spec("dev", "gamma")  # alone: gamma 1.0.0; against train's new lock: 0.9.0
    repo.configure(
        env_config("serve"),
        env_config("train"),
        env_config("dev", constraints=["train"]),
        consistent=["beta"],
    )

    run = repo.refresh()

    assert result(run, "train").failure == "consistency"
    assert not repo.lock_path("train").exists()
    # dev's lock would record gamma 0.9.0 from a train lock that was never written.
    assert "requirements/dev.txt" not in run.written
    dev = result(run, "dev")
    assert dev.status == "failed"
    assert "train" in (dev.error or "")


# -- 13. parallel compiles -----------------------------------------------------------------


@pytest.mark.slow
def test_independent_environments_compile_in_parallel(repo: Repo) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha")
    repo.spec("other", "gamma<1", "delta")
    repo.configure(
        env_config("train", constraints=["serve"]),
        env_config("serve"),
        env_config("other", backend="pip-tools"),
    )

    run = repo.refresh(max_parallel_compiles=2)

    assert run.compiled.order == ("serve", "train", "other")
    assert [r.name for r in run.compiled.results] == ["serve", "train", "other"]
    assert all(r.status == "changed" for r in run.compiled.results), [
        r.error for r in run.compiled.results
    ]
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.0.1"}
    assert repo.pins("train") == {"alpha": "1.1.0", "beta": "1.0.1"}
    assert repo.pins("other") == {"delta": "1.0.0", "gamma": "0.9.0"}
    assert run.written == (
        "requirements/serve.txt",
        "requirements/train.txt",
        "requirements/other.txt",
    )
