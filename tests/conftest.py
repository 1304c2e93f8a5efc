"""Shared fixtures.  The machinery behind them lives in ``tests/support``."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from tests.support.advisory_service import AdvisoryService, start_advisory_service
from tests.support.base_image import (
    ToolMissing,
    ensure_buildah_base,
    ensure_docker_base,
    find_tool,
)
from tests.support.daemons import ensure_dockerd, start_registry
from tests.support.fake_github import FakeGitHub
from tests.support.index_server import PackageIndex, isolated_env, start_index, unused_local_url
from tests.support.postgres import PostgresCluster, start_cluster
from tests.support.scheduling import FileScheduling, store_locked


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> FileScheduling | None:
    """With ``-n``: whole files per worker, and the buildah files on one worker
    (``tests/support/scheduling.py`` says why)."""
    if config.getoption("dist") != "loadfile":
        return None
    return FileScheduling(config, log)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Tests that build with buildah hold the store's lock (``tests/support/scheduling.py``)."""
    with store_locked(item, "all"):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """A file whose builds look up no cache holds it only while it removes its image."""
    with store_locked(item, "teardown"):
        return (yield)


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[PackageIndex]:
    """A fresh, empty package index on 127.0.0.1; ``publish`` wheels onto it."""
    with start_index(tmp_path / "index") as index:
        yield index


@pytest.fixture
def unreachable_index_url() -> str:
    """An index URL on 127.0.0.1 where nothing listens (connections are refused)."""
    return unused_local_url()


@pytest.fixture
def isolated_tool_env(tmp_path: Path) -> dict[str, str]:
    """Environment for running pip / pip-compile / uv without the machine's configuration."""
    return isolated_env(tmp_path / "tool-cache")


# -- container images ------------------------------------------------------------------------


def _tools_or_skip(*tools: str, root: bool = False) -> None:
    """Skip when a tool is missing on a developer's machine; fail in CI (where CI is set)."""
    missing = [tool for tool in tools if find_tool(tool) is None]
    if root and os.geteuid() != 0:
        missing.append("root")
    if missing:
        _skip_or_fail(f"needs {', '.join(missing)} (.ci/setup installs the tools, as root)")


def _skip_or_fail(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def buildah_base() -> str:
    """The base image in buildah's store (``FROM python:3.11-slim-bookworm``); its id.

    Builds must say ``buildah bud --runtime runc --pull-never``.
    """
    _tools_or_skip("buildah", "runc", root=True)
    try:
        return ensure_buildah_base()
    except ToolMissing as exc:
        _skip_or_fail(str(exc))


@pytest.fixture(scope="session")
def docker_host() -> Iterator[str]:
    """A running docker daemon holding the base image; its DOCKER_HOST, also set in os.environ.

    The daemon has no bridge network: build with ``--network host``, run with ``--network none``
    (or ``host``).
    """
    _tools_or_skip("docker")
    try:
        host = ensure_dockerd()
        ensure_docker_base(host)
    except ToolMissing as exc:
        _skip_or_fail(str(exc))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DOCKER_HOST", host)
        yield host


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """An empty image registry on 127.0.0.1 (plain HTTP, no auth); its "127.0.0.1:<port>"."""
    _tools_or_skip("docker-registry")
    address, stop = start_registry(tmp_path / "registry")
    try:
        yield address
    finally:
        stop()


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 for the whole session (trust auth).

    A test may ``stop()`` and ``start()`` it, and must leave it running.
    """
    try:
        cluster = start_cluster()
    except ToolMissing as exc:
        _skip_or_fail(str(exc))
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """The URL of an empty database in :func:`postgres_cluster`."""
    return postgres_cluster.url()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    """A fresh fake GitHub (REST, git over HTTP, webhooks) for one test."""
    with FakeGitHub(tmp_path / "github") as github:
        yield github


@pytest.fixture(scope="module")
def module_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGitHub]:
    """One fake GitHub for a whole module, whose tests each work in repositories of their own
    (starting one per test is slow). A module takes it as its ``fake``::

        @pytest.fixture(scope="module")
        def fake(module_fake: FakeGitHub) -> FakeGitHub:
            return module_fake
    """
    with FakeGitHub(tmp_path_factory.mktemp("github")) as github:
        yield github


@pytest.fixture(autouse=True)
def _undo_logging_configuration() -> Iterator[None]:
    """`serve`, `worker` and `migrate` configure the process's logging (bot.logs): undo it
    after each test, so no handler outlives the stream a test gave it."""
    import logging

    import structlog

    from bot.logs import HANDLER_NAME

    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture(autouse=True)
def _advisories_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test asks the public advisory services: lookups are off unless a test asks for the
    local service (the ``advisory_service`` fixture)."""
    monkeypatch.setenv("LOCKWARDEN_ADVISORY_SERVICE", "off")
    # Nor the indexes about yanks and upload times, unless a test turns them on.
    monkeypatch.setenv("LOCKWARDEN_UPSTREAM_LOOKUPS", "0")


@pytest.fixture
def advisory_service(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AdvisoryService]:
    """The local advisory service, with the settings pointed at it (PyPI's API, a fresh
    cache in the test's directory)."""
    with start_advisory_service() as service:
        monkeypatch.setenv("LOCKWARDEN_ADVISORY_SERVICE", "pypi")
        monkeypatch.setenv("LOCKWARDEN_ADVISORY_URL", service.url)
        monkeypatch.setenv("LOCKWARDEN_ADVISORY_CACHE_DIR", str(tmp_path / "advisory-cache"))
        yield service


@pytest.fixture(autouse=True)
def _local_index_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests' package indexes, registries and fake GitHub listen on 127.0.0.1, as an
    operator's internal mirror would on a private address: allow loopback for compiles, as
    LOCKWARDEN_ALLOWED_PRIVATE_HOSTS does in production. Security tests that check the
    refusal build their own settings without it."""
    monkeypatch.setenv("LOCKWARDEN_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
