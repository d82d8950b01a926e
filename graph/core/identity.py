"""Who is asking: the caller's role and, where they have one, their user or worker name.

Every request carries one Identity, decided by graph/server/auth.py from its bearer token
(or, without one, the anonymous role the settings give).
"""

import enum
from dataclasses import dataclass, field


class Role(enum.StrEnum):
    """What a caller may do. `none` may do nothing; each other role may run every query and
    subscription, and more as listed."""

    NONE = "none"
    READER = "reader"
    # reader, plus the song mutations and retryJob
    EDITOR = "editor"
    # reader, plus claiming jobs and reporting on the jobs it holds, as itself
    WORKER = "worker"
    # everything, user management and updateJob included
    ADMIN = "admin"


class TokenKind(enum.StrEnum):
    ANONYMOUS = "anonymous"
    JWT = "jwt"
    API_TOKEN = "api_token"


@dataclass(frozen=True)
class Identity:
    role: Role
    kind: TokenKind = TokenKind.ANONYMOUS
    # The users row of a person signed in with a JWT; None for API tokens and anonymous.
    user_id: str | None = None
    # A JWT's subject or an API token's name: who the caller is, as a worker.
    name: str | None = None
    # When a JWT stops being valid (seconds since the epoch); None when it does not expire.
    expires_at: float | None = None
    # An API token's SHA-256 (never the token): how the authenticator checks, for a
    # long-lived connection, that the token has not been revoked since.
    secret_hash: str | None = field(default=None, repr=False)

    @classmethod
    def anonymous(cls, role: Role) -> "Identity":
        return cls(role=role)

    @property
    def is_anonymous(self) -> bool:
        return self.kind is TokenKind.ANONYMOUS

    @property
    def worker_id(self) -> str | None:
        """The worker this caller acts as: an API token's name, or `jwt:` and a JWT's
        subject. Token names hold no colon, so a person's subject can never pass for a
        token's worker (and take over the jobs it holds)."""
        if self.name is None:
            return None
        return f"jwt:{self.name}" if self.kind is TokenKind.JWT else self.name


class Unauthenticated(Exception):
    """A bearer token that is malformed, expired, revoked or not ours. Its message is safe to
    show the client and never repeats the token."""

    def __init__(self, message: str = "The bearer token is not valid") -> None:
        super().__init__(message)
        self.message = message
