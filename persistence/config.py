"""Configuration read from the environment."""

import os
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./songbook.db"


def _int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def normalize_database_url(url: str) -> str:
    """Pick the async driver when the URL names only the database."""
    for plain, async_scheme in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return async_scheme + url[len(plain) :]
    return url


@dataclass(frozen=True, slots=True)
class DatabaseSettings:
    """How to reach the database; PostgreSQL pool settings are ignored for SQLite."""

    url: str = DEFAULT_DATABASE_URL
    pool_size: int = 10
    max_overflow: int = 20
    pool_recycle: int = 3600
    pool_pre_ping: bool = True
    sqlite_busy_timeout_ms: int = 5000
    echo: bool = False

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "DatabaseSettings":
        env = dict(os.environ if environ is None else environ)
        return cls(
            url=normalize_database_url(env.get("DATABASE_URL") or DEFAULT_DATABASE_URL),
            pool_size=_int(env, "SONGBOOK_DB_POOL_SIZE", 10),
            max_overflow=_int(env, "SONGBOOK_DB_MAX_OVERFLOW", 20),
            pool_recycle=_int(env, "SONGBOOK_DB_POOL_RECYCLE", 3600),
            pool_pre_ping=env.get("SONGBOOK_DB_POOL_PRE_PING", "1") not in ("0", "false"),
            sqlite_busy_timeout_ms=_int(env, "SONGBOOK_SQLITE_BUSY_TIMEOUT_MS", 5000),
            echo=env.get("SONGBOOK_DB_ECHO", "") in ("1", "true"),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")
