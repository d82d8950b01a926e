"""Who is asking: a request's `Authorization` header turned into an Identity.

No header: the anonymous role the settings give. `Bearer <JWT>`: a person, verified with
the configured secret or the identity provider's keys and tied to a users row by its
subject. `Bearer sbk_...`: an API token, known by its SHA-256. Anything else is refused
with Unauthenticated, whose message never repeats the token.

Checking a token costs no database round trip on most requests: a process trusts what it
has looked up for `SONGBOOK_TOKEN_CACHE_SECONDS` (a revocation reaches it within that),
and remembers which user each JWT subject is.
"""

import asyncio
import time
from typing import Any

import jwt
from cachetools import LRUCache, TTLCache

from graph.core.identity import Identity, Role, TokenKind, Unauthenticated
from graph.core.settings import Settings
from graph.server.jwks import JWKS_ALGORITHMS, SigningKeys
from persistence.database import Database
from persistence.models import TokenRole
from persistence.repositories import ApiTokenRepository, UserRepository
from persistence.repositories.tokens import TOKEN_PREFIX, secret_hash

# How far past its `exp` a JWT is still taken: clocks differ a little between machines.
JWT_LEEWAY_SECONDS = 5
# The claim that carries a JWT's role; without it the caller is a reader.
ROLE_CLAIM = "songbook_role"
# Entries each process's caches hold, each at most a few hundred bytes.
CACHE_SIZE = 10_000
# No token of ours (an API token is 47 characters) or of a sane provider is longer.
LONGEST_TOKEN = 8_192
# OpenID Connect's longest subject, and the users.subject column's length.
LONGEST_SUBJECT = 255

TOKEN_ROLES = {role.value: Role(role.value) for role in TokenRole}


class Authenticator:
    """One per process: decides each request's Identity from its Authorization header."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self._secret = (
            settings.jwt_secret.get_secret_value().encode() if settings.jwt_secret else None
        )
        self._signing_keys = SigningKeys(settings.jwt_jwks_url) if settings.jwt_jwks_url else None
        # secret_hash -> the Identity it grants. Refusals are kept apart, so a flood of
        # made-up tokens can push out only other refusals, never a valid token.
        self._granted: TTLCache[str, Identity] = TTLCache(CACHE_SIZE, settings.token_cache_seconds)
        self._refused: TTLCache[str, bool] = TTLCache(CACHE_SIZE, settings.token_cache_seconds)
        # One database lookup per token at a time: requests arriving meanwhile share it.
        self._lookups: dict[str, asyncio.Future[Identity | None]] = {}
        # JWT subject -> users.id, with no expiry: a subject keeps its row, and nothing
        # deletes users (a deleteUser would have to reach every process's copy of this).
        self._users: LRUCache[str, str] = LRUCache(CACHE_SIZE)

    async def identify(self, authorization: str | None) -> Identity:
        """The caller's Identity, or Unauthenticated for a header that does not prove one.

        DatabaseUnavailable passes through when a token needs looking up and cannot be.
        """
        if authorization is None or not authorization.strip():
            return Identity.anonymous(self.settings.anonymous_role)
        scheme, _, credentials = authorization.strip().partition(" ")
        token = credentials.strip()
        if scheme.lower() != "bearer" or not token or any(c.isspace() for c in token):
            raise Unauthenticated("Send a token as the header `Authorization: Bearer <token>`")
        if len(token) > LONGEST_TOKEN:
            raise Unauthenticated()
        if token.count(".") == 2:
            return await self._identify_jwt(token)
        return await self._identify_api_token(token)

    async def still_valid(self, identity: Identity) -> bool:
        """Whether an Identity decided earlier (for a long-lived WebSocket) still holds: a
        JWT until its `exp`, an API token until it is revoked (noticed within the token
        cache's time). DatabaseUnavailable passes through when the token cannot be checked.
        """
        if identity.kind is TokenKind.JWT:
            expires_at = identity.expires_at
            return expires_at is None or time.time() < expires_at + JWT_LEEWAY_SECONDS
        if identity.kind is TokenKind.API_TOKEN:
            if identity.secret_hash is None:
                return False
            return await self._api_token(identity.secret_hash) is not None
        return True

    # API tokens

    async def _identify_api_token(self, token: str) -> Identity:
        identity = None
        if token.startswith(TOKEN_PREFIX):
            identity = await self._api_token(secret_hash(token))
        if identity is None:
            raise Unauthenticated("The API token is not valid, or has been revoked")
        return identity

    async def _api_token(self, hashed: str) -> Identity | None:
        granted = self._granted.get(hashed)
        if granted is not None:
            return granted
        if self._refused.get(hashed):
            return None
        lookup = self._lookups.get(hashed)
        if lookup is None:
            lookup = asyncio.ensure_future(self._look_up_api_token(hashed))
            self._lookups[hashed] = lookup
            lookup.add_done_callback(lambda _: self._lookups.pop(hashed, None))
        # Shielded: a request that goes away does not cancel the others' lookup.
        return await asyncio.shield(lookup)

    async def _look_up_api_token(self, hashed: str) -> Identity | None:
        async with self.db.read() as session:
            row = await ApiTokenRepository(session).active_by_hash(hashed)
        if row is None:
            self._refused[hashed] = True
            return None
        identity = Identity(
            role=Role(row.role.value),
            kind=TokenKind.API_TOKEN,
            name=row.name,
            secret_hash=hashed,
        )
        self._granted[hashed] = identity
        return identity

    # JWTs

    async def _identify_jwt(self, token: str) -> Identity:
        claims = await self._verified_claims(token)
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= LONGEST_SUBJECT:
            raise Unauthenticated("The token's subject (sub) is not valid")
        claimed = claims.get(ROLE_CLAIM, TokenRole.READER.value)
        role = TOKEN_ROLES.get(claimed) if isinstance(claimed, str) else None
        if role is None:
            raise Unauthenticated(
                f"The token's {ROLE_CLAIM} is not one of {', '.join(TOKEN_ROLES)}"
            )
        preferred = claims.get("preferred_username")
        user_id = await self._user_id(subject, preferred if isinstance(preferred, str) else None)
        return Identity(
            role=role,
            kind=TokenKind.JWT,
            user_id=user_id,
            name=subject,
            expires_at=float(claims["exp"]),
        )

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        key: Any
        if self._secret is not None:
            key, algorithms = self._secret, ["HS256"]
        elif self._signing_keys is not None:
            try:
                header = jwt.get_unverified_header(token)
            except jwt.PyJWTError:
                raise Unauthenticated() from None
            algorithm, kid = header.get("alg"), header.get("kid")
            if algorithm not in JWKS_ALGORITHMS or not isinstance(kid, str | None):
                raise Unauthenticated()
            key = await self._signing_keys.key(kid)
            if key is None:
                raise Unauthenticated("The token is signed with a key this server does not know")
            algorithms = [algorithm]
        else:
            raise Unauthenticated("This server does not accept JWTs")
        audience = self.settings.jwt_audience
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=self.settings.jwt_issuer,
                audience=audience,
                leeway=JWT_LEEWAY_SECONDS,
                options={
                    "require": ["exp", "sub"],
                    # Without a configured audience a token's `aud` is not ours to judge.
                    "verify_aud": audience is not None,
                    # A weak key is refused rather than warned about on every request.
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("The token has expired") from None
        except jwt.PyJWTError:
            raise Unauthenticated() from None
        return claims

    async def _user_id(self, subject: str, preferred_username: str | None) -> str:
        user_id = self._users.get(subject)
        if user_id is not None:
            return user_id
        async with self.db.read() as session:
            user = await UserRepository(session).get_by_subject(subject)
        if user is None:
            async with self.db.transaction() as session:
                user = await UserRepository(session).for_subject(subject, preferred_username)
        self._users[subject] = user.id
        return user.id
