"""User accounts: roles, argon2 password hashing, and the account use cases shared by CLI and web.

Roles (issue 7): ``admin``, ``clinician``, ``nurse``, ``pharmacist`` and ``researcher`` (de-identified,
read-only). Passwords are hashed with Argon2id (argon2-cffi, RFC 9106 defaults); a hash is never logged or
shown. Storage sits behind the small `UserStore` interface so the web layer does not depend on how the
registry keeps its ``users`` table; every change is written by the store together with an audit entry naming
the actor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from immunoplan.errors import InvalidInput
from immunoplan.validation import check_choice

ROLES: tuple[str, ...] = ("admin", "clinician", "nurse", "pharmacist", "researcher")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
USERNAME_ACCEPTED = "2-40 characters: lower-case letters, digits, '.', '_' or '-'"
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 256


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
        user = User(len(self._users) + 1, username, role, False, password_hash, datetime.now(UTC))
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


class Passwords:
    """Argon2id hashing; ``fast=True`` uses minimal cost parameters (tests only, never production)."""

    def __init__(self, fast: bool = False) -> None:
        self._ph = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1) if fast else PasswordHasher()
        # A dummy hash so that verifying an unknown user costs the same time as a known one.
        self._dummy = self._ph.hash("not-a-real-password-0")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._ph.verify(password_hash or self._dummy, password) and password_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def check_username(username: str) -> str:
    name = (username or "").strip()
    if not USERNAME_RE.match(name):
        raise InvalidInput("username", f"invalid user name {username!r}", USERNAME_ACCEPTED)
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not (PASSWORD_MIN_CHARS <= len(password) <= PASSWORD_MAX_CHARS):
        raise InvalidInput(
            "password",
            "password length out of range",
            f"{PASSWORD_MIN_CHARS}-{PASSWORD_MAX_CHARS} characters",
        )
    return password


def add_user(store: UserStore, pw: Passwords, username: str, password: str, role: str, actor: str) -> User:
    """Create an account (validated name, role and password); the store audits it under ``actor``."""
    name = check_username(username)
    check_choice("role", role, ROLES)
    check_password(password)
    if store.get(name) is not None:
        raise InvalidInput("username", f"user {name!r} already exists")
    return store.add(name, pw.hash(password), role, actor)


def change_password(store: UserStore, pw: Passwords, username: str, password: str, actor: str) -> User:
    name = check_username(username)
    check_password(password)
    if store.get(name) is None:
        raise InvalidInput("username", f"no user {name!r}")
    return store.set_password_hash(name, pw.hash(password), actor)


def set_disabled(store: UserStore, username: str, disabled: bool, actor: str) -> User:
    name = check_username(username)
    if store.get(name) is None:
        raise InvalidInput("username", f"no user {name!r}")
    return store.set_disabled(name, disabled, actor)


def authenticate(store: UserStore, pw: Passwords, username: str, password: str) -> User | None:
    """The user if the name and password match an enabled account, else None (same cost either way)."""
    user = store.get((username or "").strip())
    ok = pw.verify(user.password_hash if user else None, password or "")
    if user is None or not ok or user.disabled:
        return None
    return user
