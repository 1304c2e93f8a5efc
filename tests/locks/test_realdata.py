"""The parser against real lockfiles and specs copied from public repositories.

The files and the features each one exercises are listed in the folder's INDEX.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.locks.diff import diff_locks
from bot.locks.lockfile import Include, Lockfile, read_lockfile

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata" / "lockfiles"

if not REALDATA.is_dir():
    pytest.skip("shared/realdata/lockfiles is not present", allow_module_level=True)

ALL_FILES = sorted(p.name for p in REALDATA.iterdir() if p.suffix in (".txt", ".in"))


def load(name: str) -> Lockfile:
    return read_lockfile(REALDATA / name, display_path=name)


def test_folder_has_files() -> None:
    assert len(ALL_FILES) >= 40


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_file_parses(name: str) -> None:
    lock = load(name)
    assert lock.path == name
    text = (REALDATA / name).read_text(encoding="utf-8")
    # Every ``--hash`` written in the file lands on some entry.
    assert sum(len(r.hashes) for r in lock.requirements) == text.count("--hash")
    if lock.header.tool in ("pip-compile", "uv"):
        # Compilers annotate every entry with where it came from.
        assert all(r.via for r in lock.requirements), [
            r.name for r in lock.requirements if not r.via
        ]
        assert all(r.version or r.url for r in lock.requirements)


@pytest.mark.parametrize(
    ("name", "tool", "python", "command"),
    [
        pytest.param(
            "jax-ml__jax@a0d6293__build__requirements_lock_3_12.txt",
            "pip-compile",
            "3.12",
            ("bazel", "run", "//build:requirements.update"),
            id="jax-pip-compile-bazel",
        ),
        pytest.param(
            "jax-ml__jax__build__requirements_lock_3_12.txt",
            "uv",
            None,
            ("python", "build/update_requirements_uv.py"),
            id="jax-uv-custom-command",
        ),
        pytest.param(
            "feast-dev__feast__sdk__python__requirements__py3.11-requirements.txt",
            "uv",
            None,
            (
                "uv",
                "pip",
                "compile",
                "-p",
                "3.11",
                "--no-strip-extras",
                "pyproject.toml",
                "--generate-hashes",
                "--output-file",
                "sdk/python/requirements/py3.11-requirements.txt",
            ),
            id="feast-uv",
        ),
        pytest.param(
            "feast-dev__feast__sdk__python__requirements__py3.11-minimal-sdist-requirements-build.txt",
            "pip-compile",
            "3.11",
            (
                "pybuild-deps",
                "compile",
                "--generate-hashes",
                "--output-file=sdk/python/requirements/py3.11-minimal-sdist-requirements-build.txt",
                "sdk/python/requirements/py3.11-minimal-sdist-requirements.txt",
            ),
            id="feast-pybuild-deps",
        ),
        pytest.param(
            "kubeflow__pipelines@9bf30b8__backend__src__apiserver__visualization__requirements.txt",
            "pip-compile",
            None,
            ("pip-compile", "--output-file=-", "-"),
            id="kubeflow-old-header",
        ),
        pytest.param(
            "kubeflow__pipelines__backend__src__apiserver__visualization__requirements.txt",
            "pip-compile",
            "3.11",
            (
                "pip-compile",
                "--output-file=requirements.txt",
                "--resolver=backtracking",
                "requirements.in",
            ),
            id="kubeflow-pip-compile-7",
        ),
        pytest.param(
            "kubeflow__pipelines__api__v2alpha1__python__requirements.txt",
            "pip-compile",
            "3.9",
            ("pip-compile", "--no-emit-index-url", "requirements.in"),
            id="kubeflow-smallest",
        ),
        pytest.param(
            "googleapis__python-aiplatform__.kokoro__requirements.txt",
            "pip-compile",
            "3.13",
            ("pip-compile", "--allow-unsafe", "--generate-hashes", "requirements.in"),
            id="aiplatform",
        ),
        pytest.param(
            "mozilla__translations__pipeline__eval__requirements__metricx.txt",
            "pip-compile",
            "3.10",
            (
                "pip-compile",
                "--allow-unsafe",
                "--cert=None",
                "--client-cert=None",
                "--generate-hashes",
                "--index-url=None",
                "--pip-args=None",
                "pipeline/eval/requirements/metricx.in",
            ),
            id="metricx-none-artefacts",
        ),
        pytest.param(
            "Unstructured-IO__unstructured-inference@5843ae2__requirements__base.txt",
            "uv",
            None,
            (
                "uv",
                "pip",
                "compile",
                "--python-version",
                "3.10",
                "requirements/base.in",
                "-o",
                "requirements/base.txt",
                "--no-emit-package",
                "pip",
                "--no-emit-package",
                "setuptools",
            ),
            id="unstructured-uv",
        ),
        pytest.param(
            "Unstructured-IO__unstructured-inference@085c865__requirements__base.txt",
            "pip-compile",
            "3.8",
            ("pip-compile", "--output-file=requirements/base.txt"),
            id="unstructured-pip-compile-6-lowercase",
        ),
        pytest.param(
            "bazel-contrib__rules_python__examples__bzlmod__requirements_lock_3_11.txt",
            "uv",
            None,
            ("bazel", "run", "//examples:bzlmod_requirements_3_11.update"),
            id="rules-python-uv-bazel",
        ),
        pytest.param(
            "openedx__edx-enterprise-data__requirements__test.txt",
            "pip-compile",
            "3.12",
            ("make", "upgrade"),
            id="edx-make-upgrade",
        ),
        pytest.param(
            "openedx__enterprise-catalog@b63b208__requirements__base.txt",
            "pip-compile",
            None,
            ("make", "upgrade"),
            id="catalog-old-header-make",
        ),
        pytest.param(
            "apache__superset@012105d__requirements__docker.txt",
            "pip-compile",
            None,
            ("pip-compile-multi",),
            id="superset-pip-compile-multi",
        ),
        pytest.param(
            "apache__superset@1aed471__requirements__docker.in",
            "other",
            None,
            (),
            id="spec-with-licence-comment",
        ),
        pytest.param(
            "jax-ml__jax__build__test-requirements.txt", "none", None, (), id="spec-without-header"
        ),
    ],
)
def test_header(name: str, tool: str, python: str | None, command: tuple[str, ...]) -> None:
    header = load(name).header
    assert (header.tool, header.python_version, header.command) == (tool, python, command)


@pytest.mark.parametrize(
    "name",
    [
        "jax-ml__jax@a0d6293__build__requirements_lock_3_12.txt",
        "jax-ml__jax__build__requirements_lock_3_12.txt",
        "feast-dev__feast__sdk__python__requirements__py3.11-requirements.txt",
        "feast-dev__feast__sdk__python__requirements__py3.11-minimal-sdist-requirements-build.txt",
        "googleapis__python-aiplatform__.kokoro__requirements.txt",
        "mozilla__translations__pipeline__eval__requirements__metricx.txt",
        "mozilla__translations__pipeline__translate__requirements__translate-ctranslate2.txt",
        "mozilla__translations__pipeline__train__requirements__train.txt",
        "bazel-contrib__rules_python__examples__bzlmod__requirements_lock_3_10.txt",
        "bazel-contrib__rules_python__examples__bzlmod__requirements_lock_3_11.txt",
    ],
)
def test_hash_locked_files_hash_every_pin(name: str) -> None:
    lock = load(name)
    pinned = [r for r in lock.requirements if r.version is not None]
    assert pinned
    assert all(r.hashes for r in pinned), [r.name for r in pinned if not r.hashes]
    assert all(h.startswith("sha256:") for r in pinned for h in r.hashes)


def test_uv_jax_lists_numpy_twice_with_markers() -> None:
    lock = load("jax-ml__jax__build__requirements_lock_3_12.txt")
    assert [(r.version, r.marker) for r in lock.find("numpy")] == [
        ("2.1.3", 'python_full_version < "3.14"'),
        ("2.5.1", 'python_full_version >= "3.14"'),
    ]
    assert lock.find("etils")[0].extras == ("epath",)
    assert lock.find("optype")[0].extras == ("numpy",)


def test_pip_compile_jax_index_extras_markers_and_unsafe() -> None:
    lock = load("jax-ml__jax@a0d6293__build__requirements_lock_3_12.txt")
    assert lock.index.index_url == (
        "https://us-python.pkg.dev/ml-oss-artifacts-published/pypi-mirror/simple"
    )
    assert lock.find("etils")[0].extras == ("epath", "epy")
    assert any(r.marker == 'sys_platform == "linux"' for r in lock.requirements)
    setuptools = lock.find("setuptools")[0]
    assert setuptools.unsafe
    assert setuptools.hashes
    assert [r.name for r in lock.requirements if r.unsafe] == ["setuptools"]


def test_feast_uv_keeps_extras_and_project_via() -> None:
    lock = load("feast-dev__feast__sdk__python__requirements__py3.11-requirements.txt")
    extras = {r.name: r.extras for r in lock.requirements}
    assert extras["dask"] == ("dataframe",)
    assert extras["uvicorn"] == ("standard",)
    assert extras["sqlalchemy"] == ("mypy",)
    assert "feast (pyproject.toml)" in lock.find("dask")[0].via


def test_pybuild_deps_duplicate_versions_in_file_order() -> None:
    lock = load(
        "feast-dev__feast__sdk__python__requirements__py3.11-minimal-sdist-requirements-build.txt"
    )
    cython = lock.find("cython")
    assert [r.version for r in cython] == ["3.0.12", "3.1.1", "3.2.9"]
    assert [r.line for r in cython] == sorted(r.line for r in cython)
    for name in ("setuptools", "setuptools-scm", "hatch-vcs", "meson-python"):
        assert len(lock.find(name)) >= 2, name


def test_old_kubeflow_one_line_via_and_unsafe_comment() -> None:
    lock = load(
        "kubeflow__pipelines@9bf30b8__backend__src__apiserver__visualization__requirements.txt"
    )
    assert lock.find("absl-py")[0].via == (
        "tensorboard",
        "tensorflow",
        "tensorflow-data-validation",
        "tensorflow-metadata",
        "tensorflow-model-analysis",
        "tfx-bsl",
    )
    assert lock.find("bokeh")[0].via == ("-r -",)
    assert lock.find("apache-beam")[0].extras == ("gcp",)
    assert lock.find("google-api-core")[0].extras == ("grpc", "grpcgcp")
    assert lock.unsafe_comment_names == ("setuptools",)
    assert not any(r.unsafe for r in lock.requirements)


@pytest.mark.parametrize(
    "name",
    [
        "kubeflow__pipelines@9bf30b8__backend__src__apiserver__visualization__requirements.txt",
        "kubeflow__pipelines__backend__src__apiserver__visualization__requirements.txt",
        "openedx__edx-enterprise-data__requirements__test.txt",
        "apache__superset@012105d__requirements__docker.txt",
        "apache__superset@032bfb5__requirements__local.txt",
    ],
)
def test_unsafe_comment_names(name: str) -> None:
    assert load(name).unsafe_comment_names == ("setuptools",)


def test_aiplatform_unsafe_setuptools_with_hashes() -> None:
    lock = load("googleapis__python-aiplatform__.kokoro__requirements.txt")
    (setuptools,) = lock.find("setuptools")
    assert (setuptools.version, setuptools.unsafe, len(setuptools.hashes)) == ("68.2.2", True, 2)
    assert setuptools.via == ("-r requirements.in",)
    assert lock.unsafe_comment_names == ()


def test_aiplatform_spec_without_trailing_newline() -> None:
    name = "googleapis__python-aiplatform__.kokoro__requirements.in"
    assert not (REALDATA / name).read_bytes().endswith(b"\n")
    lock = load(name)
    assert lock.requirements[-1].name == "build"
    assert lock.find("gcp-releasetool")[0].specifier == ">=1.10.5"


def test_multi_line_via_with_constraints() -> None:
    lock = load("Unstructured-IO__unstructured-inference@5843ae2__requirements__base.txt")
    assert lock.find("fonttools")[0].via == ("-c requirements/constraints.in", "matplotlib")
    test_lock = load("Unstructured-IO__unstructured-inference@5843ae2__requirements__test.txt")
    assert test_lock.find("certifi")[0].via[0] == "-c requirements/base.txt"


def test_setup_py_via_source() -> None:
    lock = load("Unstructured-IO__unstructured-inference@085c865__requirements__base.txt")
    assert any(r.via == ("unstructured-inference (setup.py)",) for r in lock.requirements)
    assert lock.find("layoutparser")[0].extras == ("layoutmodels", "tesseract")


def test_index_options_from_rules_python() -> None:
    old = load("bazel-contrib__rules_python__examples__bzlmod__requirements_lock_3_10.txt")
    assert old.index.index_url is None
    assert old.index.extra_index_urls == ("https://pypi.org/simple/",)
    new = load("bazel-contrib__rules_python__examples__bzlmod__requirements_lock_3_11.txt")
    assert new.index.index_url == "https://pypi.org/simple"
    assert new.index.extra_index_urls == ("https://pypi.org/simple/",)
    spec = load("bazel-contrib__rules_python__examples__bzlmod__requirements.in")
    assert spec.index.extra_index_urls == ("https://pypi.org/simple/",)
    assert spec.find("requests")[0].specifier == "~=2.25.1"


def test_edx_direct_url_constraints_and_includes() -> None:
    lock = load("openedx__edx-enterprise-data__requirements__test.txt")
    (py2neo,) = lock.find("py2neo")
    assert py2neo.url == (
        "https://github.com/overhangio/py2neo/releases/download/2021.2.3/py2neo-2021.2.3.tar.gz"
    )
    assert py2neo.version is None
    assert lock.find("django")[0].via[:3] == (
        "-c requirements/common_constraints.txt",
        "-c requirements/constraints.txt",
        "-r requirements/base.in",
    )
    assert lock.find("coverage")[0].extras == ("toml",)
    spec = load("openedx__edx-enterprise-data__requirements__reporting.in")
    assert spec.includes == (Include("constraint", "constraints.txt", 2),)
    assert spec.find("py2neo")[0].url == py2neo.url
    constraints = load("openedx__edx-enterprise-data__requirements__constraints.txt")
    assert constraints.includes[0].path == "common_constraints.txt"


def test_old_style_vcs_with_egg_and_one_line_via() -> None:
    lock = load("openedx__enterprise-catalog@b63b208__requirements__base.txt")
    (social,) = lock.find("social-auth-app-django")
    assert social.url == (
        "git+https://github.com/python-social-auth/social-app-django.git"
        "@c00d23c2b45c3317bd35b15ad1b959338689cef8#egg=social-auth-app-django"
    )
    assert social.via == ("-r requirements/github.in", "edx-auth-backends")
    assert lock.find("celery")[0].via == (
        "-c requirements/constraints.txt",
        "-r requirements/base.in",
        "edx-celeryutils",
    )
    assert lock.find("pyjwt")[0].extras == ("crypto",)
    spec = load("openedx__enterprise-catalog@b63b208__requirements__base.in")
    assert [(i.kind, i.path) for i in spec.includes] == [
        ("constraint", "constraints.txt"),
        ("requirement", "github.in"),
    ]


def test_mozilla_vcs_requirement_and_bare_vcs_spec() -> None:
    lock = load("mozilla__translations@7d45b3a__pipeline__train__requirements__train.txt")
    (opus,) = lock.find("opustrainer")
    assert opus.url == (
        "git+https://github.com/mozilla/OpusTrainer.git@554b7202cecbb2eaae38819aebb6c5020685f670"
    )
    spec = load("mozilla__translations@7d45b3a__pipeline__train__requirements__train.in")
    assert spec.find("opustrainer")[0].url == opus.url
    # The spec's bare VCS line and the lock's named one are the same package: no change.
    assert diff_locks(spec, lock).counts()["source"] == 0


def test_superset_editables_and_includes() -> None:
    docker = load("apache__superset@012105d__requirements__docker.txt")
    assert docker.includes == (Include("requirement", "base.txt", 8),)
    editable = docker.requirements[0]
    assert (editable.name, editable.url, editable.editable) == ("file:.", "file:.", True)
    assert editable.via == ("-r requirements/base.in", "-r requirements/docker.in")
    local = load("apache__superset@032bfb5__requirements__local.txt")
    (project,) = local.requirements
    assert (project.name, project.editable) == ("apache-superset", True)
    assert project.version is None


def test_smallest_lock() -> None:
    lock = load("kubeflow__pipelines__api__v2alpha1__python__requirements.txt")
    (protobuf,) = lock.requirements
    assert (protobuf.name, protobuf.version, protobuf.via) == (
        "protobuf",
        "6.33.5",
        ("-r requirements.in",),
    )


def test_jax_spec_markers() -> None:
    lock = load("jax-ml__jax@a0d6293__build__nonfreethreading-requirements.txt")
    assert [(r.specifier, r.marker) for r in lock.find("numpy")] == [
        ("~=2.0.0", 'python_version <= "3.12"'),
        ("~=2.1.0", 'python_version == "3.13"'),
        (">=2.3.2", 'python_version >= "3.14"'),
    ]


def test_largest_file_parses() -> None:
    largest = max(ALL_FILES, key=lambda n: (REALDATA / n).stat().st_size)
    lock = load(largest)
    assert len(lock.requirements) > 50


def test_diff_across_tool_switch() -> None:
    """The same jax lock before and after the project moved from pip-compile to uv."""
    before = load("jax-ml__jax@a0d6293__build__requirements_lock_3_12.txt")
    after = load("jax-ml__jax__build__requirements_lock_3_12.txt")
    diff = diff_locks(before, after)
    by_key = {(c.name, c.marker): c for c in diff.changes}
    # One entry each side: matched although the marker was dropped.
    scipy = by_key["scipy", None]
    assert (scipy.before, scipy.after, scipy.change, scipy.kind) == (
        "1.17.1",
        "1.18.0",
        "upgraded",
        "minor",
    )
    assert scipy.direct
    # One numpy became two marker-split pins: the old pin pairs with the first, the other
    # is new.
    assert [(c.before, c.after, c.change) for c in diff.changes if c.name == "numpy"] == [
        ("2.0.2", "2.1.3", "upgraded"),
        (None, "2.5.1", "added"),
    ]
    setuptools = by_key["setuptools", None]
    assert (setuptools.change, setuptools.kind) == ("upgraded", "major")
    assert diff.counts()["hash-only"] == 0
