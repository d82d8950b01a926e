"""The Authenticator: from an Authorization header to an Identity, against a real database,
real JWTs and a real key set served over HTTP."""

import asyncio
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import sqlalchemy as sa

from graph.core.identity import Identity, Role, TokenKind, Unauthenticated
from graph.core.settings import Settings
from graph.server.auth import Authenticator
from graph.server.jwks import SigningKeys
from persistence.database import Database
from persistence.errors import DatabaseUnavailable
from persistence.models import User
from persistence.repositories import ApiTokenRepository
from persistence.settings import DatabaseSettings, SettingsError
from tests.conftest import StatementCounter
from tests.jwks import SigningKey, claims, key_set_server
from tests.live import ROOT

SECRET = "a-test-secret-of-more-than-32-bytes"


def authenticator(db: Database, **settings: Any) -> Authenticator:
    return Authenticator(Settings(**settings), db)


def hs256(token_claims: dict[str, Any], secret: str = SECRET, **header: Any) -> str:
    return jwt.encode(token_claims, secret, algorithm="HS256", headers=header or None)


async def make_token(db: Database, name: str = "ci", role: str = "worker") -> str:
    async with db.transaction() as session:
        _, token = await ApiTokenRepository(session).create(name=name, role=role)
    return token


async def refuses(auth: Authenticator, header: str, complaint: str = "") -> None:
    with pytest.raises(Unauthenticated) as raised:
        await auth.identify(header)
    token = header.partition(" ")[2]
    assert complaint in raised.value.message
    assert not token or token not in raised.value.message
    assert str(raised.value) == raised.value.message


async def users(db: Database) -> list[User]:
    async with db.session() as session:
        return list((await session.scalars(sa.select(User).order_by(User.username))).all())


# No token


@pytest.mark.parametrize("role", [Role.NONE, Role.READER, Role.EDITOR])
async def test_a_request_without_a_token_gets_the_anonymous_role(
    db: Database, statements: StatementCounter, role: Role
) -> None:
    auth = authenticator(db, anonymous=role)
    for header in (None, "", "  "):
        identity = await auth.identify(header)
        assert identity == Identity.anonymous(role) and identity.is_anonymous
        assert await auth.still_valid(identity)
    assert statements.count == 0


async def test_anonymous_callers_read_only_in_production(db: Database) -> None:
    assert (await authenticator(db).identify(None)).role is Role.EDITOR
    production = authenticator(db, environment="production")
    assert (await production.identify(None)).role is Role.READER


@pytest.mark.parametrize(
    "header",
    [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer    ",
        "Token sbk_abc",
        "Bearer sbk_a sbk_b",
        "sbk_abc",
    ],
)
async def test_other_authorization_headers_are_refused(
    db: Database, statements: StatementCounter, header: str
) -> None:
    await refuses(authenticator(db), header)
    assert statements.count == 0


# API tokens


async def test_an_api_token_is_its_name_and_role(db: Database) -> None:
    token = await make_token(db, "worker-3", "worker")
    auth = authenticator(db)
    for scheme in ("Bearer", "bearer", "BEARER"):
        identity = await auth.identify(f"{scheme} {token}")
        assert identity.kind is TokenKind.API_TOKEN and identity.role is Role.WORKER
        assert (identity.name, identity.worker_id) == ("worker-3", "worker-3")
        assert identity.user_id is None and identity.expires_at is None
        assert token not in repr(identity)
        assert await auth.still_valid(identity)
    admin = await make_token(db, "ops", "admin")
    assert (await auth.identify(f"Bearer {admin}")).role is Role.ADMIN


async def test_unknown_tokens_are_refused(db: Database) -> None:
    token = await make_token(db)
    auth = authenticator(db)
    for bogus in ("sbk_" + secrets.token_urlsafe(32), token[:-1], token + "x", "not-ours"):
        await refuses(auth, f"Bearer {bogus}", "not valid")


async def test_a_checked_token_costs_no_database_round_trip(
    db: Database, statements: StatementCounter
) -> None:
    token = await make_token(db)
    bogus = "sbk_" + secrets.token_urlsafe(32)
    auth = authenticator(db, token_cache_seconds=8)
    statements.reset()
    await auth.identify(f"Bearer {token}")
    await refuses(auth, f"Bearer {bogus}")
    assert statements.count == 2
    statements.reset()
    for _ in range(20):
        await auth.identify(f"Bearer {token}")
        await refuses(auth, f"Bearer {bogus}")
    assert statements.count == 0


async def test_simultaneous_requests_share_one_lookup(
    db: Database, statements: StatementCounter
) -> None:
    token = await make_token(db)
    auth = authenticator(db)
    statements.reset()
    identities = await asyncio.gather(*(auth.identify(f"Bearer {token}") for _ in range(20)))
    assert {identity.name for identity in identities} == {"ci"}
    assert statements.count == 1


async def test_a_revocation_reaches_every_process_within_the_cache_time(
    db: Database, migrated_url: str
) -> None:
    token = await make_token(db, "worker-9")
    elsewhere = Database(DatabaseSettings(url=migrated_url))
    try:
        here = authenticator(db, token_cache_seconds=1)
        there = Authenticator(Settings(token_cache_seconds=1), elsewhere)
        identities = [await auth.identify(f"Bearer {token}") for auth in (here, there)]
        revoked = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "graph.server.cli", "token", "revoke", "worker-9"],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "DATABASE_URL": migrated_url},
            capture_output=True,
            timeout=120,
        )
        assert revoked.returncode == 0, revoked.stderr
        await asyncio.sleep(1)
        for auth, identity in zip((here, there), identities, strict=True):
            await refuses(auth, f"Bearer {token}", "revoked")
            assert not await auth.still_valid(identity)
    finally:
        await elsewhere.dispose()


async def test_a_database_that_is_down_is_not_a_refusal() -> None:
    # A closed port rather than a missing SQLite file: aiosqlite's thread can outlive the
    # failed connect and report to this test's event loop after it has closed.
    down = Database(DatabaseSettings(url="postgresql+asyncpg://postgres@127.0.0.1:1/songbook"))
    auth = Authenticator(Settings(), down)
    try:
        for _ in range(2):  # and nothing is remembered of the failure
            with pytest.raises(DatabaseUnavailable):
                await auth.identify("Bearer sbk_" + "a" * 43)
    finally:
        await down.dispose()


# JWTs signed with the shared secret


async def test_a_jwt_is_a_person_with_a_users_row(
    db: Database, statements: StatementCounter
) -> None:
    auth = authenticator(db, jwt_secret=SECRET)
    token_claims = claims("auth0|ada", songbook_role="editor", preferred_username="ada")
    identity = await auth.identify(f"Bearer {hs256(token_claims)}")
    assert identity.kind is TokenKind.JWT and identity.role is Role.EDITOR
    assert identity.name == "auth0|ada"
    assert identity.worker_id == "jwt:auth0|ada"  # never a token's name
    assert identity.expires_at == token_claims["exp"]
    (user,) = await users(db)
    assert (user.id, user.username, user.subject) == (identity.user_id, "ada", "auth0|ada")

    statements.reset()
    again = await auth.identify(f"Bearer {hs256(claims('auth0|ada'))}")
    assert again.user_id == user.id and again.role is Role.READER
    assert statements.count == 0

    # Another process knows the person by the same row.
    elsewhere = authenticator(db, jwt_secret=SECRET)
    assert (await elsewhere.identify(f"Bearer {hs256(token_claims)}")).user_id == user.id
    assert len(await users(db)) == 1


async def test_a_new_person_taking_a_username_in_use_gets_another(db: Database) -> None:
    auth = authenticator(db, jwt_secret=SECRET)
    first = await auth.identify(f"Bearer {hs256(claims('sub-1', preferred_username='sam'))}")
    second = await auth.identify(f"Bearer {hs256(claims('sub-2', preferred_username='sam'))}")
    assert first.user_id != second.user_id
    assert {(u.subject, u.username == "sam") for u in await users(db)} == {
        ("sub-1", True),
        ("sub-2", False),
    }


async def test_many_first_requests_of_a_person_make_one_user(db: Database) -> None:
    auth = authenticator(db, jwt_secret=SECRET)
    header = f"Bearer {hs256(claims('auth0|busy', preferred_username='busy'))}"
    identities = await asyncio.gather(*(auth.identify(header) for _ in range(10)))
    assert len({identity.user_id for identity in identities}) == 1
    assert [user.username for user in await users(db)] == ["busy"]


def _other_secret() -> str:
    return hs256(claims(), "another-secret-also-of-32-bytes-or-more")


def _unsigned() -> str:
    header = jwt.utils.base64url_encode(b'{"alg":"none","typ":"JWT"}').decode()
    payload = jwt.utils.base64url_encode(json.dumps(claims()).encode()).decode()
    return f"{header}.{payload}."


def _tampered() -> str:
    header, _, signature = hs256(claims()).split(".")
    payload = jwt.utils.base64url_encode(b'{"sub":"admin","exp":9999999999}').decode()
    return f"{header}.{payload}.{signature}"


REFUSED_JWTS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: hs256(claims(lifetime=-30)), "expired"),
    "expired beyond the leeway": (lambda: hs256(claims(lifetime=-7)), "expired"),
    "another secret": (_other_secret, "not valid"),
    "tampered": (_tampered, "not valid"),
    "no sub": (lambda: hs256({"exp": int(time.time()) + 60}), "not valid"),
    "empty sub": (lambda: hs256(claims(subject="")), ""),
    "sub too long": (lambda: hs256(claims(subject="x" * 256)), "subject"),
    "no exp": (lambda: hs256({"sub": "x"}), "not valid"),
    "not yet valid": (lambda: hs256(claims(nbf=int(time.time()) + 60)), "not valid"),
    "unknown role": (lambda: hs256(claims(songbook_role="superuser")), "songbook_role"),
    "role none": (lambda: hs256(claims(songbook_role="none")), "songbook_role"),
    "role not a string": (lambda: hs256(claims(songbook_role=["admin"])), "songbook_role"),
    "alg none": (_unsigned, "not valid"),
    "RS256": (lambda: SigningKey.rsa("k1").sign(claims()), "not valid"),
    "HS512": (lambda: jwt.encode(claims(), SECRET * 2, algorithm="HS512"), "not valid"),
}


@pytest.mark.parametrize("case", list(REFUSED_JWTS))
async def test_bad_jwts_are_refused(db: Database, statements: StatementCounter, case: str) -> None:
    make, complaint = REFUSED_JWTS[case]
    await refuses(authenticator(db, jwt_secret=SECRET), f"Bearer {make()}", complaint)
    assert statements.count == 0 and await users(db) == []


async def test_a_jwt_just_past_its_expiry_is_taken_then_its_connection_ends(
    db: Database,
) -> None:
    auth = authenticator(db, jwt_secret=SECRET)
    identity = await auth.identify(f"Bearer {hs256(claims(lifetime=-3))}")
    assert await auth.still_valid(identity)
    await asyncio.sleep(2.1)
    assert not await auth.still_valid(identity)
    fresh = Identity(Role.READER, TokenKind.JWT, name="x", expires_at=time.time() + 60)
    assert await auth.still_valid(fresh)


async def test_issuer_and_audience_are_checked_when_set(db: Database) -> None:
    auth = authenticator(
        db, jwt_secret=SECRET, jwt_issuer="https://id.example/", jwt_audience="songbook"
    )
    issuer = "https://id.example/"
    for accepted in (claims(iss=issuer, aud="songbook"), claims(iss=issuer, aud=["x", "songbook"])):
        assert (await auth.identify(f"Bearer {hs256(accepted)}")).kind is TokenKind.JWT
    for refused_claims in (
        claims(aud="songbook"),
        claims(iss="https://evil.example/", aud="songbook"),
        claims(iss=issuer),
        claims(iss=issuer, aud="another-api"),
    ):
        await refuses(auth, f"Bearer {hs256(refused_claims)}", "not valid")
    # Without an audience configured, a token's aud is not judged.
    lenient = authenticator(db, jwt_secret=SECRET)
    assert (await lenient.identify(f"Bearer {hs256(claims(aud='any'))}")).role is Role.READER


async def test_jwts_are_refused_when_no_key_is_configured(db: Database) -> None:
    await refuses(authenticator(db), f"Bearer {hs256(claims())}", "does not accept JWTs")


def test_a_short_secret_is_refused_at_start_up() -> None:
    with pytest.raises(SettingsError, match="SONGBOOK_JWT_SECRET must be at least 32 bytes"):
        Settings.load(jwt_secret="short")


# JWTs signed with the identity provider's keys


async def test_rs256_and_es256_jwts_verified_with_the_key_set(db: Database) -> None:
    rsa_key, ec_key = SigningKey.rsa("rsa-1"), SigningKey.ec("ec-1")
    with key_set_server(rsa_key, ec_key) as server:
        auth = authenticator(db, jwt_jwks_url=server.url, jwt_audience="songbook")
        for key in (rsa_key, ec_key):
            signed = key.sign(claims(f"sub-{key.kid}", aud="songbook", songbook_role="worker"))
            identity = await auth.identify(f"Bearer {signed}")
            assert identity.role is Role.WORKER and identity.name == f"sub-{key.kid}"
        assert server.fetches == 1

        impostor = SigningKey.rsa("rsa-1")  # the same kid, another key
        for bad in (
            impostor.sign(claims(aud="songbook")),
            rsa_key.sign(claims(aud="songbook", lifetime=-30)),
            rsa_key.sign(claims(aud="elsewhere")),
            # ES256 claimed for the RSA key, and the RSA public key used as an HMAC secret
            SigningKey("rsa-1", "ES256", ec_key.private).sign(claims(aud="songbook")),
            hs256(claims(aud="songbook"), kid="rsa-1"),
            # two keys are served: a token must say which
            jwt.encode(claims(aud="songbook"), rsa_key.private, algorithm="RS256"),
        ):
            await refuses(auth, f"Bearer {bad}")
        # None of these named an unknown kid; the last named none, worth one look.
        assert server.fetches == 2


async def test_a_rotated_key_is_fetched_when_first_seen_and_made_up_kids_are_not(
    db: Database,
) -> None:
    old, new, rogue = SigningKey.rsa("2026-01"), SigningKey.ec("2026-02"), SigningKey.ec("x")
    with key_set_server(old) as server:
        auth = authenticator(db, jwt_jwks_url=server.url)
        await auth.identify(f"Bearer {old.sign(claims('sub-old'))}")
        assert server.fetches == 1

        server.keys = [old, new]
        identity = await auth.identify(f"Bearer {new.sign(claims('sub-new'))}")
        assert identity.name == "sub-new" and server.fetches == 2

        for i in range(20):
            await refuses(auth, f"Bearer {rogue.sign(claims(), kid=f'made-up-{i}')}", "key")
        assert server.fetches == 2
        await auth.identify(f"Bearer {old.sign(claims('sub-old'))}")
        assert server.fetches == 2


async def test_a_cold_key_set_is_fetched_once_for_many_requests(db: Database) -> None:
    key = SigningKey.ec("only")
    with key_set_server(key) as server:
        auth = authenticator(db, jwt_jwks_url=server.url)
        headers = [f"Bearer {key.sign(claims(f'sub-{i}'))}" for i in range(10)]
        identities = await asyncio.gather(*(auth.identify(h) for h in headers))
        assert len({identity.user_id for identity in identities}) == 10
        assert server.fetches == 1
        # With one key served, a token without a kid may use it.
        no_kid = jwt.encode(claims("sub-0"), key.private, algorithm="ES256")
        assert (await auth.identify(f"Bearer {no_kid}")).user_id == identities[0].user_id


async def test_keys_are_refreshed_when_old_and_kept_when_the_provider_is_down() -> None:
    key = SigningKey.rsa("k1")
    with key_set_server(key) as server:
        keys = SigningKeys(server.url, max_age=0.2, cooldown=0.2)
        assert await keys.key("k1") is not None and server.fetches == 1
        assert await keys.key("unknown-1") is None and server.fetches == 2
        assert await keys.key("unknown-2") is None and server.fetches == 2
        await asyncio.sleep(0.25)
        assert await keys.key("unknown-3") is None and server.fetches == 3
        await asyncio.sleep(0.25)
        assert await keys.key("k1") is not None and server.fetches == 4
    await asyncio.sleep(0.25)
    # The provider is gone: the keys already held still verify tokens.
    assert await keys.key("k1") is not None
