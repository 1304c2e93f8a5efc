"""The build and verify stages with real builders: images from the old and the new lock,
digests, reproducibility, cache discipline, tests in the image, and per-environment errors."""

from __future__ import annotations

import json
import subprocess
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.images.retention import KEPT_TAG
from bot.report.json_report import to_json
from bot.report.markdown import render_markdown
from bot.results import ImageResult, RunResult, TestResult
from tests.pipeline.conftest import Repo, env_config
from tests.support.base_image import buildah_names, remove_buildah_images

pytestmark = pytest.mark.slow
IMAGES = "localhost/lockwarden"

# Installs only the lock, from the local index, in a build stage; copies the source last.
DOCKERFILE = """\
FROM python:3.11-slim-bookworm AS build
ARG SOURCE_DATE_EPOCH
ARG PIP_INDEX_URL
RUN python -m venv /opt/venv
COPY requirements/{env}.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
COPY app/ app/
CMD ["python", "app/check.py"]
"""
HANG = "print('started', flush=True); import time; time.sleep(600)"
CHECK = """\
import beta
print("beta", beta.__version__)
"""


def image_env(repo: Repo, name: str, **extra: Any) -> dict[str, Any]:
    repo.write(f"Dockerfile.{name}", DOCKERFILE.format(env=name))
    extra.setdefault("test_command", "python app/check.py")
    return env_config(
        name,
        dockerfile=f"Dockerfile.{name}",
        build_args={"PIP_INDEX_URL": repo.index.url},
        **extra,
    )


def image(run: RunResult, name: str) -> ImageResult:
    return next(i for i in run.images if i.name == name)


def result_of(run: RunResult, name: str) -> TestResult:
    return next(t for t in run.tests if t.name == name)


@pytest.fixture
def repo(make_repo: Callable[..., Repo]) -> Iterator[Repo]:
    """A repository of a unique name: its images (``localhost/lockwarden/<name>-<env>``)
    are removed at teardown."""
    made = make_repo(f"repo-{uuid.uuid4().hex[:10]}")
    yield made
    remove_buildah_images(f"{IMAGES}/{made.root.name}-")


@pytest.fixture
def image_repo(repo: Repo) -> Repo:
    """A repository with one image environment, nothing built yet: for tests whose own
    refresh is the first build (or builds nothing), so they pay for one build, not two."""
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    repo.configure(image_env(repo, "serve"))
    return repo


@pytest.fixture
def built_repo(image_repo: Repo, buildah_base: str) -> Repo:
    """``image_repo`` after a first refresh built its image: the second refresh finds it."""
    repo = image_repo
    first = repo.refresh(builder="buildah")
    assert image(first, "serve").status == "built", image(first, "serve").reason
    return repo


def test_refresh_builds_before_and_after_and_tests_pass(built_repo: Repo) -> None:
    repo = built_repo
    repo.index.publish("beta", "1.0.2")

    run = repo.refresh(upgrade=True, builder="buildah")

    assert run.builder == "buildah"
    built = image(run, "serve")
    assert built.status == "built", built.reason
    assert built.before is not None
    assert built.after is not None
    assert built.before.image_id != built.after.image_id
    assert built.before_cached  # the first refresh built exactly the current tree
    assert built.after.size > 0
    assert built.after.layers[0] == built.before.layers[0]  # same base image
    result = result_of(run, "serve")
    assert result.status == "passed", result.log_tail
    assert "beta 1.0.2" in result.log_tail
    assert result.install_check.status == "passed", result.install_check.log_tail
    assert result.pip_check.status == "passed", result.pip_check.log_tail
    assert not run.failed

    data = to_json(run)["environments"][0]
    assert data["image"]["before"] == built.before.image_id
    assert data["image"]["after"] == built.after.image_id
    assert data["image"]["size_after"] == built.after.size
    assert data["image"]["layers"] == len(built.after.layers)
    assert data["tests"]["status"] == "passed"
    assert set(data["timings"]) == {"compile_s", "build_s", "test_s"}
    markdown = render_markdown(run)
    assert "### Images" in markdown
    assert built.after.image_id.split(":")[1][:12] in markdown


def test_reproducible_rebuild_gives_the_same_digest(image_repo: Repo, buildah_base: str) -> None:
    # The refresh builds the image, then again without cache: both must be the same.
    run = image_repo.refresh(builder="buildah", verify_reproducible=True)

    built = image(run, "serve")
    assert built.reproducible is True, built.differences
    assert built.differences == ()


def test_a_rebuild_that_differs_names_the_files(repo: Repo, buildah_base: str) -> None:
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    repo.configure(image_env(repo, "serve"))
    # The lock install stays reproducible; a step that writes the date does not.
    repo.write("Dockerfile.serve", DOCKERFILE.format(env="serve") + "RUN date +%s%N > /stamp\n")

    run = repo.refresh(builder="buildah", verify_reproducible=True)

    built = image(run, "serve")
    assert built.reproducible is False
    last = len(built.after.layers) if built.after else 0
    assert [d for d in built.differences if "/" in d.partition(": ")[2]] == [
        f"layer {last}: /stamp: content"
    ]
    assert f"{last}: /stamp: content" in render_markdown(run)


def test_source_only_change_reuses_the_lock_install_layer(
    image_repo: Repo, buildah_base: str
) -> None:
    repo = image_repo
    before = image(repo.refresh(builder="buildah"), "serve").after
    repo.write("app/check.py", CHECK + "print('changed')\n")

    run = repo.refresh(builder="buildah")

    after = image(run, "serve")
    assert before is not None
    assert after.after is not None
    assert after.after.layers[:-1] == before.layers[:-1]  # venv layer reused
    assert after.after.layers[-1] != before.layers[-1]  # only the source layer changed
    assert "Using cache" in after.log_tail
    install_step = next(
        line for line in after.log_tail.splitlines() if "pip install" in line and "STEP" in line
    )
    following = after.log_tail.split(install_step, 1)[1].splitlines()[1]
    assert "Using cache" in following


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        pytest.param("FROMM python:3.11-slim-bookworm\n", "FROM", id="syntax-error"),
        pytest.param(
            "FROM python:3.11-slim-bookworm\nRUN echo about to fail && false\n",
            "false",
            id="failing-run",
        ),
    ],
)
def test_build_errors_are_per_environment(
    repo: Repo, buildah_base: str, dockerfile: str, expected: str
) -> None:
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    repo.spec("train", "gamma")
    serve = image_env(repo, "serve")
    repo.write("Dockerfile.serve", dockerfile)
    repo.configure(serve, image_env(repo, "train", test_command="python -c 'import gamma'"))

    run = repo.refresh(builder="buildah")

    broken = image(run, "serve")
    assert broken.status == "failed"
    assert broken.reason
    assert broken.reason.startswith("Dockerfile.serve: ")
    assert expected in (broken.reason + broken.log_tail)
    assert result_of(run, "serve").status == "skipped"
    assert image(run, "train").status == "built"
    assert result_of(run, "train").status == "passed"
    assert run.failed
    assert "image build failed" in render_markdown(run)


def test_missing_dockerfile_is_a_clear_error(repo: Repo, buildah_base: str) -> None:
    repo.spec("serve", "beta<2")
    repo.configure(env_config("serve", dockerfile="docker/serve.Dockerfile"))

    run = repo.refresh(builder="buildah")

    broken = image(run, "serve")
    assert broken.status == "failed"
    assert broken.reason == "docker/serve.Dockerfile: Dockerfile not found"


def test_hanging_tests_time_out_and_failing_tests_fail(repo: Repo, buildah_base: str) -> None:
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    repo.spec("train", "beta<2")
    repo.configure(
        image_env(
            repo,
            "serve",
            test_command=[
                "python",
                "-c",
                "print('started', flush=True); import time; time.sleep(600)",
            ],
            test_timeout_s=5,
        ),
        image_env(repo, "train", test_command="python -c 'raise SystemExit(1)'"),
    )

    run = repo.refresh(builder="buildah")

    hanging = result_of(run, "serve")
    assert hanging.status == "timed-out"
    assert "started" in hanging.log_tail
    assert result_of(run, "train").status == "failed"
    assert run.failed


def test_tests_run_offline_without_the_bots_credentials(
    repo: Repo, buildah_base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCKWARDEN_WEBHOOK_SECRET", "s3cret-webhook")
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_secret_token")
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    probe = (
        "import os, socket, sys\n"
        "print(sorted(os.environ))\n"
        "assert not any('secret' in v.lower() for v in os.environ.values())\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=2)\n"
        "except OSError:\n"
        "    print('offline')\n"
        "else:\n"
        "    raise SystemExit('network reachable')\n"
    )
    repo.write("app/probe.py", probe)
    port = repo.index.url.split(":")[2].split("/")[0]
    repo.configure(image_env(repo, "serve", test_command=["python", "app/probe.py", port]))

    run = repo.refresh(builder="buildah")

    result = result_of(run, "serve")
    assert result.status == "passed", result.log_tail
    assert "offline" in result.log_tail
    assert "GITHUB_TOKEN" not in result.log_tail
    assert "LOCKWARDEN" not in result.log_tail


def test_push_reports_manifest_digests(built_repo: Repo, registry: str) -> None:
    repo = built_repo
    repo.index.publish("beta", "1.0.2")
    repo.configure(*repo.environments, registry=f"{registry}/acme", registry_tls_verify=False)

    run = repo.refresh(upgrade=True, builder="buildah")

    built = image(run, "serve")
    assert built.after is not None
    assert built.before is not None
    assert built.after.repo_digest is not None, built.reason
    assert built.before.repo_digest is not None
    assert built.after.repo_digest.startswith(f"{registry}/acme/")
    repository, digest = built.after.repo_digest.split("@")
    name = repository.split("/", 1)[1]
    request = urllib.request.Request(
        f"http://{registry}/v2/{name}/manifests/{digest}",
        headers={
            "Accept": "application/vnd.oci.image.manifest.v1+json, "
            "application/vnd.docker.distribution.manifest.v2+json"
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["layers"]
    pushed = to_json(run)["environments"][0]["image"]["pushed"]
    assert pushed == {"before": built.before.repo_digest, "after": built.after.repo_digest}


# The same image, its wheels from a wheelhouse in the build context instead of an index.
WHEELHOUSE_DOCKERFILE = DOCKERFILE.replace(
    "ARG PIP_INDEX_URL\n", "COPY wheels/ /wheels/\n"
).replace(
    "pip install --no-cache-dir", "pip install --no-cache-dir --no-index --find-links /wheels"
)


def test_docker_builder_builds_and_tests(
    repo: Repo, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Docker builds never get the host's network, and the test daemon has no bridge: the
    # wheels come from a wheelhouse in the build context, as in an offline build.
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    wheelhouse(repo)
    repo.write("Dockerfile.serve", WHEELHOUSE_DOCKERFILE.format(env="serve"))
    repo.configure(
        env_config("serve", dockerfile="Dockerfile.serve", test_command="python app/check.py")
    )

    start = docker_images()
    try:
        run = repo.refresh(builder="docker", verify_reproducible=True)

        assert run.builder == "docker"
        built = image(run, "serve")
        assert built.status == "built", built.reason
        assert built.after is not None
        assert built.after.image_id.startswith("sha256:")
        assert built.reproducible is not None
        result = result_of(run, "serve")
        assert result.status == "passed", result.log_tail
        assert result.install_check.status == "passed", result.install_check.log_tail
        # Only the "after" image stays (and its build stage's, the install's cache).
        prefix = f"{IMAGES}/{repo.root.name}-serve:"
        kept = docker_kept(prefix)
        assert kept[KEPT_TAG] == built.after.image_id
        assert docker_images() - start <= set(kept.values())

        repo.index.publish("beta", "1.0.2")
        wheelhouse(repo)
        again = repo.refresh(builder="docker", upgrade=True)
        assert image(again, "serve").status == "built", image(again, "serve").reason
        now = docker_kept(prefix)
        assert built.after.image_id not in now.values()  # replaced, not added
        assert docker_images() - start <= set(now.values())
    finally:
        for name in docker_images("{{.Repository}}:{{.Tag}}"):
            if name.startswith(f"{IMAGES}/{repo.root.name}-"):
                subprocess.run(["docker", "image", "rm", "--force", name], capture_output=True)


def wheelhouse(repo: Repo) -> None:
    """Copy the index's wheels into the repository's ``wheels/``."""
    for wheel in repo.index.root.glob("*.whl"):
        (repo.root / "wheels").mkdir(exist_ok=True)
        (repo.root / "wheels" / wheel.name).write_bytes(wheel.read_bytes())


def docker_images(field: str = "{{.ID}}") -> set[str]:
    """The images of the test daemon (``DOCKER_HOST``), by ``field``."""
    done = subprocess.run(
        ["docker", "images", "--no-trunc", f"--format={field}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines())


def docker_kept(prefix: str) -> dict[str, str]:
    """Tag -> image id of the test daemon's images named ``prefix<tag>``."""
    listed = (line.split() for line in docker_images("{{.Repository}}:{{.Tag}} {{.ID}}"))
    return {n.removeprefix(prefix): i for n, i in listed if n.startswith(prefix)}


def test_no_build_skips_images(image_repo: Repo) -> None:
    run = image_repo.refresh(build=False)
    assert run.images == ()
    assert run.tests == ()
    data = to_json(run)["environments"][0]
    assert data["image"] is None
    assert data["tests"] is None


def test_no_test_builds_but_skips_tests(image_repo: Repo, buildah_base: str) -> None:
    run = image_repo.refresh(test=False, builder="buildah")
    assert image(run, "serve").status == "built"
    result = result_of(run, "serve")
    assert result.status == "skipped"
    assert result.install_check.status == "passed"


def test_lint_findings_are_reported(image_repo: Repo, buildah_base: str) -> None:
    repo = image_repo
    repo.write(
        "Dockerfile.serve", DOCKERFILE.format(env="serve") + "RUN pip install --upgrade pip\n"
    )

    run = repo.refresh(builder="buildah", test=False)

    findings = image(run, "serve").findings
    assert any(f.rule == "LW006" and f.file == "Dockerfile.serve" for f in findings)
    lint = to_json(run)["environments"][0]["lint"]
    assert any(entry["rule"] == "LW006" for entry in lint)
    assert "### Dockerfile findings" in render_markdown(run)


# -- what a run leaves in the image store ----------------------------------------------------


def store() -> tuple[set[str], set[str]]:
    """(image ids, container ids) in buildah's store."""

    def ids(*args: str) -> set[str]:
        # buildah 1.28 fails a listing when something removes a container or image while it
        # reads the store ("not known"): asked again.
        for _ in range(5):
            done = subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=120)
            if done.returncode == 0 or "not known" not in done.stderr:
                break
        assert done.returncode == 0, done.stderr
        return {i.removeprefix("sha256:") for i in done.stdout.split()}

    return ids("images", "-q", "--no-trunc"), ids("containers", "-aq", "--notruncate")


def image_id_of(reference: str) -> str:
    done = subprocess.run(
        ["buildah", "inspect", "--type=image", "--format={{.FromImageID}}", reference],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def left_behind(before: tuple[set[str], set[str]], repo: Repo) -> tuple[set[str], set[str]]:
    """The images and containers that appeared since ``before`` and are not the repository's
    kept "after" images (other test processes may build beside this one; theirs are named
    otherwise, and their containers gone by the time they are)."""
    images, containers = store()
    kept = {image_id_of(name) for name in buildah_names(f"{IMAGES}/{repo.root.name}-")}
    return images - before[0] - kept, containers - before[1]


def test_a_run_keeps_only_the_newest_after_image(image_repo: Repo, buildah_base: str) -> None:
    repo = image_repo
    repo.spec("train", "gamma<1")
    repo.configure(image_env(repo, "serve"), image_env(repo, "train", test_command="false"))
    start = store()

    first = repo.refresh(builder="buildah", verify_reproducible=True)

    assert image(first, "serve").reproducible is True
    assert result_of(first, "serve").status == "passed"
    assert result_of(first, "train").status == "failed"  # failing tests: the image is kept
    prefix = f"{IMAGES}/{repo.root.name}-"
    afters = {i.name: i.after.image_id.removeprefix("sha256:") for i in first.images if i.after}
    # Per environment: the "after" image and its build stage's (the pip install's cache).
    assert sorted(n for n in buildah_names(prefix) if ":after" in n) == [
        f"{prefix}{env}:{tag}"
        for env in ("serve", "train")
        for tag in (KEPT_TAG, f"{KEPT_TAG}-stage-1")
    ]
    kept = {image_id_of(n) for n in buildah_names(prefix)}
    assert len(set(afters.values())) == 2
    assert set(afters.values()) < kept
    assert len(kept) == 4
    assert left_behind(start, repo) == (set(), set())

    # A new lock for serve: its old "after" image is the "before" one, then goes; the new
    # one stays. train's lock did not change: its image stays.
    repo.index.publish("beta", "1.0.2")
    second = repo.refresh(builder="buildah", upgrade=True)

    assert image(second, "serve").before_cached
    now = {image_id_of(n) for n in buildah_names(prefix)}
    assert len(now) == 4
    assert afters["serve"] not in now
    assert afters["train"] in now
    assert left_behind(start, repo) == (set(), set())


def test_a_failing_build_leaves_nothing(repo: Repo, buildah_base: str) -> None:
    repo.write("app/check.py", CHECK)
    repo.spec("serve", "beta<2")
    repo.configure(image_env(repo, "serve"))
    repo.write(
        "Dockerfile.serve", "FROM python:3.11-slim-bookworm\nRUN echo one > /one\nRUN exit 3\n"
    )
    start = store()

    run = repo.refresh(builder="buildah")

    assert image(run, "serve").status == "failed"
    assert buildah_names(f"{IMAGES}/{repo.root.name}-") == []
    assert left_behind(start, repo) == (set(), set())
