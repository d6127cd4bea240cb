"""Alembic environment for the registry (shipped inside the package; run by `immunoplan.registry.db`).

The caller passes an open connection in ``config.attributes["connection"]``; SQLite uses batch mode
(``render_as_batch``) because it lacks most ALTER TABLE forms.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from immunoplan.registry.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # plain `alembic -c ...` use: URL from the config
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
