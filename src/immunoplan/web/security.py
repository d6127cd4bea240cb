"""Web security primitives: the role matrix, signed session cookies, CSRF tokens and login rate limiting.

The role matrix is declared once here (`PERMISSIONS`); every route names exactly one permission and
`tests/web/test_web_roles.py` enumerates all routes against this table. Sessions are itsdangerous-signed
cookies (HttpOnly, SameSite=Lax) carrying the user id, a CSRF token and a fingerprint of the password hash
(changing a password or disabling the account ends existing sessions).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from immunoplan.services.auth import ROLES

PUBLIC = "public"
AUTHENTICATED = "authenticated"

_CLINICAL = frozenset({"admin", "clinician"})
_CARE_TEAM = frozenset({"admin", "clinician", "nurse", "pharmacist"})

#: permission -> roles allowed (``public``: anyone, also anonymous). The one declared role matrix.
PERMISSIONS: dict[str, frozenset[str]] = {
    PUBLIC: frozenset(),
    AUTHENTICATED: frozenset(ROLES),
    "patient.read": _CARE_TEAM,  # identifiable patient data: never the researcher
    "patient.write": _CLINICAL,
    "assessment.write": _CLINICAL,
    "course.plan": _CLINICAL,
    "injection.record": frozenset({"admin", "clinician", "nurse"}),
    "desensitization.plan": _CLINICAL,
    "desensitization.sheets": _CARE_TEAM,
    "desensitization.record": frozenset({"admin", "clinician", "nurse"}),
    "visit.record": frozenset({"admin", "clinician", "nurse"}),
    # corrections (void/amend with a reason): the roles that record care; not researcher, not pharmacist
    "record.void": frozenset({"admin", "clinician", "nurse"}),
    "record.amend": frozenset({"admin", "clinician", "nurse"}),
    # the front desk: names and MRNs of who is due or late, reminders, no-shows (the roles that run a desk)
    "front_desk.read": frozenset({"admin", "clinician", "nurse"}),
    "front_desk.record": frozenset({"admin", "clinician", "nurse"}),
    # vials (lot, expiry, strength) and their labels (patient name, MRN): the care team that prepares vials
    "vial.register": _CARE_TEAM,
    "vial.labels": _CARE_TEAM,
    "research.read": frozenset({"admin", "clinician", "researcher"}),  # de-identified only
    "user.admin": frozenset({"admin"}),
}


def allowed(role: str | None, permission: str) -> bool:
    """Whether ``role`` (None = anonymous) may use a route guarded by ``permission``."""
    if permission == PUBLIC:
        return True
    return role is not None and role in PERMISSIONS[permission]


@dataclass
class Session:
    """What the signed cookie carries: user id (None = anonymous), CSRF token, password-hash fingerprint."""

    csrf: str
    user_id: int | None = None
    fingerprint: str | None = None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), str(given).encode())


def hash_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


class SessionCodec:
    """Sign and verify session cookies (itsdangerous, timestamped; max age in seconds)."""

    def __init__(self, secret_key: str, max_age_s: int) -> None:
        self._s = URLSafeTimedSerializer(secret_key, salt="immunoplan.session")
        self.max_age_s = max_age_s

    def dumps(self, session: Session) -> str:
        return self._s.dumps({"c": session.csrf, "u": session.user_id, "f": session.fingerprint})

    def loads(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data: Any = self._s.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        uid = data.get("u")
        return Session(
            csrf=data["c"], user_id=uid if isinstance(uid, int) else None, fingerprint=data.get("f")
        )


class LoginRateLimiter:
    """At most ``max_failures`` failed logins per key (user name, client address) in a sliding window.

    ``clock`` is injectable so tests never sleep.
    """

    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        cutoff = self.clock() - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.max_failures for k in keys)

    MAX_KEYS = 10_000  # memory bound: forget expired keys when this many are tracked

    def failure(self, *keys: str) -> None:
        now = self.clock()
        if len(self._failures) > self.MAX_KEYS:
            for k in list(self._failures):
                if not self._recent(k):
                    del self._failures[k]
        for k in keys:
            self._recent(k).append(now)

    def success(self, *keys: str) -> None:
        for k in keys:
            self._failures.pop(k, None)

    def retry_after_s(self, *keys: str) -> int:
        waits = [self._recent(k)[0] + self.window_s - self.clock() for k in keys if self._recent(k)]
        return max(1, int(max(waits, default=1)) + 1)
