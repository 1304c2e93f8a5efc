"""The Poetry executable the tests run, and the environment that keeps it offline.

Poetry is a tool of Lockwarden, not a library: ``.ci/setup`` installs it (with
poetry-plugin-export) into ``.tools/poetry`` from ``deploy/requirements-poetry.txt``. The
tests use ``$LOCKWARDEN_POETRY_BIN`` when set, else that virtualenv's ``bin/poetry``, else
``poetry`` on PATH; without any of them they fail (Poetry tests are never skipped).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support.index_server import isolated_env

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_POETRY = REPO_ROOT / ".tools" / "poetry" / "bin" / "poetry"

# A port nothing listens on: any request that is not for 127.0.0.1 goes to this "proxy" and
# is refused, so a test that reaches for PyPI fails instead of silently going online.
DEAD_PROXY = "http://127.0.0.1:9"


def find_test_poetry() -> str:
    """The Poetry executable for tests; fails the test (never skips) when there is none."""
    configured = os.environ.get("LOCKWARDEN_POETRY_BIN")
    if configured:
        if not Path(configured).is_file():
            pytest.fail(f"LOCKWARDEN_POETRY_BIN={configured} does not exist; run .ci/setup")
        return configured
    if TOOLS_POETRY.is_file():
        return str(TOOLS_POETRY)
    found = shutil.which("poetry")
    if found is None:
        pytest.fail(
            "Poetry is not installed: run .ci/setup (it installs Poetry into .tools/poetry) "
            "or set LOCKWARDEN_POETRY_BIN"
        )
    return found


def offline_env(cache_root: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``isolated_env`` plus proxies on a dead local port for everything but 127.0.0.1."""
    env = isolated_env(cache_root, base)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
        env[name] = DEAD_PROXY
    env["no_proxy"] = env["NO_PROXY"] = "127.0.0.1,localhost"
    return env
