"""Ignored versions in the compile stage: ``.github/lockwarden-ignore.txt`` end to end, with
real pip-compile and real uv resolving against the local package index."""

from __future__ import annotations

import os
import shlex

import pytest

from bot.locks.compiler import CompileRequest, LockBackend, tool_environment
from bot.locks.formats.requirements.pip_tools import PipToolsBackend
from bot.locks.formats.requirements.uv import UvBackend, find_uv
from bot.locks.ignore import IGNORE_FILE, strip_constraint_annotations
from bot.results import LockResult, RunResult
from tests.pipeline.conftest import BACKENDS, Repo, env_config
from tests.support.sandbox import SANDBOX

both_backends = pytest.mark.parametrize("backend", BACKENDS)

HIDDEN = "requirements/.serve.txt.lockwarden-ignore.txt"


def result(run: RunResult, name: str = "serve") -> LockResult:
    found = [r for r in run.compiled.results if r.name == name]
    assert len(found) == 1, [r.name for r in run.compiled.results]
    return found[0]


def listing(repo: Repo) -> list[str]:
    return sorted(p.name for p in (repo.root / "requirements").iterdir())


def assert_hidden_file_used(r: LockResult, text: str) -> None:
    """The exclusions reached the compiler and left no trace in the lock or the tree."""
    assert f"--constraint={HIDDEN}" in r.command
    assert "lockwarden-ignore" not in r.header_command
    assert "lockwarden-ignore" not in text


@pytest.mark.slow
@both_backends
def test_ignored_range_is_kept_out_of_a_full_upgrade(repo: Repo, backend: str) -> None:
    repo.index.publish("beta", "1.1.0")
    repo.spec("serve", "alpha", "gamma")
    repo.configure(env_config("serve", backend=backend))
    first = result(repo.refresh())
    assert first.status == "changed", first.error
    assert repo.pins("serve")["beta"] == "2.0.0"
    header = repo.lock("serve").header

    repo.write(
        IGNORE_FILE,
        "# keep beta 2 out\nbeta>=2.0  # ignored by @alice in #12: waiting for the 2.x migration\n",
    )
    r = result(repo.refresh(upgrade=True))

    assert r.status == "changed", (r.error, r.tool_output)
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.1.0", "gamma": "1.0.0"}
    assert r.diff is not None
    assert [(c.name, c.change, c.before, c.after) for c in r.diff.changes] == [
        ("beta", "downgraded", "2.0.0", "1.1.0")
    ]
    text = repo.lock_text("serve")
    assert text == r.new_text
    assert repo.lock("serve").header == header
    assert r.header_command == first.header_command
    assert_hidden_file_used(r, text)
    assert f"kept out by {IGNORE_FILE}: beta>=2.0" in r.notes
    assert listing(repo) == ["serve.in", "serve.txt"]
    assert all(entry.hashes for entry in repo.lock("serve").requirements)


@pytest.mark.slow
@both_backends
def test_ignored_range_moves_an_existing_pin_without_upgrade(repo: Repo, backend: str) -> None:
    repo.index.publish("beta", "1.1.0")
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve", backend=backend))
    repo.refresh()
    assert repo.pins("serve")["beta"] == "2.0.0"

    repo.write(IGNORE_FILE, "beta>=2.0\n")
    r = result(repo.refresh())

    assert r.status == "changed", (r.error, r.tool_output)
    assert repo.pins("serve")["beta"] == "1.1.0"
    assert_hidden_file_used(r, repo.lock_text("serve"))


@pytest.mark.slow
@both_backends
def test_rule_without_version_holds_the_locked_one(repo: Repo, backend: str) -> None:
    repo.spec("serve", "alpha", "beta<2", "delta")
    repo.configure(env_config("serve", backend=backend))
    repo.refresh()
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.0.1", "delta": "1.0.0"}
    repo.index.publish("beta", "1.1.0")
    repo.index.publish("delta", "1.1.0")
    repo.write(IGNORE_FILE, "beta  # ignored by @bob in #15\njax>=1  # not in this lock\n")

    r = result(repo.refresh(upgrade=True))

    assert r.status == "changed", (r.error, r.tool_output)
    assert repo.pins("serve") == {"alpha": "1.1.0", "beta": "1.0.1", "delta": "1.1.0"}
    assert_hidden_file_used(r, repo.lock_text("serve"))
    # jax is not in this environment: the note leaves it out.
    assert r.notes == (f"kept out by {IGNORE_FILE}: beta (held at 1.0.1)",)


@pytest.mark.slow
def test_rule_that_leaves_nothing_fails_and_keeps_the_lock(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    repo.refresh()
    before = repo.lock_path("serve").read_bytes()
    files = listing(repo)
    repo.write(IGNORE_FILE, "beta>=1.0\n")  # alpha needs beta>=1.0.1

    r = result(repo.refresh(upgrade=True))

    assert r.status == "failed"
    assert r.failure == "conflict", r.tool_output
    assert r.notes == (f"kept out by {IGNORE_FILE}: beta>=1.0",)
    assert repo.lock_path("serve").read_bytes() == before
    assert listing(repo) == files


def test_malformed_ignore_file_fails_every_environment(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))
    repo.write(IGNORE_FILE, "# rules\nbeta>=2\nnumpy~=2.1  # ignored by @alice\n")

    run = repo.refresh()

    assert run.failed
    assert run.written == ()
    for name in ("serve", "train"):
        r = result(run, name)
        assert r.status == "failed"
        assert r.failure == "spec"
        assert r.error is not None
        assert r.error.startswith(f"{IGNORE_FILE}:3: "), r.error
        assert "'numpy>=2.1'" in r.error
    assert listing(repo) == ["serve.in", "train.in"]


@pytest.mark.slow
@both_backends
@pytest.mark.parametrize("style", ["split", "line"])
def test_constraint_that_changes_nothing_leaves_the_lock_byte_identical(
    repo: Repo, backend: str, style: str
) -> None:
    # beta comes from the spec and from alpha; gamma from the spec alone, so its annotation
    # collapses to one line once the exclusions file is taken out.
    repo.spec("serve", "alpha", "beta", "gamma")
    repo.configure(
        env_config(
            "serve",
            backend=backend,
            compile_args=["--no-emit-index-url", f"--annotation-style={style}"],
        )
    )
    repo.write(IGNORE_FILE, "# nothing applies yet\n")
    first = result(repo.refresh())
    assert first.status == "changed", first.error
    assert "lockwarden-ignore" not in shlex.join(first.command)
    clean = repo.lock_text("serve")

    repo.write(IGNORE_FILE, "beta>=3.0\ngamma<0.1\n")
    r = result(repo.refresh(upgrade=True))

    assert r.status == "unchanged", (r.error, r.tool_output, r.new_text)
    assert r.new_text == clean
    assert repo.lock_text("serve") == clean
    assert_hidden_file_used(r, clean)
    assert r.notes == (f"kept out by {IGNORE_FILE}: beta>=3.0, gamma<0.1",)


@pytest.mark.slow
@both_backends
@pytest.mark.parametrize("style", ["split", "line"])
@pytest.mark.parametrize("hashes", [True, False], ids=["hashes", "no-hashes"])
def test_strip_matches_a_compile_without_the_constraint(
    repo: Repo, backend: str, style: str, hashes: bool
) -> None:
    """The compilers' own output, taken directly: with the constraint and stripped, it equals
    the output without the constraint (the pipeline test above checks the same through
    ``_compile_one``; this one pins down the raw annotation formats)."""
    repo.spec("serve", "alpha", "beta", "gamma")
    repo.write(HIDDEN, "beta<3.0\ngamma>=0.1\n")
    env = tool_environment(os.environ, isolate=True, cache_dir=repo.cache_dir)
    compiler: LockBackend = (
        PipToolsBackend(env, SANDBOX)
        if backend == "pip-tools"
        else UvBackend(env, find_uv(None), SANDBOX)
    )
    outputs = {}
    for hidden in ((), (HIDDEN,)):
        output = repo.root / f"out-{len(hidden)}.txt"
        outcome = compiler.compile(
            CompileRequest(
                root=repo.root,
                spec="requirements/serve.in",
                lock="requirements/serve.txt",
                output=output,
                existing=None,
                hidden_constraints=hidden,
                extra_args=(
                    *(["--generate-hashes"] if hashes else []),
                    f"--annotation-style={style}",
                ),
                index_url=repo.index.url,
            )
        )
        assert outcome.ok, outcome.tool_output
        assert "lockwarden-ignore" not in outcome.header_command
        outputs[hidden] = output.read_text("utf-8")

    with_constraint = outputs[(HIDDEN,)]
    assert f"-c {HIDDEN}" in with_constraint
    assert strip_constraint_annotations(with_constraint, HIDDEN) == outputs[()]
