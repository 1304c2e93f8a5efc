"""A throwaway PostgreSQL cluster for the durable queue's tests.

Debian's server binaries live in ``/usr/lib/postgresql/<major>/bin`` (not on PATH); the newest
installed major is used. ``initdb`` refuses to run as root, so as root every server command
runs as the ``postgres`` system user (created by Debian's package) through ``runuser``, in a
temporary directory handed over to that user. The server listens on 127.0.0.1 only, on a
free port, with its Unix socket in that directory (not ``/var/run/postgresql``), and trusts
local connections: the URL is ``postgresql://postgres@127.0.0.1:<port>/<database>``.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from tests.support.base_image import ToolMissing

SERVER_USER = "postgres"
DATABASE = "lockwarden"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding initdb and pg_ctl."""
    found = [
        Path(initdb).parent
        for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb")
        if (Path(initdb).parent / "pg_ctl").exists()
    ]
    if not found:
        return None
    return max(found, key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One cluster in a temporary directory; :meth:`start` / :meth:`stop` as often as needed,
    :meth:`destroy` at the end."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self._as_user: list[str] = []
        self.root = Path(tempfile.mkdtemp(prefix="lockwarden-pg-"))
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError as exc:
                shutil.rmtree(self.root, ignore_errors=True)
                raise ToolMissing(f"running as root needs the {SERVER_USER!r} user") from exc
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", SERVER_USER, "--"]
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._run(
            "initdb",
            *("-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            "--no-sync",
        )

    def _run(self, tool: str, *args: str) -> None:
        command = [*self._as_user, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}"
            )

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off"
        try:
            self._run(
                "pg_ctl",
                *("-D", str(self.data), "-l", str(self.log), "-o", options),
                *("-w", "-t", "60", "start"),
            )
        except RuntimeError as exc:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{exc}\n{log[-2000:]}") from exc

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        """A new empty database; its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        with contextlib.suppress(RuntimeError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> PostgresCluster:
    """A running cluster with the database :data:`DATABASE`; :class:`ToolMissing` when
    PostgreSQL's server is not installed."""
    bindir = find_bindir()
    if bindir is None:
        raise ToolMissing("PostgreSQL's server is not installed (.ci/setup installs it)")
    cluster = PostgresCluster(bindir)
    try:
        cluster.start()
        cluster.create_database(DATABASE)
    except BaseException:
        cluster.destroy()
        raise
    return cluster
