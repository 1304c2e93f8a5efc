"""``serve`` and ``worker`` refuse a database whose schema is missing or older than the
code, and ``--migrate`` (or ``lockwarden migrate``) brings it up to date."""

from __future__ import annotations

import itertools

import psycopg
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.cli import _require_schema, main
from bot.jobs.postgres import ProcrastinateQueue
from tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.slow

_databases = itertools.count(1)
MESSAGE = "database schema is missing or out of date: run lockwarden migrate"


@pytest.fixture
def database_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database(f"schema_cli_test_{next(_databases)}")


@pytest.fixture(scope="module")
def app_env() -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return {
        "LOCKWARDEN_APP_ID": "12",
        "LOCKWARDEN_PRIVATE_KEY": pem.replace("\n", "\\n"),
        "LOCKWARDEN_WEBHOOK_SECRET": "s3cret",
        "LOCKWARDEN_SANDBOX": "off",
    }


def test_a_fresh_database_lacks_everything_and_migrate_makes_it(database_url: str) -> None:
    with ProcrastinateQueue(database_url) as queue:
        missing = queue.missing_schema()
        assert "procrastinate_jobs" in missing
        assert "lockwarden_deliveries" in missing
        assert "procrastinate_prune_stalled_workers_v1()" in missing
        assert not queue.schema_ready()

        _require_schema(queue, migrate=True)

        assert queue.missing_schema() == ()
        assert queue.schema_ready()


def test_a_schema_an_older_version_made_is_out_of_date(database_url: str) -> None:
    with ProcrastinateQueue(database_url) as queue:
        queue.migrate()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DROP FUNCTION procrastinate_prune_stalled_workers_v1")
    with ProcrastinateQueue(database_url) as queue:
        assert queue.missing_schema() == ("procrastinate_prune_stalled_workers_v1()",)


@pytest.mark.parametrize("command", [["worker"], ["serve", "--with-worker"], ["serve"]])
def test_serve_and_worker_refuse_an_unmigrated_database(
    database_url: str, app_env: dict[str, str], command: list[str]
) -> None:
    env = {**app_env, "LOCKWARDEN_DATABASE_URL": database_url}
    result = CliRunner().invoke(main, command, env=env)

    assert result.exit_code == 2, result.output
    assert MESSAGE in result.output
    assert "--migrate" in result.output
    with ProcrastinateQueue(database_url) as queue:
        assert "procrastinate_jobs" in queue.missing_schema()  # nothing was created
