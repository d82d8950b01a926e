"""The server's configuration, read from the environment once at start-up."""

import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from persistence.config import DatabaseSettings

# Where `make install` puts GraphiQL's browser bundles (graph/server/graphiql/package.json).
DEFAULT_GRAPHIQL_ASSETS = (
    Path(__file__).resolve().parent.parent / "server" / "graphiql" / "node_modules"
)


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name} must be 1 or 0, got {raw!r}")


def _whole(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")
    return value


def _seconds(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"{name} must be more than 0, got {raw}")
    return value


def _origins(env: dict[str, str], name: str) -> tuple[str, ...]:
    return tuple(o.strip().rstrip("/") for o in env.get(name, "").split(",") if o.strip())


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Everything `create_app` needs; each field names its environment variable."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    # SONGBOOK_GRAPHIQL=0 turns the in-browser IDE off (GET /graphql then only runs queries).
    graphiql: bool = True
    # SONGBOOK_GRAPHIQL_ASSETS: a node_modules holding graphiql, react and react-dom; when
    # they are missing the page loads them from the public CDN instead.
    graphiql_assets: Path = DEFAULT_GRAPHIQL_ASSETS
    # SONGBOOK_CORS_ORIGINS: comma-separated origins whose pages may call the API (HTTP and
    # WebSocket); none by default, "*" for any.
    cors_origins: tuple[str, ...] = ()
    # SONGBOOK_TRUSTED_DOCUMENTS: a manifest of hash -> document; when set, only those run.
    trusted_documents: Path | None = None
    # SONGBOOK_APQ_MAX_DOCUMENTS: how many automatic persisted queries the shared store
    # keeps (least recently used go first); 0 turns registration off.
    apq_max_documents: int = 10_000
    # SONGBOOK_APQ_CACHE_SIZE: documents each process keeps in memory in front of the store.
    apq_cache_size: int = 1_000
    # SONGBOOK_JOB_LEASE_SECONDS: how long a worker holds a claimed job without reporting;
    # past it, another worker may claim the job.
    job_lease_seconds: float = 60.0
    # SONGBOOK_SUBSCRIBER_QUEUE: job events a subscriber may leave unread before it is
    # dropped (and told), so that it never holds up the others.
    subscriber_queue: int = 256

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "AppSettings":
        env = dict(os.environ if environ is None else environ)
        trusted = env.get("SONGBOOK_TRUSTED_DOCUMENTS", "").strip()
        assets = env.get("SONGBOOK_GRAPHIQL_ASSETS", "").strip()
        return cls(
            database=DatabaseSettings.from_env(env),
            graphiql=_flag(env, "SONGBOOK_GRAPHIQL", True),
            graphiql_assets=Path(assets) if assets else DEFAULT_GRAPHIQL_ASSETS,
            cors_origins=_origins(env, "SONGBOOK_CORS_ORIGINS"),
            trusted_documents=Path(trusted) if trusted else None,
            apq_max_documents=_whole(env, "SONGBOOK_APQ_MAX_DOCUMENTS", 10_000),
            apq_cache_size=_whole(env, "SONGBOOK_APQ_CACHE_SIZE", 1_000),
            job_lease_seconds=_seconds(env, "SONGBOOK_JOB_LEASE_SECONDS", 60.0),
            subscriber_queue=max(1, _whole(env, "SONGBOOK_SUBSCRIBER_QUEUE", 256)),
        )

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)
