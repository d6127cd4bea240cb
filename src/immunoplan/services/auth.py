"""User accounts: roles, argon2 password hashing, and the account use cases shared by CLI and web.

Roles (issue 7): ``admin``, ``clinician``, ``nurse``, ``pharmacist`` and ``researcher`` (de-identified,
read-only). Passwords are hashed with Argon2id (argon2-cffi, RFC 9106 defaults); a hash is never logged or
shown. Storage sits behind the small `UserStore` interface (``immunoplan.registry.users``, re-exported here)
so the use cases do not depend on how the registry keeps its ``users`` table; every change is written by the
store together with an audit entry naming the actor.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from immunoplan.errors import InvalidInput
from immunoplan.registry.users import InMemoryUserStore as InMemoryUserStore
from immunoplan.registry.users import User as User
from immunoplan.registry.users import UserStore as UserStore
from immunoplan.validation import check_choice

ROLES: tuple[str, ...] = ("admin", "clinician", "nurse", "pharmacist", "researcher")
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")
USERNAME_ACCEPTED = "2-40 characters: lower-case letters, digits, '.', '_' or '-'"
PASSWORD_MIN_CHARS = 10
PASSWORD_MAX_CHARS = 256


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
