"""``lockwarden run`` with target platforms: per-platform and universal uv locks, the wheel
check over every pinned package, and an accelerator index routed to one environment.
Compiles run for real against indexes served on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from bot.cli import main
from bot.locks.lockfile import parse_lockfile
from tests.support.index_server import PackageIndex, start_index

X86 = "cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64"
ARM = "cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64"


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    package_index.publish("app", "1.0", ["native", "gamma; platform_machine == 'aarch64'"])
    package_index.publish("native", "1.0", wheel_tags=[X86], sdist=True)
    package_index.publish("native", "1.1", wheel_tags=[X86, ARM], sdist=True)
    package_index.publish("gamma", "1.0")
    package_index.publish("torchlet", "2.1.0")
    return package_index


@pytest.fixture
def accelerator(tmp_path: Path) -> Iterator[PackageIndex]:
    """An index serving CUDA builds: x86_64 wheels with a ``+cu121`` local version."""
    with start_index(tmp_path / "cu121") as served:
        served.publish("torchlet", "2.1.0+cu121", wheel_tags=[X86])
        yield served


def lockwarden(root: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", str(root), *args],
        env={"LOCKWARDEN_CACHE_DIR": str(root.parent / "cache")},
        catch_exceptions=False,
    )


def make_repo(tmp_path: Path, index: PackageIndex, *environments: dict[str, Any]) -> Path:
    root = tmp_path / "repo"
    (root / "requirements").mkdir(parents=True, exist_ok=True)
    (root / ".github").mkdir(exist_ok=True)
    config = {"index_url": index.url, "environments": list(environments)}
    (root / ".github/lockwarden.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def pins(root: Path, lock: str) -> dict[str, str]:
    return parse_lockfile((root / lock).read_text("utf-8"), lock).versions()


def test_per_platform_locks_and_the_wheel_gap_of_each(tmp_path: Path, index: PackageIndex) -> None:
    root = make_repo(
        tmp_path,
        index,
        {
            "name": "serve",
            "spec": "requirements/serve.in",
            "backend": "uv",
            "python": "3.11",
            "platforms": ["linux/amd64", "linux/arm64"],
            "resolution": "per-platform",
            "compile_args": ["--no-emit-index-url"],
        },
    )
    (root / "requirements/serve.in").write_text("app\nnative==1.0\n")
    out = tmp_path / "out.json"

    result = lockwarden(root, "--json", str(out), "--report", str(tmp_path / "r.md"))

    assert result.exit_code == 0, result.output
    assert pins(root, "requirements/serve.txt") == {"app": "1.0", "native": "1.0"}
    assert pins(root, "requirements/serve.linux-arm64.txt") == {
        "app": "1.0",
        "native": "1.0",
        "gamma": "1.0",
    }
    assert "--python-platform=aarch64-manylinux_2_28" in (
        root / "requirements/serve.linux-arm64.txt"
    ).read_text("utf-8")
    env = report(out)["environments"][0]
    assert env["platform"] == "linux/amd64"
    assert env["outputs"][0]["path"] == "requirements/serve.linux-arm64.txt"
    # native 1.0 has an x86_64 wheel only: on arm64 pip would build its sdist in the image.
    assert env["wheel_gaps"] == [
        {
            "package": "native",
            "version": "1.0",
            "platform": "linux/arm64",
            "sdist": True,
            "index": index.url,
        }
    ]
    assert "no wheel of native==1.0 for linux/arm64" in result.output
    assert "No wheel for a target platform" in (tmp_path / "r.md").read_text("utf-8")


def test_universal_lock_and_require_wheels(tmp_path: Path, index: PackageIndex) -> None:
    root = make_repo(
        tmp_path,
        index,
        {
            "name": "serve",
            "spec": "requirements/serve.in",
            "backend": "uv",
            "python": "3.11",
            "platforms": ["linux/amd64", "linux/arm64"],
            "require_wheels": True,
            "compile_args": ["--no-emit-index-url"],
        },
    )
    (root / "requirements/serve.in").write_text("app\nnative==1.0\n")

    failed = lockwarden(root)

    assert failed.exit_code == 1, failed.output
    assert "require_wheels" in failed.output
    assert not (root / "requirements/serve.txt").exists()

    (root / "requirements/serve.in").write_text("app\nnative\n")
    passed = lockwarden(root)

    assert passed.exit_code == 0, passed.output
    text = (root / "requirements/serve.txt").read_text("utf-8")
    assert "--universal" in text
    assert "platform_machine == 'aarch64'" in text  # gamma, for arm64 only
    assert pins(root, "requirements/serve.txt")["native"] == "1.1"


def test_accelerator_index_is_routed_to_one_environment(
    tmp_path: Path, index: PackageIndex, accelerator: PackageIndex
) -> None:
    root = make_repo(
        tmp_path,
        index,
        {
            "name": "serve",
            "spec": "requirements/serve.in",
            "backend": "uv",
            "python": "3.11",
            "platforms": ["linux/amd64", "linux/arm64"],
        },
        {
            "name": "train",
            "spec": "requirements/train.in",
            "backend": "uv",
            "python": "3.11",
            "platforms": ["linux/amd64", "linux/arm64"],
            "extra_index_urls": [accelerator.url],
        },
    )
    (root / "requirements/serve.in").write_text("torchlet==2.1.0\n")
    (root / "requirements/train.in").write_text("torchlet==2.1.0+cu121\n")
    out = tmp_path / "out.json"

    result = lockwarden(root, "--json", str(out))

    assert result.exit_code == 0, result.output
    assert pins(root, "requirements/serve.txt") == {"torchlet": "2.1.0"}
    assert pins(root, "requirements/train.txt") == {"torchlet": "2.1.0+cu121"}
    envs = {e["name"]: e for e in report(out)["environments"]}
    assert envs["serve"]["wheel_gaps"] == []
    assert envs["train"]["wheel_gaps"] == [
        {
            "package": "torchlet",
            "version": "2.1.0+cu121",
            "platform": "linux/arm64",
            "sdist": False,
            "index": accelerator.url,
        }
    ]


def test_unknown_platform_is_a_config_error_naming_the_field(
    tmp_path: Path, index: PackageIndex
) -> None:
    root = make_repo(
        tmp_path,
        index,
        {"name": "serve", "spec": "requirements/serve.in", "platforms": ["linux/sparc"]},
    )
    (root / "requirements/serve.in").write_text("app\n")

    result = lockwarden(root)

    assert result.exit_code == 2, result.output
    assert ".github/lockwarden.yml:" in result.output
    assert "environments[0].platforms" in result.output
    assert "linux/sparc" in result.output
    assert not (root / "requirements/serve.txt").exists()
