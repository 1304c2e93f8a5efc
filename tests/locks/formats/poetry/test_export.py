"""An export keeps its own form (hashes, groups, extras) before the config's defaults; an
explicit config value wins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import EnvironmentConfig
from bot.locks.compiler import ExtraOutput
from bot.locks.formats.poetry.export import export_request

PYPROJECT = """\
[tool.poetry]
name = "service"
version = "0.1.0"
package-mode = false

[tool.poetry.dependencies]
python = "^3.11"
alpha = ">=1.0"
beta = ">=1.0"
socksio = { version = ">=1", optional = true }

[tool.poetry.extras]
socks = ["socksio"]

[tool.poetry.group.dev.dependencies]
devtool = ">=0.1"
beta = ">=1.0"

[tool.poetry.group.docs.dependencies]
mkdocs = "*"
"""
H = "sha256:" + "a" * 64


def request(tmp_path: Path, old: str | None, **config: Any) -> tuple[Any, ...]:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT, "utf-8")
    env = EnvironmentConfig(
        name="serve",
        backend="poetry",
        spec="pyproject.toml",
        export="requirements.txt",
        **config,
    )
    output = ExtraOutput(path="requirements.txt", output=tmp_path / "out.txt", kind="export")
    made = export_request(tmp_path, env, output, old, None)
    assert made.output == output
    return made.groups, made.extras, made.with_hashes


@pytest.mark.parametrize(
    ("old", "config", "expected"),
    [
        pytest.param(None, {}, (("main",), (), True), id="no-export-yet-defaults"),
        pytest.param(
            "alpha==1.0 ; python_version >= '3.11'\nbeta==1.0\n",
            {},
            (("main",), (), False),
            id="without-hashes-kept",
        ),
        pytest.param(
            "alpha==1.0\nbeta==1.0\n",
            {"export_hashes": True},
            (("main",), (), True),
            id="explicit-hashes-win",
        ),
        pytest.param(
            f"alpha==1.0 --hash={H}\nbeta==1.0 --hash={H}\ndevtool==0.1 --hash={H}\n",
            {},
            (("main", "dev"), (), True),
            id="dev-packages-mean-with-dev",
        ),
        pytest.param(
            "alpha==1.0\nbeta==1.0\n",
            {},
            (("main",), (), False),
            id="a-dev-package-main-needs-too-says-nothing",
        ),
        pytest.param(
            "alpha==1.0\nsocksio==1.0\n",
            {"export_groups": ["main", "docs"], "export_extras": []},
            (("main", "docs"), (), False),
            id="explicit-groups-and-extras-win",
        ),
        pytest.param(
            "alpha==1.0\nsocksio==1.0\n", {}, (("main",), ("socks",), False), id="extras-kept"
        ),
    ],
)
def test_export_form(
    tmp_path: Path, old: str | None, config: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    assert request(tmp_path, old, **config) == expected
