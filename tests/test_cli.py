"""``lockwarden run`` and ``lockwarden schema``: exit codes, what goes to stdout and stderr,
and the files ``--json`` / ``--report`` write. Compiles run for real against the local index."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from tests.pipeline.conftest import Repo, env_config, new_repo, pins_of, publish_graph
from tests.support.index_server import PackageIndex

CONFIG = ".github/lockwarden.yml"


@pytest.fixture
def repo(tmp_path: Path, package_index: PackageIndex) -> Repo:
    return new_repo(tmp_path, publish_graph(package_index))


def lockwarden(repo: Repo, *args: str) -> Result:
    """``lockwarden run <repo> ARGS`` in-process, with the repository's own cache."""
    runner = CliRunner()
    return runner.invoke(
        main,
        ["run", str(repo.root), *args],
        env={"LOCKWARDEN_CACHE_DIR": str(repo.cache_dir)},
        catch_exceptions=False,
    )


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {env["name"]: env for env in report["environments"]}


# -- 11. the JSON contract -----------------------------------------------------------------


@pytest.mark.slow
def test_run_writes_the_json_and_markdown_reports(repo: Repo, tmp_path: Path) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha", "gamma")
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))
    out, report = tmp_path / "out.json", tmp_path / "report.md"

    result = lockwarden(repo, "--json", str(out), "--report", str(report))

    assert result.exit_code == 0, result.output
    assert "wrote requirements/serve.txt, requirements/train.txt" in result.stdout
    data = read_json(out)
    assert {"repo", "environments", "consistency"} <= set(data)
    assert data["repo"] == "repo"
    assert data["consistency"] == []
    assert data["failed"] is False
    assert [env["name"] for env in data["environments"]] == ["serve", "train"]
    for env in data["environments"]:
        assert {"name", "spec", "lock", "status", "error", "changes", "timings"} <= set(env)
        assert env["status"] == "changed"
        assert env["error"] is None
        assert isinstance(env["timings"]["compile_s"], float)
        assert env["changes"]
        for change in env["changes"]:
            assert {"name", "from", "to", "kind", "direct"} <= set(change)
            assert change["from"] is None
            assert change["kind"] is None
    serve = by_name(data)["serve"]
    assert (serve["spec"], serve["lock"]) == ("requirements/serve.in", "requirements/serve.txt")
    assert {c["name"]: c["to"] for c in serve["changes"]} == {"alpha": "1.1.0", "beta": "1.0.1"}
    train = {c["name"]: c for c in by_name(data)["train"]["changes"]}
    assert train["beta"]["to"] == "1.0.1"
    assert train["beta"]["direct"] is False
    assert train["gamma"]["direct"] is True
    markdown = report.read_text("utf-8")
    assert markdown.startswith("## Lockwarden: lock refresh for `repo`")
    assert "2 changed · 0 failed" in markdown


@pytest.mark.slow
def test_json_to_stdout_prints_only_json(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))

    result = lockwarden(repo, "--json", "-")

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert by_name(data)["serve"]["status"] == "changed"
    assert "serve" in result.stderr  # the summary moved to stderr
    assert "wrote requirements/serve.txt" in result.stderr


# -- 8. dry runs and --env -----------------------------------------------------------------


@pytest.mark.slow
def test_dry_run_writes_nothing_but_reports_the_changes(repo: Repo, tmp_path: Path) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.configure(env_config("serve"))
    assert lockwarden(repo).exit_code == 0
    repo.index.publish("beta", "1.0.2")
    repo.spec("train", "gamma")  # a new lock
    repo.configure(env_config("serve"), env_config("train", constraints=["serve"]))
    before = repo.snapshot()

    result = lockwarden(repo, "--dry-run", "--upgrade", "--json", "-")

    assert result.exit_code == 0, result.output
    assert repo.snapshot() == before
    assert not repo.lock_path("train").exists()
    data = json.loads(result.stdout)
    assert data["dry_run"] is True
    assert data["written"] == []
    envs = by_name(data)
    assert envs["serve"]["status"] == "changed"
    assert [(c["name"], c["change"], c["from"], c["to"]) for c in envs["serve"]["changes"]] == [
        ("beta", "upgraded", "1.0.1", "1.0.2")
    ]
    assert envs["train"]["status"] == "changed"
    assert [(c["name"], c["change"]) for c in envs["train"]["changes"]] == [("gamma", "added")]
    assert "dry run: nothing was written" in result.stderr


@pytest.mark.slow
def test_env_option_compiles_that_environment_and_what_it_constrains(
    repo: Repo, tmp_path: Path
) -> None:
    repo.spec("serve", "alpha", "beta<2")
    repo.spec("train", "alpha")
    repo.spec("other", "gamma")
    repo.configure(
        env_config("serve"), env_config("train", constraints=["serve"]), env_config("other")
    )
    out = tmp_path / "out.json"

    result = lockwarden(repo, "--env", "serve", "--json", str(out))

    assert result.exit_code == 0, result.output
    assert [env["name"] for env in read_json(out)["environments"]] == ["serve", "train"]
    assert "other" not in result.stdout
    assert repo.lock_path("train").exists()
    assert not repo.lock_path("other").exists()


def test_unknown_env_option_is_a_usage_error(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    before = repo.snapshot()

    result = lockwarden(repo, "--env", "nope")

    assert result.exit_code == 2
    assert "unknown environment 'nope' (known: serve)" in result.stderr
    assert repo.snapshot() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ["--upgrade", "--upgrade-package", "beta"],
            "--upgrade and --upgrade-package cannot be combined",
            id="upgrade-and-targeted",
        ),
        pytest.param(
            ["--upgrade-package", "beta>=1"],
            "give a package name, optionally with ==VERSION",
            id="targeted-range",
        ),
    ],
)
def test_invalid_mode_options_exit_2(repo: Repo, args: list[str], message: str) -> None:
    repo.spec("serve", "alpha")
    repo.configure(env_config("serve"))
    before = repo.snapshot()

    result = lockwarden(repo, *args)

    assert result.exit_code == 2
    assert message in result.stderr
    assert repo.snapshot() == before


# -- 7. failures ---------------------------------------------------------------------------


@pytest.mark.slow
def test_failed_environment_exits_1_names_it_and_keeps_its_lock(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma<1")
    repo.configure(env_config("serve"), env_config("train"))
    assert lockwarden(repo).exit_code == 0
    repo.spec("serve", "alpha", "nonexistent-pkg")
    repo.spec("train", "gamma<1", "delta")
    before = repo.snapshot()["requirements/serve.txt"]

    result = lockwarden(repo)

    assert result.exit_code == 1, result.output
    assert "error: serve: no release of nonexistent-pkg" in result.stdout
    assert "wrote requirements/train.txt" in result.stdout
    assert repo.snapshot()["requirements/serve.txt"] == before
    assert pins_of(repo.lock_text("train")) == {"delta": "1.0.0", "gamma": "0.9.0"}


# -- 9. consistency ------------------------------------------------------------------------


@pytest.mark.slow
def test_consistent_rule_fails_the_run(repo: Repo, tmp_path: Path) -> None:
    repo.spec("serve", "beta<2")
    repo.spec("train", "beta>=2")
    repo.configure(env_config("serve"), env_config("train"), consistent=["beta"])
    out = tmp_path / "out.json"

    result = lockwarden(repo, "--json", str(out))

    assert result.exit_code == 1, result.output
    assert "error: beta differs across environments: serve 1.0.1, train 2.0.0" in result.stdout
    assert "error: train: 'consistent' requires one version" in result.stdout
    assert repo.lock_path("serve").exists()
    assert not repo.lock_path("train").exists()
    data = read_json(out)
    assert data["consistency"] == [
        {"package": "beta", "versions": {"serve": "1.0.1", "train": "2.0.0"}, "required": True}
    ]
    assert by_name(data)["train"]["failure"] == "consistency"
    assert data["written"] == ["requirements/serve.txt"]


# -- 3. discovery and cycles ---------------------------------------------------------------


@pytest.mark.slow
def test_discovery_follows_in_spec_constraints_and_says_what_it_found(
    repo: Repo, tmp_path: Path
) -> None:
    # No config file: the index comes from the specs themselves.
    index = f"--index-url {repo.index.url}"
    repo.spec("serve", index, "alpha", "beta<2")
    repo.spec("train", index, "-c serve.txt", "alpha", "gamma")
    repo.spec("eval", index, "-c train.txt", "alpha", "delta")  # sorts first by name
    for env in ("serve", "train", "eval"):  # locks a person wrote: discovery wants them
        repo.lock_path(env).write_text("alpha==1.0.0\nbeta==1.0.0\n", "utf-8")
    out = tmp_path / "out.json"

    result = lockwarden(repo, "--upgrade", "--json", str(out))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "No .github/lockwarden.yml: discovered 3 environments:"
    assert set(lines[1:4]) == {
        "  eval: requirements/eval.in -> requirements/eval.txt; constrained by train",
        "  serve: requirements/serve.in -> requirements/serve.txt",
        "  train: requirements/train.in -> requirements/train.txt; constrained by serve",
    }
    data = read_json(out)
    assert data["config_source"] == "discovery"
    assert [env["name"] for env in data["environments"]] == ["serve", "train", "eval"]
    assert [env["constrained_by"] for env in data["environments"]] == [[], ["serve"], ["train"]]
    assert all(env["status"] == "changed" for env in data["environments"])
    assert pins_of(repo.lock_text("serve"))["beta"] == "1.0.1"
    assert pins_of(repo.lock_text("train"))["beta"] == "1.0.1"
    # Alone, eval would take beta 2.0.0: it was compiled after train, against its new lock.
    assert pins_of(repo.lock_text("eval")) == {"alpha": "1.1.0", "beta": "1.0.1", "delta": "1.0.0"}
    assert not (repo.root / CONFIG).exists()


def test_discovery_without_any_lock_says_how_to_start_and_writes_nothing(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "-c serve.txt", "gamma")
    before = repo.snapshot()

    result = lockwarden(repo)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    message = " ".join(result.stderr.split())
    assert "discovery proposes only specs that have a lock" in message
    assert "requirements/serve.in: no requirements/serve.txt" in message
    assert "requirements/train.in: no requirements/train.txt" in message
    assert "'pip-compile requirements/serve.in'" in message
    assert "list the environments under 'environments' in .github/lockwarden.yml" in message
    assert repo.snapshot() == before


@pytest.mark.slow
def test_a_development_environment_file_without_a_lock_is_left_alone(repo: Repo) -> None:
    repo.spec("serve", f"--index-url {repo.index.url}", "gamma")
    repo.lock_path("serve").write_text("gamma==0.9.0\n", "utf-8")
    # Its channel answers nothing: solving it would fail the run.
    repo.write(
        "environment.yml",
        "name: dev\nchannels: [http://127.0.0.1:9/conda]\ndependencies: [python, jupyter]\n",
    )

    result = lockwarden(repo, "--no-build")

    assert result.exit_code == 0, result.output
    assert "  serve: requirements/serve.in -> requirements/serve.txt" in result.stdout
    assert "Not refreshed, no lock yet" in result.stdout
    assert "  environment.yml: no conda-linux-64.lock" in result.stdout
    assert pins_of(repo.lock_text("serve")) == {"gamma": "0.9.0"}
    assert not list(repo.root.glob("conda-*.lock"))


def test_unknown_env_without_a_config_lists_the_discovered_ones(repo: Repo) -> None:
    for env in ("serve", "train"):
        repo.spec(env, "alpha")
        repo.lock_path(env).write_text("alpha==1.0.0\n", "utf-8")
    before = repo.snapshot()

    result = lockwarden(repo, "--env", "nosuch")

    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert message.startswith(f"error: {repo.root}: unknown environment 'nosuch'")
    assert "there is no .github/lockwarden.yml, and discovery found serve, train" in message
    assert "pass one of those to --env" in message
    assert repo.snapshot() == before


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=root,
        check=True,
        capture_output=True,
    )


@pytest.mark.parametrize(
    ("ignored", "rule"),
    [
        pytest.param("requirements/serve.in", "requirements/*.in", id="spec"),
        pytest.param("requirements/serve.txt", "*.txt", id="lock"),
    ],
)
def test_a_git_ignored_spec_or_lock_is_reported_with_its_rule(
    repo: Repo, ignored: str, rule: str
) -> None:
    repo.spec("serve", "alpha")
    repo.lock_path("serve").write_text("alpha==1.0.0\n", "utf-8")
    repo.write(".gitignore", f"# local files\n{rule}\n")
    git(repo.root, "init", "-q")
    git(repo.root, "add", "-A")
    git(repo.root, "commit", "-q", "-m", "init")
    before = repo.snapshot()

    result = lockwarden(repo, "--no-build")

    assert result.exit_code == 1, result.output
    message = " ".join(result.stdout.split())
    assert f"{ignored} is git-ignored (.gitignore:2: {rule})" in message
    assert f"commit it ('git add -f {ignored}') or remove the ignore rule" in message
    assert "not found" not in message
    assert repo.snapshot() == before


def test_constraint_cycle_exits_2_naming_the_cycle(repo: Repo) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.configure(
        env_config("serve", constraints=["train"]), env_config("train", constraints=["serve"])
    )
    before = repo.snapshot()

    result = lockwarden(repo)

    assert result.exit_code == 2
    assert "cycle" in result.stderr
    assert "serve -> train -> serve" in result.stderr
    assert result.stdout == ""
    assert repo.snapshot() == before


# -- 10. configuration errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "where", "field", "message"),
    [
        pytest.param(
            "environments:\n"
            "  - name: serve\n"
            "    spec: requirements/serve.in\n"
            "    constraint: [train]\n",
            f"{CONFIG}:4",
            "environments[0].constraint",
            "unknown field",
            id="unknown-field",
        ),
        pytest.param(
            "environments:\n  - name: serve\n    spec: requirements/serve.in\n    python: 3.11\n",
            f"{CONFIG}:4",
            "environments[0].python",
            "write the version in quotes",
            id="wrong-type",
        ),
        pytest.param(
            "environments:\n"
            "  - name: serve\n"
            "    spec: requirements/serve.in\n"
            "  - name: train\n"
            "    spec: requirements/train.in\n"
            "    constraints:\n"
            "      - serve\n"
            "      - nope\n",
            f"{CONFIG}:8",
            "environments[1].constraints[1]",
            "unknown environment 'nope' (known: serve, train)",
            id="unknown-constraint",
        ),
    ],
)
def test_config_errors_name_file_line_and_field(
    repo: Repo, config: str, where: str, field: str, message: str
) -> None:
    repo.spec("serve", "alpha")
    repo.spec("train", "gamma")
    repo.write(CONFIG, config)
    before = repo.snapshot()

    result = lockwarden(repo)

    assert result.exit_code == 2
    assert f"error: {where} (field '{field}'): " in result.stderr
    assert message in result.stderr
    assert result.stdout == ""
    assert repo.snapshot() == before


# -- 12. the schema ------------------------------------------------------------------------


def test_schema_command_prints_the_config_json_schema() -> None:
    executable = shutil.which("lockwarden", path=str(Path(sys.executable).parent))
    assert executable is not None
    proc = subprocess.run(
        [executable, "schema"], capture_output=True, text=True, check=True, timeout=60
    )

    schema = json.loads(proc.stdout)
    assert "environments" in schema["properties"]
    environment = schema["$defs"]["EnvironmentConfig"]
    assert {
        "name",
        "spec",
        "lock",
        "constraints",
        "python",
        "backend",
        "compile_args",
    } <= set(environment["properties"])
    assert {"name", "spec"} <= set(environment["required"])
    assert environment["additionalProperties"] is False
