"""The compile stage's handling of environments that own several files (other platforms'
locks, exports), of backends that cannot start, and of seeded files restated against the
default branch. Backends here are stand-ins that write known texts: the stage's bookkeeping
is under test, not a resolver."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.config import EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.locks.compiler import CompileOutcome, CompileRequest
from bot.locks.options import Tool
from bot.pipeline.compile import against_baseline, compile_environments
from bot.settings import Settings
from bot.worker import make_backends
from tests.support.sandbox import SANDBOX

MAIN = "requirements/serve.txt"
ARM = "requirements/serve.linux-arm64.txt"


@dataclass
class WritingBackend:
    """Writes ``texts[platform]`` to the main output and each platform output."""

    texts: dict[str, str]
    skip: tuple[str, ...] = ()
    requests: list[CompileRequest] = field(default_factory=list)
    name: Tool = "uv"

    def compile(self, request: CompileRequest) -> CompileOutcome:
        self.requests.append(request)
        request.output.write_text(self.texts[request.platforms[0]], "utf-8")
        for extra in request.extra_outputs:
            if extra.platform not in self.skip:
                extra.output.write_text(self.texts[str(extra.platform)], "utf-8")
        return CompileOutcome(ok=True, argv=("fake",), header_command="fake", duration_s=0.0)


class RaisingBackend:
    name: Tool = "uv"

    def compile(self, request: CompileRequest) -> CompileOutcome:
        raise LockwardenError("the compiler could not start: no such interpreter")


def config() -> RepoConfig:
    return RepoConfig(
        environments=(
            EnvironmentConfig(
                name="serve",
                spec="requirements/serve.in",
                backend="uv",
                platforms=("linux/amd64", "linux/arm64"),
                resolution="per-platform",
            ),
        )
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements/serve.in").write_text("alpha\n")
    (tmp_path / MAIN).write_text("alpha==1.0\n")
    (tmp_path / ARM).write_text("alpha==1.0\n")
    return tmp_path


def test_every_output_is_written_and_diffed(root: Path) -> None:
    backend = WritingBackend({"linux/amd64": "alpha==1.1\n", "linux/arm64": "alpha==1.2\n"})

    stage = compile_environments(root, config(), {"uv": backend})

    (result,) = stage.results
    assert result.status == "changed"
    assert result.platform == "linux/amd64"
    (output,) = result.outputs
    assert (output.path, output.platform, output.kind) == (ARM, "linux/arm64", "platform-lock")
    assert output.diff is not None
    assert [(c.name, c.before, c.after) for c in output.diff.changes] == [("alpha", "1.0", "1.2")]
    assert (root / ARM).read_text() == "alpha==1.2\n"
    assert result.files() == {MAIN: "alpha==1.1\n", ARM: "alpha==1.2\n"}
    (request,) = backend.requests
    assert request.platforms == ("linux/amd64", "linux/arm64")
    assert request.universal is False
    assert sorted(p.name for p in (root / "requirements").iterdir()) == [
        "serve.in",
        "serve.linux-arm64.txt",
        "serve.txt",
    ]


def test_an_output_left_empty_fails_the_environment_and_writes_nothing(root: Path) -> None:
    backend = WritingBackend(
        {"linux/amd64": "alpha==1.1\n", "linux/arm64": "alpha==1.2\n"}, skip=("linux/arm64",)
    )

    (result,) = compile_environments(root, config(), {"uv": backend}).results

    assert result.status == "failed"
    assert result.failure == "tool-error"
    assert result.error == f"{ARM}: the compiler wrote nothing"
    assert (root / MAIN).read_text() == "alpha==1.0\n"
    assert (root / ARM).read_text() == "alpha==1.0\n"
    assert sorted(p.name for p in (root / "requirements").iterdir()) == [
        "serve.in",
        "serve.linux-arm64.txt",
        "serve.txt",
    ]


def test_a_backend_that_cannot_start_fails_only_its_environment(root: Path) -> None:
    (result,) = compile_environments(root, config(), {"uv": RaisingBackend()}).results

    assert (result.status, result.failure) == ("failed", "tool-error")
    assert result.error == "the compiler could not start: no such interpreter"
    assert (root / MAIN).read_text() == "alpha==1.0\n"


def test_seeded_outputs_are_restated_against_the_default_branch(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    baseline = tmp_path_factory.mktemp("baseline")
    (baseline / "requirements").mkdir()
    (baseline / "requirements/serve.in").write_text("alpha\n")
    (baseline / MAIN).write_text("alpha==0.9\n")
    (baseline / ARM).write_text("alpha==0.9\n")
    empty = compile_environments(root, config(), {}, selected=("nothing",))
    seeds = {MAIN: "alpha==1.0\n", ARM: "alpha==1.1\n"}

    restated = against_baseline(empty, baseline, config(), seeds)

    (result,) = restated.results
    assert result.status == "changed"
    (output,) = result.outputs
    assert (output.old_text, output.new_text) == ("alpha==0.9\n", "alpha==1.1\n")
    assert output.diff is not None
    assert [(c.before, c.after) for c in output.diff.changes] == [("0.9", "1.1")]


def test_a_missing_poetry_fails_its_environments_not_the_run(tmp_path: Path) -> None:
    settings = Settings(cache_dir=tmp_path, poetry_bin=str(tmp_path / "no-poetry"))
    backend = make_backends(settings, SANDBOX)["poetry"]
    request = CompileRequest(
        root=tmp_path,
        spec="pyproject.toml",
        lock="poetry.lock",
        output=tmp_path / "out",
        existing=None,
    )

    outcome = backend.compile(request)

    assert outcome.ok is False
    assert outcome.failure == "tool-error"
    assert outcome.error is not None
    assert "Poetry" in outcome.error or "poetry" in outcome.error
    assert backend.name == "poetry"
