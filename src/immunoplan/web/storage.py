"""Where the web app keeps its data: the registry database (patients, records, users, audit trail).

`open_storage(db)` opens the registry (``immunoplan.registry.db.open_registry``) and returns it with a
`RegistryUserStore` over its ``users`` table. Every account change runs in ``Registry.transaction(actor)``,
so the registry's audit trail records who made it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from immunoplan.errors import InvalidInput
from immunoplan.services.auth import User, UserStore


def _to_user(row: Any) -> User:
    return User(row.id, row.username, row.role, bool(row.disabled), row.password_hash, row.created_at)


class RegistryUserStore:
    """`UserStore` over the registry's ``users`` table (model ``immunoplan.registry.models.User``)."""

    def __init__(self, registry: Any) -> None:
        from immunoplan.registry.models import User as UserRow

        self.registry = registry
        self._row = UserRow

    def get(self, username: str) -> User | None:
        with self.registry.session() as s:
            row = s.scalars(select(self._row).where(self._row.username == username)).first()
            return _to_user(row) if row else None

    def get_by_id(self, user_id: int) -> User | None:
        with self.registry.session() as s:
            row = s.get(self._row, user_id)
            return _to_user(row) if row else None

    def list(self) -> list[User]:
        with self.registry.session() as s:
            return [_to_user(r) for r in s.scalars(select(self._row).order_by(self._row.username))]

    def add(self, username: str, password_hash: str, role: str, actor: str) -> User:
        try:
            with self.registry.transaction(actor=actor, use_case="user.add") as s:
                row = self._row(username=username, password_hash=password_hash, role=role, disabled=False)
                s.add(row)
                s.flush()
                return _to_user(row)
        except IntegrityError:
            raise InvalidInput("username", f"user {username!r} already exists") from None

    def _update(self, username: str, actor: str, use_case: str, **values: Any) -> User:
        with self.registry.transaction(actor=actor, use_case=use_case) as s:
            row = s.scalars(select(self._row).where(self._row.username == username)).first()
            if row is None:
                raise InvalidInput("username", f"no user {username!r}")
            for k, v in values.items():
                setattr(row, k, v)
            s.flush()
            return _to_user(row)

    def set_password_hash(self, username: str, password_hash: str, actor: str) -> User:
        return self._update(username, actor, "user.passwd", password_hash=password_hash)

    def set_disabled(self, username: str, disabled: bool, actor: str) -> User:
        return self._update(username, actor, "user.disable" if disabled else "user.enable", disabled=disabled)


def user_store_for(registry: Any) -> UserStore:
    """A `UserStore` over the registry's users table."""
    return RegistryUserStore(registry)


def open_storage(db: str) -> tuple[Any, UserStore]:
    """Open (creating/migrating) the registry at ``db`` (path or URL) and its user store."""
    from immunoplan.registry.db import open_registry

    registry = open_registry(db)
    return registry, user_store_for(registry)
