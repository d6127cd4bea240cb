"""Registry fixtures: a throw-away PostgreSQL 15 server per test process, and `registry` on both backends.

The server is started with Debian's binaries (initdb/pg_ctl in /usr/lib/postgresql/15/bin). Run as root, the
cluster runs as the ``postgres`` OS user (``runuser``) in a data directory it owns. Each xdist worker is
its own process and so starts its own server on a free port. Tests needing it are marked ``postgres`` and are
skipped, with the reason printed, only when no initdb binary exists.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from immunoplan.registry.db import Registry, open_registry

PG_BIN = Path(os.environ.get("IMMUNOPLAN_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="immunoplan-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._template: str | None = None
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        if self.as_root:
            os.chmod(self.root, 0o755)
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.root)

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.user, "-A", "trust", "-E", "UTF8", "--no-sync")
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        dsn = f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def migrated_template(self) -> str:
        """A database migrated once per server; tests clone it (CREATE DATABASE ... TEMPLATE)."""
        if self._template is None:
            name = self.create_database()
            open_registry(self.url(name)).dispose()
            self._template = name
        return self._template


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(
            f"PostgreSQL tests skipped: no initdb in {PG_BIN} (install postgresql-15: "
            "scripts/install-test-deps.sh)"
        )
    server = PgServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """URL of a fresh database on the test server, already migrated (cloned from a migrated template)."""
    return pg_server.url(pg_server.create_database(pg_server.migrated_template()))


@pytest.fixture
def empty_pg_url(pg_server: PgServer) -> str:
    """URL of a fresh, empty database on the test server."""
    return pg_server.url(pg_server.create_database())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "registry.sqlite"
    open_registry(path).dispose()
    return path


def _sqlite_copy(template: Path, tmp_path: Path) -> Registry:
    target = tmp_path / "registry.sqlite"
    shutil.copyfile(template, target)
    return open_registry(target)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """An empty, migrated registry on SQLite (file in tmp_path) and on PostgreSQL 15."""
    if request.param == "sqlite":
        reg = _sqlite_copy(request.getfixturevalue("sqlite_template"), tmp_path)
    else:
        reg = open_registry(request.getfixturevalue("pg_url"))
    try:
        yield reg
    finally:
        reg.dispose()


@pytest.fixture
def sqlite_registry(sqlite_template: Path, tmp_path: Path) -> Iterator[Registry]:
    reg = _sqlite_copy(sqlite_template, tmp_path)
    try:
        yield reg
    finally:
        reg.dispose()
