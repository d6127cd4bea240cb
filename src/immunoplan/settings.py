"""Runtime settings (pydantic-settings): where the registry lives.

Environment variables:

- ``IMMUNOPLAN_DATABASE_URL``: a SQLAlchemy URL (``postgresql+psycopg://user@host:5432/db`` or ``sqlite:///...``);
  wins over the path.
- ``IMMUNOPLAN_TIMEZONE``: the clinic's IANA time zone (default the server's zone); see `immunoplan.clock`.
- ``IMMUNOPLAN_DB``: path of the SQLite registry file (default ``$XDG_DATA_HOME/immunoplan/registry.sqlite``,
  i.e. ``~/.local/share/immunoplan/registry.sqlite``).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_db() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "immunoplan" / "registry.sqlite"


class Settings(BaseSettings):
    """Registry location; read from the environment each time `get_settings()` is called."""

    model_config = SettingsConfigDict(env_prefix="IMMUNOPLAN_", extra="ignore")

    db: Path = Field(default_factory=_default_db, description="SQLite registry file (IMMUNOPLAN_DB)")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL (IMMUNOPLAN_DATABASE_URL)")

    def registry_url(self) -> str:
        """The URL to open: ``database_url`` if set, else the SQLite file ``db``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.db}"


def get_settings() -> Settings:
    return Settings()
