"""User accounts in the registry: the `User` value, the `UserStore` interface and its two implementations.

`RegistryUserStore` keeps accounts in the registry's ``users`` table; every change runs in
``Registry.transaction(actor)`` and writes its own audit entry naming the actor (never the password hash).
`InMemoryUserStore` keeps them in a dict (tests and throw-away servers). `open_storage(db)` opens the registry
(``immunoplan.registry.db.open_registry``) and returns it with its `RegistryUserStore`: the web app's and the
``immunoplan user`` commands' whole storage. The account use cases (roles, password hashing, validation)
live in ``immunoplan.services.auth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, Table, insert, select, update
from sqlalchemy.exc import IntegrityError

from immunoplan import clock
from immunoplan.errors import InvalidInput
from immunoplan.registry.db import Registry, open_registry
from immunoplan.registry.models import AuditEntry
from immunoplan.registry.models import User as UserRow


@dataclass(frozen=True)
class User:
    """An account as the web layer sees it (never carries more than the hash)."""

    id: int
    username: str
    role: str
    disabled: bool
    password_hash: str = field(repr=False)
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }


class UserStore(Protocol):
    """Where accounts live. Implementations write an audit entry (with ``actor``) for every change."""

    def get(self, username: str) -> User | None: ...

    def get_by_id(self, user_id: int) -> User | None: ...

    def list(self) -> list[User]: ...

    def add(self, username: str, password_hash: str, role: str, actor: str) -> User: ...

    def set_password_hash(self, username: str, password_hash: str, actor: str) -> User: ...

    def set_disabled(self, username: str, disabled: bool, actor: str) -> User: ...


class InMemoryUserStore:
    """A `UserStore` in a dict (tests and throw-away servers); keeps its audit entries in ``audit``."""

    def __init__(self) -> None:
        self._users: dict[str, User] = {}
        self.audit: list[dict[str, object]] = []

    def get(self, username: str) -> User | None:
        return self._users.get(username)

    def get_by_id(self, user_id: int) -> User | None:
        return next((u for u in self._users.values() if u.id == user_id), None)

    def list(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: u.username)

    def _put(self, user: User, action: str, actor: str) -> User:
        self._users[user.username] = user
        self.audit.append({"actor": actor, "action": action, "entity": "user", "entity_id": user.username})
        return user

    def add(self, username: str, password_hash: str, role: str, actor: str) -> User:
        if username in self._users:
            raise InvalidInput("username", f"user {username!r} already exists")
        user = User(len(self._users) + 1, username, role, False, password_hash, clock.now())
        return self._put(user, "user.add", actor)

    def _existing(self, username: str) -> User:
        user = self._users.get(username)
        if user is None:
            raise InvalidInput("username", f"no user {username!r}")
        return user

    def set_password_hash(self, username: str, password_hash: str, actor: str) -> User:
        u = self._existing(username)
        new = User(u.id, u.username, u.role, u.disabled, password_hash, u.created_at)
        return self._put(new, "user.passwd", actor)

    def set_disabled(self, username: str, disabled: bool, actor: str) -> User:
        u = self._existing(username)
        new = User(u.id, u.username, u.role, disabled, u.password_hash, u.created_at)
        return self._put(new, "user.disable" if disabled else "user.enable", actor)


def _to_user(row: Any) -> User:
    return User(row.id, row.username, row.role, bool(row.disabled), row.password_hash, row.created_at)


class RegistryUserStore:
    """`UserStore` over the registry's ``users`` table (model ``immunoplan.registry.models.User``).

    Writes use SQL Core statements inside ``Registry.transaction(actor)`` and add their own audit entry, so
    the audit trail names the actor and the change but never stores the password hash (the ORM audit hook
    would copy the whole row, hash included).
    """

    SECRET = "password_hash"

    def __init__(self, registry: Registry) -> None:
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
                    at=clock.now(),
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
            "created_at": clock.now(),
        }
        try:
            with self.registry.transaction(actor=actor, use_case="user.add") as s:
                result = cast(CursorResult[Any], s.execute(insert(table).values(**values)))
                key = result.inserted_primary_key
                assert key is not None  # a single-row insert always returns its key
                new_id = key[0]
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


def user_store_for(registry: Registry) -> UserStore:
    """A `UserStore` over the registry's users table."""
    return RegistryUserStore(registry)


def open_storage(db: str) -> tuple[Registry, UserStore]:
    """Open (creating/migrating) the registry at ``db`` (path or URL) and its user store."""
    registry = open_registry(db)
    return registry, user_store_for(registry)
