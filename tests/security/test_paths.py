"""Hostile repositories: paths from the config, specs, locks, Dockerfiles and commands that
lead outside the repository (symlinks, ``..``, absolute paths) are refused with a message
naming the file and the link, and nothing outside is ever read into a message or written.

End to end through ``lockwarden run`` (compiles against the local index) and through a
``/lockwarden ignore`` comment on the fake GitHub.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from bot.config import RepoConfig
from bot.images.digest import ImageCache
from bot.locks.ignore import IGNORE_FILE
from bot.pipeline.build import build_images
from bot.results import LockResult
from tests.commands.conftest import REPO, World
from tests.pipeline.conftest import Repo, env_config, new_repo, publish_graph, snapshot
from tests.support.fake_github import FakeGitHub, Person
from tests.support.index_server import PackageIndex
from tests.test_cli import lockwarden
from tests.test_paths import make_outside

SECRET = "SECRET-LINE-do-not-quote ===\n"
PASSWD = Path("/etc/passwd")


@pytest.fixture
def repo(tmp_path: Path, package_index: PackageIndex) -> Repo:
    return new_repo(tmp_path, publish_graph(package_index))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return make_outside(tmp_path, SECRET)


def git_init(root: Path) -> None:
    """Make ``root`` a git checkout: the staging copy then lists files with git."""
    subprocess.run(
        ["git", "init", "--quiet", str(root)],
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"},
    )


def run(repo: Repo, report: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    """``lockwarden run REPO --no-build --json REPORT ARGS``; the result and the report."""
    result = lockwarden(repo, "--no-build", "--json", str(report), *args)
    data = json.loads(report.read_text("utf-8"))
    assert isinstance(data, dict)
    return result, data


def errors(data: dict[str, Any]) -> dict[str, str | None]:
    return {env["name"]: env["error"] for env in data["environments"]}


def watched(*paths: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtimes of every file under ``paths`` (files or folders)."""
    out: dict[str, tuple[bytes, int]] = {}
    for path in paths:
        if path.is_dir():
            out.update({f"{path}/{k}": v for k, v in snapshot(path).items()})
        else:
            out[str(path)] = (path.read_bytes(), path.stat().st_mtime_ns)
    return out


def assert_not_quoted(result: Result, data: dict[str, Any], *texts: str) -> None:
    shown = result.output + json.dumps(data)
    for text in texts:
        assert text not in shown


def passwd_lines() -> list[str]:
    return [line for line in PASSWD.read_text("utf-8").splitlines() if line][:3]


# -- config paths --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("git", [True, False], ids=["git", "plain"])
@pytest.mark.parametrize("dry_run", [True, False], ids=["dry-run", "write"])
def test_lock_through_a_folder_symlink_out_is_refused(
    repo: Repo, outside: Path, tmp_path: Path, git: bool, dry_run: bool
) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve", lock="out/serve.txt"), env_config("train"))
    (repo.root / "out").symlink_to(outside)
    if git:
        git_init(repo.root)
    before_outside = watched(outside)
    before_repo = repo.snapshot()

    result, data = run(repo, tmp_path / "report.json", *(["--dry-run"] if dry_run else []))

    assert result.exit_code == 1, result.output
    error = errors(data)["serve"]
    assert error == (
        "environment 'serve' (in .github/lockwarden.yml), lock: path 'out/serve.txt' leads "
        f"outside the repository (symlink 'out' -> '{outside}'); Lockwarden only reads and "
        "writes files inside the repository: use a relative path to a real file in the "
        "repository"
    )
    # the other environment still finishes
    assert errors(data)["train"] is None
    assert watched(outside) == before_outside
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    if dry_run:
        assert repo.snapshot() == before_repo
    else:
        assert (repo.root / "requirements/train.txt").is_file()


@pytest.mark.slow
def test_lock_symlinked_to_etc_passwd_is_refused_and_not_quoted(repo: Repo, tmp_path: Path) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    repo.lock_path("serve").symlink_to(PASSWD)
    before = watched(PASSWD)

    result, data = run(repo, tmp_path / "report.json")

    assert result.exit_code == 1
    error = errors(data)["serve"]
    assert error is not None
    assert (
        "lock: path 'requirements/serve.txt' leads outside the repository "
        "(symlink 'requirements/serve.txt' -> '/etc/passwd')" in error
    )
    assert_not_quoted(result, data, *passwd_lines())
    assert watched(PASSWD) == before
    assert repo.lock_path("serve").is_symlink()


@pytest.mark.slow
def test_spec_symlinked_out_is_refused_and_not_quoted(
    repo: Repo, outside: Path, tmp_path: Path
) -> None:
    repo.spec("train", "gamma")
    (repo.root / "requirements/serve.in").symlink_to(outside / "secret.txt")
    repo.configure(env_config("serve"), env_config("train"))
    before = watched(outside)

    result, data = run(repo, tmp_path / "report.json")

    assert (
        "spec: path 'requirements/serve.in' leads outside the repository (symlink "
        f"'requirements/serve.in' -> '{outside}/secret.txt')" in str(errors(data)["serve"])
    )
    assert errors(data)["train"] is None
    assert_not_quoted(result, data, "SECRET-LINE")
    assert watched(outside) == before
    assert not (repo.root / "requirements/serve.txt").exists()


# -- includes in specs ---------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(
            "-c ../../../../etc/passwd",
            "requirements/serve.in:2: path '../../../../etc/passwd' leaves the repository "
            "through '..'",
            id="c-dotdot-passwd",
        ),
        pytest.param(
            "-r /etc/passwd",
            "requirements/serve.in:2: path '/etc/passwd' is absolute",
            id="r-absolute",
        ),
        pytest.param(
            "--constraint=../../outside/secret.txt",
            "requirements/serve.in:2: path '../../outside/secret.txt' leaves the repository",
            id="constraint-equals",
        ),
        pytest.param(
            "--requirement ../../outside/secret.txt",
            "requirements/serve.in:2: path '../../outside/secret.txt' leaves the repository",
            id="requirement-long",
        ),
        pytest.param(
            "-c pins.txt",
            "requirements/serve.in:2: path 'requirements/pins.txt' leads outside the "
            "repository (symlink 'requirements/pins.txt' -> '{outside}/secret.txt')",
            id="c-to-a-link-out",
        ),
        pytest.param(
            "-r nested.in",
            "requirements/nested.in:1: path '/etc/passwd' is absolute",
            id="nested-include",
        ),
    ],
)
def test_includes_leading_outside_are_refused(
    repo: Repo, outside: Path, tmp_path: Path, line: str, message: str
) -> None:
    repo.spec("serve", "alpha", line)
    repo.write("requirements/nested.in", "-r /etc/passwd\n")
    (repo.root / "requirements/pins.txt").symlink_to(outside / "secret.txt")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve"), env_config("train"))
    before = watched(outside, PASSWD)

    result, data = run(repo, tmp_path / "report.json")

    assert result.exit_code == 1
    assert str(errors(data)["serve"]).startswith(message.format(outside=outside))
    assert errors(data)["train"] is None
    assert_not_quoted(result, data, "SECRET-LINE", *passwd_lines())
    assert watched(outside, PASSWD) == before
    assert not repo.lock_path("serve").exists()


# -- ignore file: the pipeline and the command ----------------------------------------------


@pytest.mark.slow
def test_ignore_file_symlinked_out_fails_every_environment(
    repo: Repo, outside: Path, tmp_path: Path
) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    (repo.root / ".github/lockwarden-ignore.txt").symlink_to(outside / "secret.txt")
    before = watched(outside)

    result, data = run(repo, tmp_path / "report.json")

    assert (
        ".github/lockwarden-ignore.txt: path '.github/lockwarden-ignore.txt' leads outside "
        "the repository" in str(errors(data)["serve"])
    )
    assert_not_quoted(result, data, "SECRET-LINE")
    assert watched(outside) == before


@pytest.fixture
def world(fake: FakeGitHub, package_index: PackageIndex, tmp_path: Path) -> World:
    """The commands' repository (``tests/commands``): merged locks, an open refresh PR."""
    for name in ("beta", "gamma"):
        package_index.publish(name, "1.0.0")
    return World(fake, package_index, tmp_path)


def commit_symlink(world: World, path: str, target: str) -> None:
    """Commit a symlink (mode 120000) at ``path`` onto the default branch of the fake."""
    state = world.fake.repo(REPO)
    git, branch = state.git, state.default_branch
    parent = git.branch_sha(branch)
    assert parent is not None
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.git("read-tree", parent, env=env)
        blob = git.git("hash-object", "-w", "--stdin", input=target.encode())
        git.git("update-index", "--index-info", input=f"120000 {blob}\t{path}\n".encode(), env=env)
        tree = git.git("write-tree", env=env)
    sha = git.commit_tree(tree, [parent], "Add a link", Person("Mallory", "m@example.com"))
    git.update_ref(f"refs/heads/{branch}", sha, parent)


@pytest.mark.slow
def test_ignore_command_does_not_write_through_a_symlinked_ignore_file(
    world: World, outside: Path
) -> None:
    commit_symlink(world, IGNORE_FILE, str(outside / "secret.txt"))
    before = watched(outside)
    pushes = len(world.fake.pushes)

    command = '/lockwarden ignore beta ">=2" -- SHOULD-NOT-LAND'
    world.comment(command)

    reply = world.reply_to(command)
    # The reply is Markdown: the message is escaped (the arrow's ">" as an entity).
    assert (
        f"{IGNORE_FILE}: path '{IGNORE_FILE}' leads outside the repository (symlink "
        f"'{IGNORE_FILE}' -&gt; '{outside}/secret.txt')" in reply
    )
    assert "SECRET-LINE" not in reply
    assert watched(outside) == before
    assert "SHOULD-NOT-LAND" not in (outside / "secret.txt").read_text("utf-8")
    assert len(world.fake.pushes) == pushes


# -- Dockerfile and build context ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "field", "path", "link"),
    [
        pytest.param(
            {"dockerfile": "docker/Dockerfile"},
            "dockerfile",
            "docker/Dockerfile",
            "docker",
            id="dockerfile-folder",
        ),
        pytest.param(
            {"dockerfile": "Dockerfile", "context": "ctx"}, "context", "ctx", "ctx", id="context"
        ),
    ],
)
def test_dockerfile_or_context_symlinked_out_is_refused(
    repo: Repo,
    outside: Path,
    tmp_path: Path,
    extra: dict[str, str],
    field: str,
    path: str,
    link: str,
) -> None:
    (outside / "Dockerfile").write_text("FROM scratch\n# SECRET-LINE\n", "utf-8")
    repo.write("Dockerfile", "FROM scratch\n")
    (repo.root / link).symlink_to(outside)
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve", **extra))
    before = watched(outside)

    result, data = run(repo, tmp_path / "report.json")
    expected = (
        f"environment 'serve' (in .github/lockwarden.yml), {field}: path '{path}' leads "
        f"outside the repository (symlink '{link}' -> '{outside}')"
    )
    assert str(errors(data)["serve"]).startswith(expected)

    # the build stage checks both trees too, builder or not
    config = RepoConfig.model_validate({"environments": [env_config("serve", **extra)]})
    lock = LockResult("serve", "requirements/serve.in", "requirements/serve.txt", "uv", "changed")
    images = build_images(
        repo.root,
        repo.root,
        "repo",
        config,
        {"serve": lock},
        None,
        ImageCache(tmp_path / "images"),
        verify_reproducible=False,
        timeout_s=10,
    )
    assert [(i.status, str(i.reason).startswith(expected)) for i in images] == [("failed", True)]
    assert images[0].findings == ()
    assert_not_quoted(result, data, "SECRET-LINE")
    assert watched(outside) == before


# -- what still works ----------------------------------------------------------------------


@pytest.mark.slow
def test_in_tree_relative_symlinks_still_work(repo: Repo, outside: Path, tmp_path: Path) -> None:
    repo.write("shared/base.in", "gamma\n")
    (repo.root / "requirements/base.in").symlink_to("../shared/base.in")
    repo.spec("serve", "alpha", "-r base.in")
    (repo.root / "locks").symlink_to("requirements")
    repo.spec("train", "delta")
    (repo.root / "specs").mkdir()
    (repo.root / "specs/train.in").symlink_to("../requirements/train.in")
    repo.configure(
        env_config("serve", lock="locks/serve.txt"),
        env_config("train", spec="specs/train.in", lock="requirements/train.txt"),
    )
    git_init(repo.root)
    before = watched(outside)

    result, data = run(repo, tmp_path / "report.json")

    assert result.exit_code == 0, result.output
    assert errors(data) == {"serve": None, "train": None}
    assert (repo.root / "locks").is_symlink()
    assert set(repo.pins("serve")) == {"alpha", "beta", "gamma"}
    assert set(repo.pins("train")) == {"delta"}
    assert watched(outside) == before


@pytest.mark.slow
def test_dry_run_writes_nothing_anywhere(repo: Repo, outside: Path, tmp_path: Path) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.configure(env_config("serve"), env_config("train", lock="out/train.txt"))
    (repo.root / "out").symlink_to(outside)
    git_init(repo.root)
    before_repo, before_outside = repo.snapshot(), watched(outside)

    result, data = run(repo, tmp_path / "report.json", "--dry-run")

    assert result.exit_code == 1
    assert errors(data)["serve"] is None
    assert "symlink 'out'" in str(errors(data)["train"])
    assert repo.snapshot() == before_repo
    assert watched(outside) == before_outside
    assert sorted(os.listdir(outside)) == ["secret.txt"]
