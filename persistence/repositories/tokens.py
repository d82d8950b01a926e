"""API tokens: bearer tokens for programs, known here only by their SHA-256."""

import hashlib
import secrets
from collections.abc import Sequence

import sqlalchemy as sa

from persistence.database import constraint_name
from persistence.errors import Conflict
from persistence.models import ApiToken, utcnow
from persistence.repositories.base import Repository
from persistence.validation import clean_token_name, clean_token_role

# Every token starts so: secret scanners and people can tell a Songbook token on sight.
TOKEN_PREFIX = "sbk_"
# The unique index that keeps active tokens' names apart (persistence/models.py).
ACTIVE_NAME = "uq_api_tokens_name_active"
# A token of ours is the prefix and 43 characters; anything much longer is not one.
_LONGEST_TOKEN = 128


def secret_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, in hex.

    A token holds 256 random bits, so a plain (unsalted, fast) hash cannot be reversed by
    guessing, and it lets a token be found by an index lookup.
    """
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenRepository(Repository[ApiToken]):
    model = ApiToken

    # The base class's create takes any columns; a token is made only from a name and a
    # role, and the caller needs the secret back, so this one narrows and returns both.
    async def create(  # type: ignore[override]
        self, *, name: str, role: str
    ) -> tuple[ApiToken, str]:
        """A new active token and its secret: the only time the secret exists anywhere.

        A name an active token already has is a Conflict; a bad name or role a
        ValidationError.
        """
        name = clean_token_name(name)
        token_role = clean_token_role(role)
        taken = Conflict(ACTIVE_NAME, f"an active API token is already named {name}")
        active = sa.select(ApiToken.id).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
        if (await self.session.execute(active)).first() is not None:
            raise taken
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(name=name, role=token_role, secret_hash=secret_hash(token))
        self.session.add(row)
        try:
            await self.session.flush()
        except sa.exc.IntegrityError as error:
            # Another process made a token of this name since the check above.
            if constraint_name(error) == ACTIVE_NAME:
                raise taken from error
            raise
        return row, token

    async def active_by_secret(self, token: str) -> ApiToken | None:
        """The unrevoked token whose secret this is, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _LONGEST_TOKEN:
            return None  # not one of ours: no need to ask the database
        return await self.active_by_hash(secret_hash(token))

    async def active_by_hash(self, hashed: str) -> ApiToken | None:
        """The unrevoked token whose secret has this `secret_hash`, or None."""
        statement = sa.select(ApiToken).where(
            ApiToken.secret_hash == hashed, ApiToken.revoked_at.is_(None)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def all(self) -> Sequence[ApiToken]:
        """Every token, revoked ones included, oldest first."""
        statement = sa.select(ApiToken).order_by(ApiToken.created_at, ApiToken.name, ApiToken.id)
        return (await self.session.scalars(statement)).all()

    async def revoke(self, name: str) -> bool:
        """Revoke the active token of this name; False when there is none."""
        statement = (
            sa.update(ApiToken)
            .where(ApiToken.name == name.strip(), ApiToken.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))
