"""Web application settings (environment variables ``IMMUNOPLAN_*`` or arguments to `create_app`)."""

from __future__ import annotations

import secrets

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _random_key() -> str:
    return secrets.token_urlsafe(32)


class WebSettings(BaseSettings):
    """Operational settings; none of them is a clinical number."""

    model_config = SettingsConfigDict(env_prefix="IMMUNOPLAN_", extra="ignore")

    db: str = Field(default="var/immunoplan.sqlite", description="registry: SQLite path or SQLAlchemy URL")
    secret_key: str = Field(default_factory=_random_key, description="cookie signing key (random if unset)")
    session_max_age_s: int = Field(default=8 * 3600, ge=60, description="session lifetime (one clinic day)")
    cookie_secure: bool = Field(default=False, description="send cookies only over HTTPS (set behind TLS)")
    login_max_failures: int = Field(
        default=5, ge=1, description="failed logins allowed per user/address/window"
    )
    login_window_s: int = Field(default=15 * 60, ge=1, description="login rate-limit window")
    fast_password_hashing: bool = Field(default=False, description="minimal argon2 cost: tests only")
