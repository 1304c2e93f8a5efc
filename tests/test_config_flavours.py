"""Config for Poetry and conda environments, target platforms and image inputs: defaults,
the files an environment owns, validation errors naming file, line and field, and discovery
of Poetry projects and conda environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import EnvironmentConfig, load_config, parse_config
from bot.errors import ConfigError

POETRY_PYPROJECT = """\
[tool.poetry]
name = "svc"
version = "0.1.0"

[tool.poetry.dependencies]
python = "^3.11"
alpha = ">=1"
"""


@pytest.mark.parametrize(
    ("fields", "lock", "paths"),
    [
        pytest.param(
            {"spec": "svc/pyproject.toml", "backend": "poetry"},
            "svc/poetry.lock",
            ("svc/poetry.lock",),
            id="poetry-lock-beside-pyproject",
        ),
        pytest.param(
            {"spec": "pyproject.toml", "backend": "poetry", "export": "requirements.txt"},
            "poetry.lock",
            ("poetry.lock", "requirements.txt"),
            id="poetry-export",
        ),
        pytest.param(
            {"spec": "env/environment.yml", "backend": "conda"},
            "env/conda-linux-64.lock",
            ("env/conda-linux-64.lock",),
            id="conda-default-platform",
        ),
        pytest.param(
            {
                "spec": "environment.yml",
                "backend": "conda",
                "platforms": ["linux/arm64", "osx-arm64"],
                "lock": "locks/{platform}.lock",
            },
            "locks/linux-aarch64.lock",
            ("locks/linux-aarch64.lock", "locks/osx-arm64.lock"),
            id="conda-pattern",
        ),
        pytest.param(
            {
                "spec": "requirements/serve.in",
                "backend": "uv",
                "platforms": ["linux/amd64", "linux/arm64"],
                "resolution": "per-platform",
            },
            "requirements/serve.txt",
            ("requirements/serve.txt", "requirements/serve.linux-arm64.txt"),
            id="uv-per-platform",
        ),
        pytest.param(
            {
                "spec": "requirements/serve.in",
                "backend": "uv",
                "platforms": ["linux/amd64", "linux/arm64"],
            },
            "requirements/serve.txt",
            ("requirements/serve.txt",),
            id="uv-universal",
        ),
    ],
)
def test_lock_paths(fields: dict[str, object], lock: str, paths: tuple[str, ...]) -> None:
    env = EnvironmentConfig.model_validate({"name": "x", **fields})
    assert env.lock_path == lock
    assert env.lock_paths == paths


def test_installed_lock_per_backend() -> None:
    pip = EnvironmentConfig(name="a", spec="a.in")
    poetry = EnvironmentConfig(name="b", spec="pyproject.toml", backend="poetry", export="r.txt")
    bare = EnvironmentConfig(name="c", spec="pyproject.toml", backend="poetry")
    conda = EnvironmentConfig(name="d", spec="environment.yml", backend="conda")
    assert (pip.installed_lock, poetry.installed_lock) == ("a.txt", "r.txt")
    assert (bare.installed_lock, conda.installed_lock) == (None, None)


ENV = "environments:\n  - name: a\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        pytest.param(
            ENV + "    spec: a.in\n    backend: poetry\n",
            3,
            "environments[0].spec",
            "spec is its pyproject.toml",
            id="poetry-spec",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    backend: conda\n",
            3,
            "environments[0].spec",
            "environment.yml",
            id="conda-spec",
        ),
        pytest.param(
            ENV + "    spec: environment.yml\n    backend: conda\n    lock: conda.lock\n",
            5,
            "environments[0].lock",
            "{platform}",
            id="conda-lock-pattern",
        ),
        pytest.param(
            ENV + "    spec: pyproject.toml\n    backend: poetry\n    constraints: [a]\n",
            5,
            "environments[0].constraints",
            "not supported with the poetry backend",
            id="poetry-constraints",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    export: r.txt\n",
            4,
            "environments[0].export",
            "only for the poetry backend",
            id="export-not-poetry",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    resolution: per-platform\n",
            4,
            "environments[0].resolution",
            "needs the uv backend",
            id="per-platform-needs-uv",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    platforms: [linux-64]\n",
            4,
            "environments[0].platforms[0]",
            "unknown platform 'linux-64'",
            id="conda-name-on-pip",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    platforms: [linux/amd64, linux/amd64]\n",
            4,
            "environments[0].platforms",
            "listed twice",
            id="platform-twice",
        ),
        pytest.param(
            ENV + "    spec: a.in\n    extra_index_urls: [download.pytorch.org]\n",
            4,
            "environments[0].extra_index_urls",
            "not an http(s):// or file:// URL",
            id="index-url",
        ),
        pytest.param(
            ENV
            + "    spec: environment.yml\n    backend: conda\n    platforms: [linux-64]\n"
            + "  - name: b\n    spec: b.in\n    lock: conda-linux-64.lock\n",
            8,
            "environments[1].lock",
            "used twice",
            id="lock-owned-twice",
        ),
    ],
)
def test_flavour_errors_name_file_line_and_field(
    text: str, line: int, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, ".github/lockwarden.yml")
    assert caught.value.line == line
    assert caught.value.field == field
    assert message in caught.value.user_message


def test_image_input_settings() -> None:
    config = parse_config(
        "pin_base_images: true\nrefresh_os_packages: false\n"
        "insecure_registries: ['registry.internal:5000']\n" + ENV + "    spec: a.in\n",
        "c.yml",
    )
    assert config.pin_base_images is True
    assert config.refresh_os_packages is False
    assert config.insecure_registries == ("registry.internal:5000",)


def write(root: Path, path: str, text: str) -> None:
    target = root / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, "utf-8")


def test_discovers_poetry_projects_with_their_export(tmp_path: Path) -> None:
    write(tmp_path, "requirements/main.in", "alpha\n")
    write(tmp_path, "requirements/main.txt", "alpha==1\n")
    write(tmp_path, "pyproject.toml", POETRY_PYPROJECT)
    write(tmp_path, "poetry.lock", "")
    write(tmp_path, "requirements.txt", "alpha==1\n")
    write(
        tmp_path,
        "Dockerfile",
        "FROM x\nCOPY requirements.txt .\nRUN pip install -r requirements.txt\n",
    )
    write(tmp_path, "worker/pyproject.toml", POETRY_PYPROJECT)
    write(tmp_path, "worker/poetry.lock", "")
    write(tmp_path, "tools/pyproject.toml", "[project]\nname = 'tools'\n")  # not Poetry

    loaded = load_config(tmp_path)

    envs = {env.name: env for env in loaded.config.environments}
    assert sorted(envs) == ["main", "poetry", "worker"]
    assert (envs["poetry"].spec, envs["poetry"].export) == ("pyproject.toml", "requirements.txt")
    assert envs["poetry"].dockerfile == "Dockerfile"
    assert (envs["worker"].spec, envs["worker"].export) == ("worker/pyproject.toml", None)
    assert any(
        "poetry: pyproject.toml -> poetry.lock, requirements.txt" in n for n in loaded.discovered
    )


def test_discovers_a_conda_environment_by_its_name(tmp_path: Path) -> None:
    write(
        tmp_path,
        "environment.yml",
        "name: train\nchannels: [conda-forge]\ndependencies: [python]\n"
        "platforms: [linux-64, osx-arm64]\n",
    )
    write(tmp_path, "conda-osx-arm64.lock", "@EXPLICIT\n")  # one platform's lock is enough
    write(tmp_path, "Dockerfile.train", "FROM x\n")

    (env,) = load_config(tmp_path).config.environments

    assert (env.name, env.backend, env.dockerfile) == ("train", "conda", "Dockerfile.train")
    assert env.lock_paths == ("conda-linux-64.lock", "conda-osx-arm64.lock")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("name: [broken\n", id="broken-yaml"),
        pytest.param("name: ml\ndependencies: []\nplatforms: [sparc]\n", id="unknown-platform"),
    ],
)
def test_conda_discovery_leaves_errors_to_the_compile(tmp_path: Path, text: str) -> None:
    write(tmp_path, "environment.yml", text)
    write(tmp_path, "conda-linux-64.lock", "@EXPLICIT\n")

    (env,) = load_config(tmp_path).config.environments

    assert env.backend == "conda"
    assert env.platforms == ()


def test_configured_poetry_environment_gets_the_export_its_dockerfile_installs(
    tmp_path: Path,
) -> None:
    write(tmp_path, "svc/pyproject.toml", POETRY_PYPROJECT)
    write(tmp_path, "svc/requirements.lock.txt", "")
    write(
        tmp_path,
        "svc/Dockerfile",
        "FROM x\nRUN pip install --require-hashes --requirement=/tmp/requirements.lock.txt\n",
    )
    write(
        tmp_path,
        ".github/lockwarden.yml",
        "environments:\n  - name: svc\n    backend: poetry\n    spec: svc/pyproject.toml\n"
        "    dockerfile: svc/Dockerfile\n  - name: bare\n    backend: poetry\n"
        "    spec: other/pyproject.toml\n    dockerfile: missing/Dockerfile\n",
    )

    envs = {env.name: env for env in load_config(tmp_path).config.environments}

    assert envs["svc"].export == "svc/requirements.lock.txt"
    assert envs["bare"].export is None


def test_an_environment_file_without_a_lock_is_not_proposed(tmp_path: Path) -> None:
    # A development environment.yml: its channel is never asked, the run never fails on it.
    write(
        tmp_path,
        "environment.yml",
        "name: dev\nchannels: [http://127.0.0.1:9/nowhere]\ndependencies: [python]\n",
    )
    write(tmp_path, "requirements/serve.in", "numpy\n")
    write(tmp_path, "requirements/serve.txt", "numpy==2.0.0\n")

    loaded = load_config(tmp_path)

    assert [env.name for env in loaded.config.environments] == ["serve"]
    assert [(env.name, env.backend) for env in loaded.unlocked] == [("dev", "conda")]
    assert not any("conda" in line for line in loaded.discovered)
