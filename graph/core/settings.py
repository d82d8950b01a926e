"""The server's settings: every variable Songbook reads, with its default, in one place.

Read once at start-up (`Settings.load()` in create_app and the CLI) and handed to each
request through its context.
"""

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from graph.core.identity import Role
from persistence.settings import DatabaseSettings, EnvironmentSettings, SettingsError, env

# Where `make install` puts GraphiQL's browser bundles (graph/server/graphiql/package.json).
DEFAULT_GRAPHIQL_ASSETS = (
    Path(__file__).resolve().parent.parent / "server" / "graphiql" / "node_modules"
)


# The roles a request without a token may be given.
ANONYMOUS_ROLES = (Role.NONE, Role.READER, Role.EDITOR)


class Settings(EnvironmentSettings):
    """Everything `create_app` needs; each field names its environment variable."""

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    environment: Literal["development", "production"] = env(
        "SONGBOOK_ENV",
        "`production` turns introspection, GraphiQL and error suggestions off, makes "
        "anonymous callers readers, and refuses an unsafe configuration at start-up.",
        "development",
    )
    anonymous: Role | None = env(
        "SONGBOOK_ANONYMOUS",
        "The role of requests without a token: `none`, `reader` or `editor` (default: "
        "`editor` in development, `reader` in production).",
        None,
    )
    jwt_secret: SecretStr | None = env(
        "SONGBOOK_JWT_SECRET",
        "Verify JWTs signed with this HS256 secret (at least 32 bytes).",
        None,
    )
    jwt_jwks_url: str | None = env(
        "SONGBOOK_JWT_JWKS_URL",
        "Verify RS256/ES256 JWTs with the identity provider's keys at this URL (cached).",
        None,
    )
    jwt_issuer: str | None = env("SONGBOOK_JWT_ISSUER", "A JWT's `iss` must be this.", None)
    jwt_audience: str | None = env(
        "SONGBOOK_JWT_AUDIENCE", "A JWT's `aud` must include this.", None
    )
    token_cache_seconds: float = env(
        "SONGBOOK_TOKEN_CACHE_SECONDS",
        "How long a process trusts an API token it has checked before looking again; a "
        "revocation reaches every request within this time, and every WebSocket within "
        "this and 2 s more.",
        5.0,
        gt=0,
        le=8,
    )
    introspection: bool | None = env(
        "SONGBOOK_INTROSPECTION",
        "Answer introspection queries (default: on in development, off in production).",
        None,
    )
    graphiql: bool | None = env(
        "SONGBOOK_GRAPHIQL",
        "Serve GraphiQL to browsers at /graphql (default: on in development, off in "
        "production; off: GET /graphql only runs queries).",
        None,
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

    max_body_bytes: int = env(
        "SONGBOOK_MAX_BODY_BYTES",
        "The largest request body (and WebSocket message) accepted, in bytes.",
        2 * 1024 * 1024,
        ge=1024,
    )
    max_tokens: int = env(
        "SONGBOOK_MAX_TOKENS", "The most tokens a GraphQL document may hold.", 15_000, ge=100
    )
    max_depth: int = env(
        "SONGBOOK_MAX_DEPTH", "How deeply an operation's fields may nest.", 12, ge=1
    )
    max_aliases: int = env(
        "SONGBOOK_MAX_ALIASES", "The most aliases an operation may use.", 30, ge=0
    )
    max_nodes: int = env(
        "SONGBOOK_MAX_NODES",
        "The most nodes an operation may ask for: along each path the product of the page "
        "sizes (`first`/`last`), summed over the fields.",
        100_000,
        ge=1,
    )
    request_timeout: float = env(
        "SONGBOOK_REQUEST_TIMEOUT",
        "Seconds a request may run before it is ended with the code TIMEOUT.",
        30.0,
        gt=0,
    )
    ws_max_subscriptions: int = env(
        "SONGBOOK_WS_MAX_SUBSCRIPTIONS",
        "The most subscriptions one WebSocket connection may hold open.",
        100,
        ge=1,
    )
    log_format: Literal["json", "text"] | None = env(
        "SONGBOOK_LOG_FORMAT",
        "`json`: one JSON object per log line, with a line per request; `text`: plain lines "
        "(default: json in production, text in development).",
        None,
    )
    slow_statement_ms: float = env(
        "SONGBOOK_SLOW_STATEMENT_MS",
        "Log each statement that takes at least this long (its SQL, never its values).",
        200.0,
        gt=0,
    )
    metrics: bool = env(
        "SONGBOOK_METRICS", "Serve Prometheus metrics at /metrics (off: no such route).", True
    )
    metrics_public: bool = env(
        "SONGBOOK_METRICS_PUBLIC",
        "Serve /metrics without a token in production too (it asks for an admin's there).",
        False,
    )
    metrics_max_operations: int = env(
        "SONGBOOK_METRICS_MAX_OPERATIONS",
        "Distinct operation names kept as metric labels; later ones are counted as `other`.",
        100,
        ge=1,
    )
    compiled: bool = env(
        "SONGBOOK_COMPILED",
        "Answer query operations through the compiled read path (graph/core/planner.py); "
        "off: every operation runs through Strawberry's executor.",
        True,
    )
    shutdown_grace: float = env(
        "SONGBOOK_SHUTDOWN_GRACE",
        "Seconds in-flight requests may take to finish after SIGTERM.",
        30.0,
        ge=0,
    )

    @model_validator(mode="after")
    def _safe_in_production(self) -> "Settings":
        if self.jwt_secret is not None and self.jwt_jwks_url is not None:
            raise SettingsError("set SONGBOOK_JWT_SECRET or SONGBOOK_JWT_JWKS_URL, not both")
        if self.jwt_secret is not None and len(self.jwt_secret.get_secret_value().encode()) < 32:
            # PyJWT refuses shorter HS256 keys (RFC 7518: at least the hash's 256 bits).
            raise SettingsError("SONGBOOK_JWT_SECRET must be at least 32 bytes long")
        if (self.jwt_issuer or self.jwt_audience) and not self.jwt_configured:
            raise SettingsError(
                "SONGBOOK_JWT_ISSUER or SONGBOOK_JWT_AUDIENCE is set but no key is: set "
                "SONGBOOK_JWT_SECRET or SONGBOOK_JWT_JWKS_URL"
            )
        if self.production and self.anonymous_role is Role.EDITOR:
            raise SettingsError(
                "SONGBOOK_ANONYMOUS=editor lets anyone change the library: not allowed with "
                "SONGBOOK_ENV=production"
            )
        if self.anonymous is not None and self.anonymous not in ANONYMOUS_ROLES:
            raise SettingsError("SONGBOOK_ANONYMOUS must be none, reader or editor")
        return self

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @property
    def anonymous_role(self) -> Role:
        if self.anonymous is not None:
            return self.anonymous
        return Role.READER if self.production else Role.EDITOR

    @property
    def logs_as_json(self) -> bool:
        return self.log_format == "json" if self.log_format is not None else self.production

    @property
    def introspection_on(self) -> bool:
        return self.introspection if self.introspection is not None else not self.production

    @property
    def graphiql_on(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.production

    @property
    def suggestions_on(self) -> bool:
        """Whether errors may suggest names ("Did you mean ...?"): development only."""
        return not self.production

    @property
    def jwt_configured(self) -> bool:
        return self.jwt_secret is not None or self.jwt_jwks_url is not None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @property
    def job_lease(self) -> timedelta:
        return timedelta(seconds=self.job_lease_seconds)
