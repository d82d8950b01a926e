"""Configuration from the environment, read once at start-up through pydantic-settings.

Each setting names its environment variable and documents its default beside it. One
rule for every switch: `on`/`off`, `1`/`0`, `true`/`false` and `yes`/`no` (pydantic's
boolean parsing); an empty variable counts as unset.
"""

from typing import Annotated, Any, Self

import pydantic
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./songbook.db"


class SettingsError(ValueError):
    """A variable that does not parse; the message names it and never repeats its value,
    which may be a secret."""


def env(name: str, description: str, default: Any = ..., **constraints: Any) -> Any:
    """A setting read from the variable `name` (also settable by its field name in code)."""
    return Field(
        default,
        validation_alias=AliasChoices(name),
        description=description,
        **constraints,
    )


_EXPECTED = {
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "bool_parsing": "must be on or off (1/0, true/false, yes/no)",
    "greater_than_equal": "must be at least {ge:g}",
    "greater_than": "must be more than {gt:g}",
}


def _explain(error: pydantic.ValidationError) -> str:
    problems = []
    for detail in error.errors(include_input=False):
        if detail["type"] == "value_error":
            # A rule across settings (a model validator): its message says it all.
            problems.append(str(detail.get("ctx", {}).get("error", detail["msg"])))
            continue
        name = ".".join(str(part) for part in detail["loc"]) or error.title
        template = _EXPECTED.get(detail["type"])
        expected = template.format(**detail.get("ctx", {})) if template else detail["msg"]
        problems.append(f"{name} {expected}")
    return "; ".join(problems)


class EnvironmentSettings(BaseSettings):
    """Settings read from the environment on construction; values given in code win."""

    model_config = SettingsConfigDict(
        case_sensitive=True,
        env_ignore_empty=True,
        extra="ignore",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
    )

    @classmethod
    def load(cls, **overrides: Any) -> Self:
        """The settings the environment gives, or a SettingsError naming what is wrong."""
        try:
            return cls(**overrides)
        except pydantic.ValidationError as error:
            raise SettingsError(_explain(error)) from None


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


class DatabaseSettings(EnvironmentSettings):
    """How to reach the database; the pool settings apply to PostgreSQL only."""

    url: str = env(
        "DATABASE_URL",
        "The database; `postgresql://user@host/db` picks asyncpg, `sqlite:///path` aiosqlite.",
        DEFAULT_DATABASE_URL,
    )
    pool_size: int = env(
        "SONGBOOK_DB_POOL_SIZE", "PostgreSQL connections kept open per process.", 10, ge=1
    )
    max_overflow: int = env(
        "SONGBOOK_DB_MAX_OVERFLOW", "Extra PostgreSQL connections under load.", 20, ge=0
    )
    pool_recycle: int = env(
        "SONGBOOK_DB_POOL_RECYCLE", "Seconds before a PostgreSQL connection is replaced.", 3600
    )
    pool_pre_ping: bool = env(
        "SONGBOOK_DB_POOL_PRE_PING", "Check a PostgreSQL connection before use.", True
    )
    pool_timeout: float = env(
        "SONGBOOK_DB_POOL_TIMEOUT",
        "Seconds a request waits for a free PostgreSQL connection before it is answered "
        "DATABASE_UNAVAILABLE.",
        5.0,
        gt=0,
    )
    connect_timeout: float = env(
        "SONGBOOK_DB_CONNECT_TIMEOUT",
        "Seconds to wait for PostgreSQL to accept a new connection.",
        3.0,
        gt=0,
    )
    statement_timeout: float = env(
        "SONGBOOK_DB_STATEMENT_TIMEOUT",
        "Seconds PostgreSQL lets one statement run before cancelling it (0: no limit); "
        "keep it under SONGBOOK_REQUEST_TIMEOUT.",
        25.0,
        ge=0,
    )
    sqlite_busy_timeout_ms: int = env(
        "SONGBOOK_SQLITE_BUSY_TIMEOUT_MS",
        "How long a SQLite writer waits for the lock, in milliseconds.",
        5000,
        ge=0,
    )
    echo: bool = env("SONGBOOK_DB_ECHO", "Log every SQL statement.", False)
    read_urls: Annotated[tuple[str, ...], NoDecode] = env(
        "DATABASE_READ_URLS",
        "PostgreSQL streaming replicas of DATABASE_URL, comma-separated: queries read from "
        "them, spread across those that answer and keep up.",
        (),
    )
    replica_max_lag: float = env(
        "SONGBOOK_REPLICA_MAX_LAG_S",
        "Seconds a replica may fall behind the primary before queries skip it.",
        5.0,
        gt=0,
    )
    replica_wait_ms: int = env(
        "SONGBOOK_REPLICA_WAIT_MS",
        "Milliseconds a request sending Songbook-Read-After waits for a replica to replay "
        "that far before it reads from the primary instead.",
        200,
        ge=0,
    )

    @field_validator("url", mode="after")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        return normalize_database_url(url)

    @field_validator("read_urls", mode="before")
    @classmethod
    def _listed(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, list | tuple):
            return tuple(normalize_database_url(url) for url in value if url)
        return value

    @model_validator(mode="after")
    def _replicas_of_postgres(self) -> Self:
        # The message never repeats a URL: it may hold a password.
        if self.read_urls and self.is_sqlite:
            raise ValueError("DATABASE_READ_URLS needs DATABASE_URL to be PostgreSQL")
        if any(not url.startswith("postgresql") for url in self.read_urls):
            raise ValueError("DATABASE_READ_URLS must list PostgreSQL URLs only")
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")
