"""Callers for tests: API tokens issued the way `songbook token create` issues them, and JWTs
signed the way an identity provider signs them."""

import time
import uuid
from typing import Any

import jwt

from persistence.database import Database
from persistence.repositories import ApiTokenRepository
from persistence.settings import DatabaseSettings

JWT_SECRET = "songbook-tests-hs256-secret-of-32-bytes!"


async def issue_token(db: Database | str, role: str, name: str | None = None) -> str:
    """A new API token of `role` on the database `db` (a handle or a URL)."""
    handle = Database(DatabaseSettings(url=db)) if isinstance(db, str) else db
    try:
        async with handle.transaction() as session:
            _, token = await ApiTokenRepository(session).create(
                name=name or f"{role}-{uuid.uuid4().hex[:8]}", role=role
            )
    finally:
        if isinstance(db, str):
            await handle.dispose()
    return token


def signed_jwt(
    subject: str, *, secret: str = JWT_SECRET, lifetime: float = 300, **claims: Any
) -> str:
    """An HS256 JWT for `subject`, valid for `lifetime` seconds."""
    now = int(time.time())
    payload = {"sub": subject, "iat": now, "exp": now + lifetime, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
