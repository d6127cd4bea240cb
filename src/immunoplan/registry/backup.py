"""Consistent backups and verified restores.

- SQLite: the sqlite3 online backup API copies a consistent snapshot page by page while other connections
  may keep writing (WAL); restore checks the file (integrity_check, Alembic revision) and copies it back with
  the same API, then migrates it if it is older than the code.
- PostgreSQL: ``pg_dump --format=custom`` (a consistent snapshot by MVCC) and ``pg_restore --clean``; the
  client binaries are found on PATH or in /usr/lib/postgresql/15/bin.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from immunoplan.errors import InvalidInput
from immunoplan.registry.audit import record_bulk
from immunoplan.registry.db import head_revision, open_registry, to_url

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _sqlite_path(url: str) -> Path:
    db = make_url(url).database
    if not db or db == ":memory:":
        raise InvalidInput("db", "an in-memory database cannot be backed up", "a SQLite file path")
    return Path(db).expanduser()


def _pg_tool(name: str) -> str:
    found = shutil.which(name) or (str(PG_BIN / name) if (PG_BIN / name).exists() else None)
    if not found:
        raise InvalidInput("url", f"{name} is not installed (needed for PostgreSQL backups)")
    return found


def _pg_args(url: str) -> list[str]:
    u = make_url(url)
    args = [
        "--dbname",
        u.database or "postgres",
        "--host",
        u.host or "localhost",
        "--port",
        str(u.port or 5432),
    ]
    if u.username:
        args += ["--username", u.username]
    return args


def _pg_env(url: str) -> dict[str, str] | None:
    import os

    pw = make_url(url).password
    return {**os.environ, "PGPASSWORD": str(pw)} if pw else None


def backup(url_or_path: str | Path | None, out: str | Path) -> dict[str, Any]:
    """Write a consistent copy of the registry to ``out``; returns what was written."""
    url = to_url(url_or_path)
    out_path = Path(out).expanduser()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if make_url(url).get_backend_name() == "sqlite":
        src_path = _sqlite_path(url)
        if not src_path.exists():
            raise InvalidInput("db", f"no registry at {src_path}")
        tmp = out_path.with_suffix(out_path.suffix + ".part")
        src = sqlite3.connect(str(src_path))
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        tmp.replace(out_path)
        kind = "sqlite-online-backup"
    else:
        cmd = [_pg_tool("pg_dump"), "--format=custom", "--file", str(out_path), *_pg_args(url)]
        subprocess.run(cmd, check=True, capture_output=True, env=_pg_env(url))
        kind = "pg_dump-custom"
    return {"backup": str(out_path), "method": kind, "bytes": out_path.stat().st_size}


def _check_sqlite_backup(path: Path) -> str:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA integrity_check").fetchone()[0]
            rev = con.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InvalidInput("from", f"not a registry backup: {exc}") from None
    if ok != "ok" or not rev:
        raise InvalidInput("from", f"backup failed its integrity check: {ok}")
    return str(rev[0])


def restore(url_or_path: str | Path | None, source: str | Path, actor: str = "restore") -> dict[str, Any]:
    """Replace the registry's content with the backup ``source`` (verified first), migrate it, and append an
    audit entry saying who restored which file (the restored audit trail ends at the backup time)."""
    url = to_url(url_or_path)
    src_path = Path(source).expanduser()
    if not src_path.is_file():
        raise InvalidInput("from", f"no backup file {src_path}")
    if make_url(url).get_backend_name() == "sqlite":
        revision = _check_sqlite_backup(src_path)
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{src_path}?mode=ro", uri=True)
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
    else:
        cmd = [_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", *_pg_args(url), str(src_path)]
        proc = subprocess.run(cmd, capture_output=True, env=_pg_env(url))
        if proc.returncode != 0:
            raise InvalidInput("from", f"pg_restore failed: {proc.stderr.decode(errors='replace')[:300]}")
        revision = "?"
    reg = open_registry(url)  # migrates an older backup to the current schema
    try:
        with reg.transaction(actor, "db_restore") as s:
            record_bulk(s, "*", 0, {"restored_from": str(src_path), "backup_revision": revision}, "restore")
    finally:
        reg.dispose()
    return {"restored_from": str(src_path), "backup_revision": revision, "revision": head_revision()}
