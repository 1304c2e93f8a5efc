"""``lockwarden run`` on a Poetry project: ``poetry.lock`` refreshed on purpose, the
requirements file the image installs exported with hashes (main group only), the image built
and tested from it, groups in the diff, and an unreadable lock that stops nothing else and
overwrites nothing. Real Poetry against a package index on 127.0.0.1, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bot.cli import main
from bot.locks.formats.poetry.project import parse_poetry_lock
from bot.locks.lockfile import parse_lockfile
from tests.support.index_server import PackageIndex
from tests.support.poetry_tool import DEAD_PROXY, find_test_poetry

pytestmark = pytest.mark.slow

PYPROJECT = """\
[tool.poetry]
name = "service"
version = "0.1.0"
description = ""
authors = []
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
alpha = ">=1.0"
{main_extra}
[tool.poetry.group.dev.dependencies]
{dev}

[[tool.poetry.source]]
name = "local"
url = "{index}"
priority = "primary"
"""

DOCKERFILE = """\
FROM python:3.11-slim-bookworm AS build
ARG SOURCE_DATE_EPOCH
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.txt

FROM python:3.11-slim-bookworm
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
CMD ["python", "-c", "import alpha; print(alpha.__version__)"]
"""


@pytest.fixture
def index(package_index: PackageIndex) -> PackageIndex:
    package_index.publish("alpha", "1.0.0", ["beta>=1.0"])
    package_index.publish("beta", "1.0.0")
    package_index.publish("devtool", "0.1.0")
    return package_index


def write_project(root: Path, index: PackageIndex, *, main_extra: str = "", dev: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = PYPROJECT.format(index=index.url, main_extra=main_extra, dev=dev or 'devtool = ">=0.1"')
    (root / "pyproject.toml").write_text(text, "utf-8")


def lockwarden(root: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        ["run", str(root), *args],
        env={
            "LOCKWARDEN_CACHE_DIR": str(root.parent / "cache"),
            "LOCKWARDEN_POETRY_BIN": find_test_poetry(),
            # Anything that is not for 127.0.0.1 hits a dead proxy: the test stays offline.
            "http_proxy": DEAD_PROXY,
            "https_proxy": DEAD_PROXY,
            "no_proxy": "127.0.0.1,localhost",
            **env,
        },
        catch_exceptions=False,
    )


def report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def configure(root: Path, **extra: Any) -> None:
    lines = [
        "environments:",
        "  - name: serve",
        "    backend: poetry",
        "    spec: pyproject.toml",
    ]
    lines += [f"    {key}: {json.dumps(value)}" for key, value in extra.items()]
    (root / ".github").mkdir(exist_ok=True)
    (root / ".github/lockwarden.yml").write_text("\n".join(lines) + "\n", "utf-8")


def test_refresh_and_export_of_a_poetry_project(tmp_path: Path, index: PackageIndex) -> None:
    root = tmp_path / "repo"
    write_project(root, index)
    configure(root, export="requirements.txt")

    first = lockwarden(root)

    assert first.exit_code == 0, first.output
    lock = parse_poetry_lock((root / "poetry.lock").read_text("utf-8"), "poetry.lock")
    assert lock.versions() == {"alpha": "1.0.0", "beta": "1.0.0", "devtool": "0.1.0"}
    assert {e.name: e.groups for e in lock.requirements}["devtool"] == ("dev",)
    exported = parse_lockfile((root / "requirements.txt").read_text("utf-8"), "requirements.txt")
    assert exported.versions() == {"alpha": "1.0.0", "beta": "1.0.0"}  # no dev tools
    assert all(entry.hashes for entry in exported.requirements)

    index.publish("alpha", "1.1.0", ["beta>=1.0"])
    lock_before = (root / "poetry.lock").read_bytes()
    kept = lockwarden(root)
    assert kept.exit_code == 0, kept.output
    assert (root / "poetry.lock").read_bytes() == lock_before

    out = tmp_path / "full.json"
    full = lockwarden(root, "--upgrade", "--json", str(out), "--report", str(tmp_path / "r.md"))

    assert full.exit_code == 0, full.output
    env = report(out)["environments"][0]
    assert (env["backend"], env["lock"]) == ("poetry", "poetry.lock")
    change = next(c for c in env["changes"] if c["name"] == "alpha")
    assert (change["from"], change["to"], change["groups"]) == ("1.0.0", "1.1.0", ["main"])
    export = env["outputs"][0]
    assert (export["path"], export["kind"], export["changed"]) == (
        "requirements.txt",
        "export",
        True,
    )
    assert [(c["name"], c["to"]) for c in export["changes"]] == [("alpha", "1.1.0")]
    assert "exported from the lock" in (tmp_path / "r.md").read_text("utf-8")
    assert "alpha==1.1.0" in (root / "requirements.txt").read_text("utf-8")


def test_dev_tool_moving_into_main_is_flagged_and_reaches_the_export(
    tmp_path: Path, index: PackageIndex
) -> None:
    root = tmp_path / "repo"
    write_project(root, index)
    configure(root, export="requirements.txt")
    assert lockwarden(root).exit_code == 0
    write_project(root, index, main_extra='devtool = ">=0.1"\n', dev='beta = ">=1.0"')
    out = tmp_path / "out.json"

    result = lockwarden(root, "--json", str(out))

    assert result.exit_code == 0, result.output
    env = report(out)["environments"][0]
    moved = next(c for c in env["changes"] if c["name"] == "devtool")
    assert moved["change"] == "group"
    assert (moved["groups_before"], moved["groups"]) == (["dev"], ["main"])
    assert "devtool==0.1.0" in (root / "requirements.txt").read_text("utf-8")


def test_lock_from_an_incompatible_poetry_is_a_clear_error_and_nothing_is_written(
    tmp_path: Path, index: PackageIndex
) -> None:
    root = tmp_path / "repo"
    write_project(root, index)
    configure(root, export="requirements.txt")
    assert lockwarden(root).exit_code == 0
    text = (root / "poetry.lock").read_text("utf-8")
    future = text.replace('lock-version = "2.1"', 'lock-version = "3.0"')
    assert future != text
    (root / "poetry.lock").write_text(future, "utf-8")
    export_before = (root / "requirements.txt").read_bytes()

    result = lockwarden(root, "--upgrade")

    assert result.exit_code == 1, result.output
    assert "poetry.lock:" in result.output
    assert "lock-version 3.0" in result.output
    assert (root / "poetry.lock").read_text("utf-8") == future
    assert (root / "requirements.txt").read_bytes() == export_before


def test_discovered_project_builds_its_image_from_the_export(
    tmp_path: Path, index: PackageIndex, buildah_base: str
) -> None:
    root = tmp_path / "repo"
    write_project(root, index)
    configure(root, export="requirements.txt")
    assert lockwarden(root, "--no-build").exit_code == 0
    (root / ".github/lockwarden.yml").unlink()  # from here on: discovery
    (root / "Dockerfile").write_text(DOCKERFILE, "utf-8")
    index.publish("alpha", "1.1.0", ["beta>=1.0"])
    out = tmp_path / "out.json"

    result = lockwarden(root, "--upgrade", "--json", str(out), LOCKWARDEN_BUILDER="buildah")

    assert result.exit_code == 0, result.output + out.read_text("utf-8")
    assert "main: pyproject.toml -> poetry.lock, requirements.txt (poetry)" in result.output
    env = report(out)["environments"][0]
    assert env["outputs"][0]["path"] == "requirements.txt"
    assert env["image"]["status"] == "built", env["image"]
    assert env["image"]["before"] != env["image"]["after"]
    assert env["tests"]["install_check"]["status"] == "passed"
    assert "alpha==1.1.0" in (root / "requirements.txt").read_text("utf-8")
