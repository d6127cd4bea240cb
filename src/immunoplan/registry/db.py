"""Open the registry: engine + session factory, migrated to the newest schema on first use.

Usage (CLI, web app, analysis and tests)::

    from immunoplan.registry.db import open_registry
    reg = open_registry("var/demo.sqlite")          # or a URL: "postgresql+psycopg://u@host:5432/db"
    with reg.transaction(actor="nurse.kim", use_case="record_injection") as s:
        s.add(...)                                   # one transaction; audited; rolled back on error
    with reg.session() as s:                         # read-only work (no actor needed)
        s.scalars(select(Patient)).all()

``open_registry()`` without an argument uses the settings (``IMMUNOPLAN_DATABASE_URL`` or ``IMMUNOPLAN_DB``).
SQLite files get WAL journaling, foreign keys and a busy timeout; parent folders are created.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from immunoplan.errors import InvalidInput
from immunoplan.registry import audit
from immunoplan.settings import get_settings

MIGRATIONS = Path(__file__).parent / "migrations"


def to_url(url_or_path: str | Path | None) -> str:
    """A SQLAlchemy URL from a URL, a file path, or (None) the settings."""
    if url_or_path is None:
        return get_settings().registry_url()
    text = str(url_or_path)
    if "://" in text:
        accepted = "sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB"
        try:
            backend = make_url(text).get_backend_name()
        except ArgumentError as exc:
            raise InvalidInput("url", f"not a database URL: {exc}", accepted) from None
        if backend not in ("sqlite", "postgresql"):
            raise InvalidInput("url", f"unsupported database {backend!r}", accepted)
        return text
    return f"sqlite:///{Path(text).expanduser()}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # SQLAlchemy's documented pysqlite recipe: the driver's own implicit BEGIN is switched off and
    # `_sqlite_begin` emits it, so a write transaction can take the write lock at its start.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.close()


WRITE_OPTION = "immunoplan_write"


def _sqlite_begin(conn: Any) -> None:
    """``BEGIN IMMEDIATE`` for write transactions (one writer at a time: a use case's checks see every
    committed write, e.g. the injection another nurse recorded 3 s earlier), plain ``BEGIN`` for reads."""
    immediate = conn.get_execution_options().get(WRITE_OPTION)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str) -> Engine:
    """Engine for ``url``; SQLite files get WAL + foreign keys, in-memory SQLite one shared connection."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        memory = u.database in (None, "", ":memory:")
        if u.database and not memory:
            Path(u.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs: dict[str, Any] = {"poolclass": StaticPool} if memory else {}
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> str | None:
    """Upgrade the schema to ``revision`` (default: newest); returns the revision now current.

    SQLite: foreign keys are off while the migration runs. A batch-mode table rebuild drops the old table,
    and with foreign keys on that drop fires the children's ON DELETE actions (``measurements.visit_id`` and
    ``reactions.injection_id`` set to NULL when ``visits``/``injections`` are rebuilt). ``PRAGMA
    foreign_key_check`` then refuses a migration that left a dangling reference (nothing is committed).
    """
    cfg = _alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw = conn.connection.driver_connection if sqlite else None
        if raw is not None:  # outside any transaction (the PRAGMA is a no-op inside one)
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                dangling = conn.exec_driver_sql("PRAGMA foreign_key_check").all() if sqlite else []
                if dangling:
                    raise RuntimeError(f"migration to {revision} left dangling references: {dangling[:5]}")
        finally:
            if raw is not None:
                raw.execute("PRAGMA foreign_keys=ON")
    return current_revision(engine)


@dataclass
class Registry:
    """An opened registry: engine, URL and an audited session factory."""

    engine: Engine
    url: str
    sessions: sessionmaker[Session]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def session(self) -> Session:
        """A plain session for reading (changes still need an actor: use `transaction`)."""
        return self.sessions()

    @contextmanager
    def transaction(self, actor: str, use_case: str | None = None) -> Iterator[Session]:
        """One audited transaction: commits on success, rolls back everything on any exception."""
        if not actor or not str(actor).strip():
            raise InvalidInput("actor", "is required for every change (audit trail)")
        with self.sessions() as s:
            s.info["actor"] = str(actor).strip()
            s.info["use_case"] = use_case
            with s.begin():
                s.connection(execution_options={WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE
                yield s

    def dispose(self) -> None:
        self.engine.dispose()


def open_registry(url_or_path: str | Path | None = None, *, migrate_schema: bool = True) -> Registry:
    """Open (and by default create/migrate) the registry at a URL, a SQLite path, or the settings' place."""
    url = to_url(url_or_path)
    engine = make_engine(url)
    if migrate_schema and current_revision(engine) != head_revision():
        migrate(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    audit.install(factory)
    return Registry(engine=engine, url=url, sessions=factory)
