"""Where the web app keeps its data: the registry database (patients, records, users, audit trail).

`open_storage(db)` opens the registry (``immunoplan.registry.db.open_registry``) and returns it with a
`RegistryUserStore` over its ``users`` table. Every account change runs in ``Registry.transaction(actor)``,
so the registry's audit trail records who made it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from immunoplan.errors import InvalidInput
from immunoplan.services.auth import User, UserStore


def _to_user(row: Any) -> User:
    return User(row.id, row.username, row.role, bool(row.disabled), row.password_hash, row.created_at)


class RegistryUserStore:
    """`UserStore` over the registry's ``users`` table (model ``immunoplan.registry.models.User``).

    Writes use SQL Core statements inside ``Registry.transaction(actor)`` and add their own audit entry, so
    the audit trail names the actor and the change but never stores the password hash (the ORM audit hook
    would copy the whole row, hash included).
    """

    SECRET = "password_hash"

    def __init__(self, registry: Any) -> None:
        from immunoplan.registry.models import AuditEntry
        from immunoplan.registry.models import User as UserRow

        self.registry = registry
        self._row = UserRow
        self._audit = cast(Table, AuditEntry.__table__)
        self._table = cast(Table, UserRow.__table__)

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

    def _public(self, values: dict[str, Any]) -> dict[str, Any]:
        out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}
        if self.SECRET in out:
            out[self.SECRET] = "(set)"
        return out

    def _log(self, s: Any, action: str, row_id: int, before: Any, after: Any) -> None:
        s.execute(
            insert(self._audit),
            [
                dict(
                    actor=s.info["actor"],
                    at=datetime.now(UTC),
                    action=action,
                    table_name="users",
                    row_id=row_id,
                    before=before,
                    after=after,
                    use_case=s.info.get("use_case"),
                )
            ],
        )

    def add(self, username: str, password_hash: str, role: str, actor: str) -> User:
        table = self._table
        values = {
            "username": username,
            "password_hash": password_hash,
            "role": role,
            "disabled": False,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.registry.transaction(actor=actor, use_case="user.add") as s:
                new_id = s.execute(insert(table).values(**values)).inserted_primary_key[0]
                self._log(s, "insert", new_id, None, self._public({"id": new_id, **values}))
        except IntegrityError:
            raise InvalidInput("username", f"user {username!r} already exists") from None
        user = self.get_by_id(int(new_id))
        assert user is not None
        return user

    def _update(self, username: str, actor: str, use_case: str, **values: Any) -> User:
        table = self._table
        with self.registry.transaction(actor=actor, use_case=use_case) as s:
            old = s.execute(select(table).where(table.c.username == username)).mappings().first()
            if old is None:
                raise InvalidInput("username", f"no user {username!r}")
            s.execute(update(table).where(table.c.id == old["id"]).values(**values))
            before = self._public({k: old[k] for k in values})
            after = self._public(values)
            if self.SECRET in values:
                before[self.SECRET], after[self.SECRET] = "(old)", "(changed)"
            self._log(s, "update", old["id"], before, after)
        user = self.get(username)
        assert user is not None
        return user

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
