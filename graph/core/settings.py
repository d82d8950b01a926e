"""The server's settings: every variable Songbook reads, with its default, in one place.

Read once at start-up (`Settings.load()` in create_app and the CLI) and handed to each
request through its context.
"""

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from persistence.settings import DatabaseSettings, EnvironmentSettings, env

# Where `make install` puts GraphiQL's browser bundles (graph/server/graphiql/package.json).
DEFAULT_GRAPHIQL_ASSETS = (
    Path(__file__).resolve().parent.parent / "server" / "graphiql" / "node_modules"
)


class Settings(EnvironmentSettings):
    """Everything `create_app` needs; each field names its environment variable."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    graphiql: bool = env(
        "SONGBOOK_GRAPHIQL",
        "Serve GraphiQL to browsers at /graphql (off: GET /graphql only runs queries).",
        True,
    )
    graphiql_assets: Path = env(
        "SONGBOOK_GRAPHIQL_ASSETS",
        "A node_modules holding graphiql, react and react-dom; without them the page loads "
        "the same pinned versions from the public CDN.",
        DEFAULT_GRAPHIQL_ASSETS,
    )
    cors_origins: Annotated[tuple[str, ...], NoDecode] = env(
        "SONGBOOK_CORS_ORIGINS",
        "Comma-separated origins whose pages may call the API over HTTP and WebSocket "
        "(`*` for any); none by default.",
        (),
    )
    trusted_documents: Path | None = env(
        "SONGBOOK_TRUSTED_DOCUMENTS",
        "A manifest of trusted documents (hash -> document); when set, only those run.",
        None,
    )
    apq_max_documents: int = env(
        "SONGBOOK_APQ_MAX_DOCUMENTS",
        "Automatic persisted queries kept in the shared store, least recently used going "
        "first; 0 registers none.",
        10_000,
        ge=0,
    )
    apq_cache_size: int = env(
        "SONGBOOK_APQ_CACHE_SIZE",
        "Persisted queries each process keeps in memory in front of the store.",
        1_000,
        ge=0,
    )
    job_lease_seconds: float = env(
        "SONGBOOK_JOB_LEASE_SECONDS",
        "How long a worker holds a claimed job without reporting; past it, another worker "
        "may claim the job.",
        60.0,
        gt=0,
    )
    subscriber_queue: int = env(
        "SONGBOOK_SUBSCRIBER_QUEUE",
        "Job events a subscriber may leave unread before it is ended, so it never holds up "
        "the others.",
        256,
        ge=1,
    )

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)
