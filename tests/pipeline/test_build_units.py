"""The build stage's decisions, with a fake builder that records what it is asked to do."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bot.config import DockerfileChecks, EnvironmentConfig, RepoConfig
from bot.errors import LockwardenError
from bot.images import (
    Builder,
    BuilderName,
    BuildOutcome,
    BuildSpec,
    ImageInfo,
    RunOutcome,
    RunSpec,
)
from bot.images.digest import ImageCache
from bot.pipeline.build import _image_name, build_images, lint_environments
from bot.results import ImageResult, LockResult, Status

BASE_LAYER = "sha256:0de087edaac25085165912447f150d7adeb7162f6fde69fab35dfdd54cc32211"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FakeBuilder:
    """A ``Builder`` whose images exist only in a dict; equal tags give equal images.

    ``override`` may answer a build instead (return None to let the default happen);
    ``push_error`` makes every push fail.
    """

    name: BuilderName = "buildah"
    override: Callable[[BuildSpec], BuildOutcome | None] | None = None
    push_error: str | None = None
    images: dict[str, ImageInfo] = field(default_factory=dict)
    builds: list[BuildSpec] = field(default_factory=list)
    inspected: list[str] = field(default_factory=list)
    pushes: list[tuple[str, str, bool]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    runs: list[RunSpec] = field(default_factory=list)

    def available(self) -> bool:
        return True

    def build(self, spec: BuildSpec) -> BuildOutcome:
        self.builds.append(spec)
        outcome = self.override(spec) if self.override else None
        if outcome is None:
            outcome = BuildOutcome(True, default_image(spec.tag), 2.0, log_tail="COMMIT")
        if outcome.image is not None:
            self.images[outcome.image.reference] = outcome.image
        return outcome

    def inspect(self, reference: str) -> ImageInfo | None:
        self.inspected.append(reference)
        return self.images.get(reference)

    def run(self, spec: RunSpec) -> RunOutcome:
        self.runs.append(spec)
        return RunOutcome("passed", 0, 0.1)

    def push(self, reference: str, destination: str, *, tls_verify: bool = True) -> str:
        self.pushes.append((reference, destination, tls_verify))
        if self.push_error:
            raise LockwardenError(self.push_error)
        return "sha256:" + sha(destination)

    def remove(self, reference: str) -> None:
        self.removed.append(reference)
        self.images.pop(reference, None)

    def tag(self, reference: str, name: str) -> bool:
        image = self.images.get(reference)
        if image is not None:
            self.images[name] = replace(image, reference=name)
        return image is not None

    def names(self, reference: str) -> tuple[str, ...] | None:
        image = self.images.get(reference)
        image_id = image.image_id if image is not None else reference
        return tuple(name for name, i in self.images.items() if i.image_id == image_id)

    def untag(self, reference: str) -> bool:
        self.removed.append(reference)
        return self.images.pop(reference, None) is not None

    def export_layers(self, reference: str, directory: Path) -> tuple[Path, ...]:
        """One tarball per layer, holding ``/layer`` with the layer's digest."""
        directory.mkdir(parents=True)
        paths = []
        for index, digest in enumerate(self.images[reference].layers):
            path = directory / f"{index}.tar"
            with tarfile.open(path, "w") as tar:
                info = tarfile.TarInfo("layer")
                info.size = len(digest)
                tar.addfile(info, io.BytesIO(digest.encode()))
            paths.append(path)
        return tuple(paths)


def default_image(tag: str) -> ImageInfo:
    """The image a reproducible build gives: the same for a tag and its ``-rebuild``."""
    stem = tag.removesuffix("-rebuild")
    return ImageInfo(
        reference=tag,
        image_id="sha256:" + sha(stem),
        size=100_000_000 + len(stem),
        layers=(BASE_LAYER, "sha256:" + sha(stem + "/venv"), "sha256:" + sha(stem + "/app")),
    )


def _check_protocol(fake: FakeBuilder) -> Builder:
    return fake  # mypy checks that the fake implements the protocol


# -- repositories ----------------------------------------------------------------------------

DOCKERFILE = """\
FROM python:3.11-slim-bookworm
COPY requirements/serve.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt
COPY app/ /app/
"""
# LW006 (warning) and hadolint's DL3059 (info) on line 4
LINTED_DOCKERFILE = DOCKERFILE.replace(
    "COPY app/", "RUN pip install --no-cache-dir --upgrade pip==24.0\nCOPY app/"
)
OLD_LOCK = "beta==1.0.0 \\\n    --hash=sha256:" + "1" * 64 + "\n"
NEW_LOCK = "beta==1.0.1 \\\n    --hash=sha256:" + "2" * 64 + "\n"


def write_tree(root: Path, lock: str, dockerfile: str | None = DOCKERFILE) -> Path:
    (root / "requirements").mkdir(parents=True, exist_ok=True)
    (root / "app").mkdir(exist_ok=True)
    (root / "requirements" / "serve.in").write_text("beta\n")
    (root / "requirements" / "serve.txt").write_text(lock)
    (root / "app" / "main.py").write_text("print('serve')\n")
    if dockerfile is not None:
        (root / "Dockerfile.serve").write_text(dockerfile)
    return root


def env(name: str = "serve", **extra: Any) -> EnvironmentConfig:
    extra.setdefault("dockerfile", f"Dockerfile.{name}")
    return EnvironmentConfig(name=name, spec=f"requirements/{name}.in", **extra)


def config(*environments: EnvironmentConfig, **extra: Any) -> RepoConfig:
    return RepoConfig(environments=environments or (env(),), **extra)


def lock(
    name: str = "serve",
    status: Status = "changed",
    old: str | None = OLD_LOCK,
    new: str | None = NEW_LOCK,
) -> LockResult:
    return LockResult(
        name=name,
        spec=f"requirements/{name}.in",
        lock=f"requirements/{name}.txt",
        backend="uv",
        status=status,
        old_text=old,
        new_text=new if status == "changed" else None,
        error="resolution failed" if status == "failed" else None,
    )


@dataclass
class Stage:
    """A before tree (the repository as it is) and an after tree (with the new lock)."""

    before: Path
    after: Path
    cache: ImageCache

    def run(
        self,
        repo_config: RepoConfig,
        locks: dict[str, LockResult],
        builder: Builder | None,
        *,
        verify_reproducible: bool = False,
        repo: str = "ml-service",
        before: Path | None = None,
        after: Path | None = None,
    ) -> tuple[ImageResult, ...]:
        return build_images(
            before or self.before,
            after or self.after,
            repo,
            repo_config,
            locks,
            builder,
            self.cache,
            verify_reproducible=verify_reproducible,
            timeout_s=123.0,
        )

    def one(
        self, builder: Builder | None, status: Status = "changed", **kwargs: Any
    ) -> ImageResult:
        (result,) = self.run(
            kwargs.pop("repo_config", config()), {"serve": lock(status=status)}, builder, **kwargs
        )
        return result


@pytest.fixture
def stage(tmp_path: Path) -> Stage:
    return Stage(
        before=write_tree(tmp_path / "before", OLD_LOCK),
        after=write_tree(tmp_path / "after", NEW_LOCK),
        cache=ImageCache(tmp_path / "cache"),
    )


# -- skipped and failed ----------------------------------------------------------------------


def test_no_dockerfile_is_skipped(stage: Stage) -> None:
    fake = FakeBuilder()
    (result,) = stage.run(config(env(dockerfile=None)), {"serve": lock()}, fake)

    assert result.status == "skipped"
    assert result.reason == "no Dockerfile configured or discovered"
    assert result.dockerfile is None
    assert fake.builds == []


def test_no_builder_is_skipped(stage: Stage) -> None:
    result = stage.one(None)
    assert result.status == "skipped"
    assert result.reason == "no image builder available (buildah or docker)"
    assert result.dockerfile == "Dockerfile.serve"


def test_failed_lock_is_skipped(stage: Stage) -> None:
    fake = FakeBuilder()
    result = stage.one(fake, status="failed")
    assert result.status == "skipped"
    assert result.reason == "the lock did not compile"
    assert fake.builds == []


def test_missing_dockerfile_fails(stage: Stage) -> None:
    fake = FakeBuilder()
    (result,) = stage.run(
        config(env(dockerfile="docker/serve.Dockerfile")), {"serve": lock()}, fake
    )
    assert result.status == "failed"
    assert result.reason == "docker/serve.Dockerfile: Dockerfile not found"
    assert fake.builds == []


def test_environments_not_selected_are_left_out(stage: Stage) -> None:
    results = stage.run(config(env("serve"), env("train")), {"serve": lock()}, FakeBuilder())
    assert [r.name for r in results] == ["serve"]


def test_failed_after_build(stage: Stage) -> None:
    fake = FakeBuilder(
        override=lambda spec: BuildOutcome(
            False, None, 1.0, error='building at STEP "RUN false": exit status 1', log_tail="x"
        )
    )

    result = stage.one(fake)

    assert result.status == "failed"
    assert result.reason == 'Dockerfile.serve: building at STEP "RUN false": exit status 1'
    assert result.log_tail == "x"
    assert result.after is None
    assert len(fake.builds) == 1  # no before build once the after build failed


def test_failed_build_without_an_error_message(stage: Stage) -> None:
    fake = FakeBuilder(override=lambda spec: BuildOutcome(False, None, 1.0))
    assert stage.one(fake).reason == "Dockerfile.serve: the build failed"


def test_one_failure_does_not_stop_the_others(stage: Stage) -> None:
    (stage.after / "Dockerfile.train").write_text(DOCKERFILE)
    (stage.before / "Dockerfile.train").write_text(DOCKERFILE)
    fake = FakeBuilder(
        override=lambda spec: (
            BuildOutcome(False, None, 1.0, error="boom") if "serve" in spec.tag else None
        )
    )

    serve, train = stage.run(
        config(env("serve"), env("train")),
        {"serve": lock(), "train": lock("train", status="unchanged")},
        fake,
    )

    assert serve.status == "failed"
    assert train.status == "built"


# -- the build spec --------------------------------------------------------------------------


def test_build_spec(stage: Stage) -> None:
    fake = FakeBuilder()
    repo_config = config(
        env(build_args={"PIP_INDEX_URL": "http://index/simple"}, context="."),
        source_date_epoch=1700000000,
    )

    stage.run(repo_config, {"serve": lock(status="unchanged")}, fake)

    (spec,) = fake.builds
    assert spec.context == stage.after
    assert spec.dockerfile == stage.after / "Dockerfile.serve"
    assert spec.tag.startswith("localhost/lockwarden/ml-service-serve:")
    assert len(spec.tag.rsplit(":", 1)[1]) == 16
    assert dict(spec.build_args) == {
        "SOURCE_DATE_EPOCH": "1700000000",
        "PIP_INDEX_URL": "http://index/simple",
    }
    assert spec.timestamp == 1700000000
    assert spec.no_cache is False
    assert spec.network == "proxied"
    assert spec.timeout_s == 123.0


def test_build_args_may_override_source_date_epoch(stage: Stage) -> None:
    fake = FakeBuilder()
    stage.run(
        config(env(build_args={"SOURCE_DATE_EPOCH": "7"})),
        {"serve": lock(status="unchanged")},
        fake,
    )
    assert fake.builds[0].build_args["SOURCE_DATE_EPOCH"] == "7"


def test_subdirectory_context(stage: Stage) -> None:
    for root in (stage.before, stage.after):
        (root / "services" / "serve").mkdir(parents=True)
        (root / "services" / "serve" / "Dockerfile").write_text(DOCKERFILE)
    fake = FakeBuilder()

    stage.run(
        config(env(dockerfile="services/serve/Dockerfile", context="services/serve")),
        {"serve": lock(status="unchanged")},
        fake,
    )

    assert fake.builds[0].context == stage.after / "services" / "serve"
    assert fake.builds[0].dockerfile == stage.after / "services/serve/Dockerfile"


def test_tag_follows_the_inputs(stage: Stage) -> None:
    fake = FakeBuilder()
    stage.one(fake, status="unchanged")
    stage.one(fake, status="unchanged")
    (stage.after / "app" / "main.py").write_text("print('changed')\n")
    stage.one(fake, status="unchanged")

    first, second, third = (s.tag for s in fake.builds)
    assert first == second
    assert third != first


def test_builder_name_is_part_of_the_key(stage: Stage) -> None:
    buildah, docker = FakeBuilder(), FakeBuilder(name="docker")
    stage.one(buildah, status="unchanged")
    stage.one(docker, status="unchanged")
    assert buildah.builds[0].tag != docker.builds[0].tag


# -- before and after ------------------------------------------------------------------------


def test_unchanged_lock_builds_once(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(fake, status="unchanged")

    assert result.status == "built"
    assert result.reason is None
    assert len(fake.builds) == 1
    assert result.after is not None
    assert result.before == result.after
    assert result.before_cached is False
    assert result.reproducible is None
    assert result.differences == ()
    assert result.log_tail == "COMMIT"
    assert result.build_s > 0


def test_changed_lock_builds_before_and_after(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(fake)

    assert result.status == "built"
    after_spec, before_spec = fake.builds
    assert after_spec.context == stage.after
    assert before_spec.context == stage.before
    assert before_spec.dockerfile == stage.before / "Dockerfile.serve"
    assert result.before is not None
    assert result.after is not None
    assert result.before.image_id != result.after.image_id
    assert result.before_cached is False


def test_before_comes_from_the_cache_while_the_image_exists(stage: Stage) -> None:
    fake = FakeBuilder()
    # An earlier run built the current tree as its "after" image.
    (earlier,) = stage.run(config(), {"serve": lock(status="unchanged")}, fake, after=stage.before)
    assert earlier.after is not None
    fake.builds.clear()

    result = stage.one(fake)

    assert [s.context for s in fake.builds] == [stage.after]  # no before build
    assert result.before == earlier.after
    assert result.before_cached is True
    assert earlier.after.reference in fake.inspected


def test_before_is_rebuilt_when_the_cached_image_is_gone(stage: Stage) -> None:
    first = FakeBuilder()
    stage.run(config(), {"serve": lock(status="unchanged")}, first, after=stage.before)
    second = FakeBuilder()  # another machine, or the image was removed

    result = stage.one(second)

    assert [s.context for s in second.builds] == [stage.after, stage.before]
    assert result.before_cached is False
    assert result.before is not None
    assert result.before.reference in second.inspected


def test_built_images_are_cached(stage: Stage) -> None:
    fake = FakeBuilder()
    stage.one(fake)
    fake.builds.clear()

    result = stage.one(fake)

    assert [s.context for s in fake.builds] == [stage.after]
    assert result.before_cached is True


def test_before_build_failure_is_a_note(stage: Stage) -> None:
    fake = FakeBuilder(
        override=lambda spec: (
            BuildOutcome(False, None, 1.0, error="exit status 1")
            if spec.context == stage.before
            else None
        )
    )

    result = stage.one(fake)

    assert result.status == "built"
    assert result.before is None
    assert result.after is not None
    assert result.reason == "the image of the current lock did not build: exit status 1"


def test_new_dockerfile_has_no_before(stage: Stage) -> None:
    (stage.before / "Dockerfile.serve").unlink()
    fake = FakeBuilder()

    result = stage.one(fake)

    assert result.status == "built"
    assert result.before is None
    assert result.reason is None
    assert len(fake.builds) == 1


# -- reproducibility -------------------------------------------------------------------------


def test_reproducible_rebuild(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(fake, status="unchanged", verify_reproducible=True)

    build, rebuild = fake.builds
    assert rebuild.no_cache is True
    assert rebuild.tag == build.tag + "-rebuild"
    assert rebuild.context == build.context
    assert result.reproducible is True
    assert result.differences == ()
    assert fake.removed == [rebuild.tag]  # the rebuild is not kept
    assert result.after is not None
    assert result.after.reference == build.tag


def rebuild_gives(change: Callable[[ImageInfo], ImageInfo]) -> FakeBuilder:
    def override(spec: BuildSpec) -> BuildOutcome | None:
        if not spec.no_cache:
            return None
        return BuildOutcome(True, change(default_image(spec.tag)), 2.0)

    return FakeBuilder(override=override)


def test_different_layer(stage: Stage) -> None:
    def change(image: ImageInfo) -> ImageInfo:
        layers = (*image.layers[:2], "sha256:" + "f" * 64)
        return replace(image, image_id="sha256:" + "e" * 64, layers=layers)

    fake = rebuild_gives(change)
    result = stage.one(fake, status="unchanged", verify_reproducible=True)

    assert result.reproducible is False
    assert result.after is not None
    original = result.after.layers[2]
    assert result.differences == (
        f"layer 3: {original[:19]} vs sha256:ffffffffffff",
        "layer 3: /layer: content",  # the files that differ, from both images' layers
    )
    assert fake.removed == [fake.builds[1].tag]


def test_different_layer_count(stage: Stage) -> None:
    def change(image: ImageInfo) -> ImageInfo:
        return replace(
            image, image_id="sha256:" + "e" * 64, layers=(*image.layers, "sha256:" + "9" * 64)
        )

    result = stage.one(rebuild_gives(change), status="unchanged", verify_reproducible=True)

    assert result.reproducible is False
    assert result.differences == ("layer 4: (none) vs sha256:999999999999",)


def test_every_different_layer_is_listed(stage: Stage) -> None:
    def change(image: ImageInfo) -> ImageInfo:
        layers = (image.layers[0], "sha256:" + "1" * 64, "sha256:" + "2" * 64)
        return replace(image, image_id="sha256:" + "e" * 64, layers=layers)

    result = stage.one(rebuild_gives(change), status="unchanged", verify_reproducible=True)

    assert [d.split(":")[0] for d in result.differences] == [
        "layer 2",
        "layer 3",
        "layer 2",  # then the files that differ in each
        "layer 3",
    ]
    assert result.differences[2:] == ("layer 2: /layer: content", "layer 3: /layer: content")


def test_same_layers_different_configuration(stage: Stage) -> None:
    def change(image: ImageInfo) -> ImageInfo:
        return replace(image, image_id="sha256:" + "e" * 64)

    result = stage.one(rebuild_gives(change), status="unchanged", verify_reproducible=True)

    assert result.reproducible is False
    assert result.differences == (
        "same layers, different image configuration (labels, history or dates)",
    )


def test_rebuild_failure(stage: Stage) -> None:
    fake = FakeBuilder(
        override=lambda spec: (
            BuildOutcome(False, None, 1.0, error="network unreachable") if spec.no_cache else None
        )
    )

    result = stage.one(fake, status="unchanged", verify_reproducible=True)

    assert result.status == "built"
    assert result.reproducible is False
    assert result.differences == ("the rebuild without cache failed: network unreachable",)
    assert fake.removed == []


def test_reproducibility_not_checked_by_default(stage: Stage) -> None:
    fake = FakeBuilder()
    result = stage.one(fake)
    assert result.reproducible is None
    assert not any(s.no_cache for s in fake.builds)


# -- registry --------------------------------------------------------------------------------

REGISTRY = "registry.example:5000/acme"


def test_push_records_repo_digests(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(fake, repo_config=config(registry=REGISTRY, registry_tls_verify=False))

    assert result.after is not None
    assert result.before is not None
    after_tag = result.after.reference.rsplit(":", 1)[1]
    before_tag = result.before.reference.rsplit(":", 1)[1]
    assert fake.pushes == [
        (result.after.reference, f"{REGISTRY}/ml-service-serve:{after_tag}", False),
        (result.before.reference, f"{REGISTRY}/ml-service-serve:{before_tag}", False),
    ]
    assert result.after.repo_digest == (
        f"{REGISTRY}/ml-service-serve@sha256:" + sha(f"{REGISTRY}/ml-service-serve:{after_tag}")
    )
    assert result.before.repo_digest is not None
    assert result.before.repo_digest.startswith(f"{REGISTRY}/ml-service-serve@sha256:")
    assert result.reason is None


def test_unchanged_lock_pushes_once(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(fake, status="unchanged", repo_config=config(registry=REGISTRY))

    assert len(fake.pushes) == 1
    assert fake.pushes[0][2] is True  # TLS verified by default
    assert result.after is not None
    assert result.after.repo_digest is not None
    assert result.before == result.after


def test_push_without_a_before_image(stage: Stage) -> None:
    (stage.before / "Dockerfile.serve").unlink()
    fake = FakeBuilder()

    result = stage.one(fake, repo_config=config(registry=REGISTRY))

    assert [p[0] for p in fake.pushes] == [fake.builds[0].tag]
    assert result.before is None
    assert result.after is not None
    assert result.after.repo_digest is not None


def test_push_uses_the_last_part_of_the_image_name(stage: Stage) -> None:
    fake = FakeBuilder()

    result = stage.one(
        fake,
        status="unchanged",
        repo_config=config(env(image="ghcr.io/acme/model-serve"), registry=REGISTRY),
    )

    assert fake.pushes[0][1].startswith(f"{REGISTRY}/model-serve:")
    assert result.after is not None
    assert result.after.repo_digest is not None
    assert result.after.repo_digest.startswith(f"{REGISTRY}/model-serve@sha256:")


def test_push_failure_is_a_note(stage: Stage) -> None:
    fake = FakeBuilder(push_error="pushing x to y failed")

    result = stage.one(fake, repo_config=config(registry=REGISTRY))

    assert result.status == "built"
    assert result.reason == "pushing x to y failed"
    assert result.after is not None
    assert result.after.repo_digest is None


def test_push_failure_note_follows_a_before_note(stage: Stage) -> None:
    fake = FakeBuilder(
        override=lambda spec: (
            BuildOutcome(False, None, 1.0, error="exit status 1")
            if spec.context == stage.before
            else None
        ),
        push_error="pushing x to y failed",
    )

    result = stage.one(fake, repo_config=config(registry=REGISTRY))

    assert result.reason == (
        "the image of the current lock did not build: exit status 1; pushing x to y failed"
    )


def test_no_registry_no_push(stage: Stage) -> None:
    fake = FakeBuilder()
    stage.one(fake)
    assert fake.pushes == []


# -- image names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repo", "expected"),
    [
        ("ghcr.io/acme/x", "ml-service", "ghcr.io/acme/x"),
        ("localhost/x", "ml-service", "localhost/x"),
        ("registry:5000/team/x", "ml-service", "registry:5000/team/x"),
        ("Acme/Model_Serve", "ml-service", "localhost/acme/model_serve"),
        ("x", "ml-service", "localhost/x"),
        ("-/weird name!/", "ml-service", "localhost/weird-name"),
        (None, "ml-service", "localhost/lockwarden/ml-service-serve"),
        (None, "Acme/ML_Service", "localhost/lockwarden/acme/ml_service-serve"),
    ],
)
def test_image_name(image: str | None, repo: str, expected: str) -> None:
    assert _image_name(env(image=image), repo) == expected


# -- Dockerfile checks -----------------------------------------------------------------------


def test_lint_findings_are_attached(stage: Stage) -> None:
    (stage.after / "Dockerfile.serve").write_text(LINTED_DOCKERFILE)

    result = stage.one(FakeBuilder())

    assert {(f.rule, f.severity, f.line) for f in result.findings} == {
        ("LW006", "warning", 4),
        ("DL3059", "info", 4),
    }
    assert all(f.file == "Dockerfile.serve" for f in result.findings)
    assert result.lint_failed is False  # fail_on: never by default


def test_lint_reads_the_after_tree(stage: Stage) -> None:
    (stage.before / "Dockerfile.serve").write_text(LINTED_DOCKERFILE)
    assert stage.one(FakeBuilder()).findings == ()


def test_findings_are_attached_when_nothing_is_built(stage: Stage) -> None:
    (stage.after / "Dockerfile.serve").write_text(LINTED_DOCKERFILE)

    result = stage.one(
        None, repo_config=config(dockerfile_checks=DockerfileChecks(fail_on="warning"))
    )

    assert result.status == "skipped"
    assert any(f.rule == "LW006" for f in result.findings)
    assert result.lint_failed is True


@pytest.mark.parametrize(
    ("checks", "failed"),
    [
        (DockerfileChecks(), False),
        (DockerfileChecks(fail_on="never", severity={"LW006": "error"}), False),
        (DockerfileChecks(fail_on="error"), False),
        (DockerfileChecks(fail_on="error", severity={"LW006": "error"}), True),
        (DockerfileChecks(fail_on="error", severity={"DL3059": "error"}), True),
        (DockerfileChecks(fail_on="warning"), True),
        (DockerfileChecks(fail_on="warning", ignore=("LW006",)), False),  # DL3059 is info
        (DockerfileChecks(fail_on="warning", severity={"LW006": "style"}), False),
        (DockerfileChecks(fail_on="warning", severity={"DL3059": "warning"}), True),
    ],
)
def test_lint_failed(stage: Stage, checks: DockerfileChecks, failed: bool) -> None:
    (stage.after / "Dockerfile.serve").write_text(LINTED_DOCKERFILE)

    result = stage.one(FakeBuilder(), repo_config=config(dockerfile_checks=checks))

    assert result.lint_failed is failed
    assert result.status == "built"


def test_clean_dockerfile_never_fails_lint(stage: Stage) -> None:
    checks = DockerfileChecks(fail_on="warning")
    result = stage.one(FakeBuilder(), repo_config=config(dockerfile_checks=checks))
    assert result.findings == ()
    assert result.lint_failed is False


def test_lint_environments_skips_missing_dockerfiles(stage: Stage) -> None:
    repo_config = config(
        env("serve"),
        env("train", dockerfile="Dockerfile.train", lock="requirements/t.txt"),
        env("docs", dockerfile=None, lock="requirements/d.txt"),
    )
    findings = lint_environments(stage.after, repo_config, {"serve": lock()})
    assert set(findings) == {"serve"}


@pytest.mark.parametrize(
    ("locks", "has_hashes"),
    [
        ({"serve": lock(old=OLD_LOCK, new=NEW_LOCK)}, True),
        ({"serve": lock(status="unchanged", old=OLD_LOCK)}, True),
        ({"serve": lock(old="beta==1.0.0\n", new="beta==1.0.1\n")}, False),
        ({}, False),
    ],
)
def test_lint_knows_whether_the_lock_has_hashes(
    stage: Stage, monkeypatch: pytest.MonkeyPatch, locks: dict[str, LockResult], has_hashes: bool
) -> None:
    seen: list[bool] = []

    def check(path: Path, **kwargs: Any) -> tuple[()]:
        seen.append(kwargs["lock_has_hashes"])
        assert kwargs["display_path"] == "Dockerfile.serve"
        assert kwargs["lock_path"] == "requirements/serve.txt"
        return ()

    monkeypatch.setattr("bot.pipeline.build.check_dockerfile", check)
    lint_environments(stage.after, config(), locks)
    assert seen == [has_hashes]
