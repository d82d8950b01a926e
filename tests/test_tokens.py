"""API tokens as they are stored and as `songbook token` makes, lists and revokes them; and
the users JWT subjects become."""

import asyncio
import hashlib
import subprocess
import sys

import pytest
import sqlalchemy as sa

from persistence.database import Database
from persistence.errors import Conflict, ValidationError
from persistence.models import ApiToken, TokenRole, User
from persistence.repositories import ApiTokenRepository, UserRepository
from persistence.settings import DatabaseSettings
from tests.live import ROOT


async def token_rows(db: Database) -> list[ApiToken]:
    async with db.session() as session:
        return list(await ApiTokenRepository(session).all())


async def test_a_token_is_stored_only_as_its_hash(db: Database) -> None:
    async with db.transaction() as session:
        row, token = await ApiTokenRepository(session).create(name="ci-worker", role="worker")
    assert token.startswith("sbk_") and len(token) == 47
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest() != token
    async with db.session() as session:
        stored = (await session.execute(sa.select(ApiToken.__table__))).one()
        found = await ApiTokenRepository(session).active_by_secret(token)
    assert token not in [str(value) for value in stored]
    assert stored.role == "worker" and stored.revoked_at is None
    assert found is not None and found.name == "ci-worker" and found.role is TokenRole.WORKER
    assert found.created_at.tzinfo is not None


async def test_tokens_are_unguessable_and_unrelated(db: Database) -> None:
    async with db.transaction() as session:
        tokens = [
            (await ApiTokenRepository(session).create(name=f"t{i}", role="reader"))[1]
            for i in range(5)
        ]
    assert len(set(tokens)) == 5
    async with db.session() as session:
        repository = ApiTokenRepository(session)
        altered = tokens[0][:-1] + ("B" if tokens[0].endswith("A") else "A")
        assert await repository.active_by_secret(altered) is None
        assert await repository.active_by_secret("sbk_" + "x" * 43) is None
        assert await repository.active_by_secret(tokens[0].removeprefix("sbk_")) is None


async def test_revoking_a_token_and_reusing_its_name(db: Database) -> None:
    async with db.transaction() as session:
        _, first = await ApiTokenRepository(session).create(name="worker-1", role="worker")
    async with db.transaction() as session:
        assert await ApiTokenRepository(session).revoke("worker-1") is True
    async with db.transaction() as session:
        assert await ApiTokenRepository(session).revoke("worker-1") is False
        assert await ApiTokenRepository(session).revoke("nobody") is False
    async with db.session() as session:
        assert await ApiTokenRepository(session).active_by_secret(first) is None

    # The name is free again for the revoked token's successor.
    async with db.transaction() as session:
        _, second = await ApiTokenRepository(session).create(name="worker-1", role="admin")
    rows = await token_rows(db)
    assert [(r.name, r.role, r.revoked_at is None) for r in rows] == [
        ("worker-1", TokenRole.WORKER, False),
        ("worker-1", TokenRole.ADMIN, True),
    ]
    async with db.session() as session:
        found = await ApiTokenRepository(session).active_by_secret(second)
    assert found is not None and found.role is TokenRole.ADMIN


async def test_two_active_tokens_never_share_a_name(db: Database) -> None:
    async with db.transaction() as session:
        await ApiTokenRepository(session).create(name="ci", role="reader")
    with pytest.raises(Conflict) as raised:
        async with db.transaction() as session:
            await ApiTokenRepository(session).create(name="ci", role="admin")
    assert raised.value.constraint == "uq_api_tokens_name_active"
    assert "ci" in raised.value.message
    assert [row.role for row in await token_rows(db)] == [TokenRole.READER]


async def test_the_database_keeps_active_names_apart_too(db: Database) -> None:
    """Two processes creating the same name at once: the unique index decides."""
    async with db.transaction() as session:
        await ApiTokenRepository(session).create(name="ci", role="reader")
    with pytest.raises(Conflict) as raised:
        async with db.transaction() as session:
            session.add(ApiToken(name="ci", role=TokenRole.EDITOR, secret_hash="0" * 64))
            await session.flush()
    assert raised.value.constraint == "uq_api_tokens_name_active"


@pytest.mark.parametrize(
    ("name", "role", "field"),
    [
        ("", "reader", "name"),
        ("has space", "reader", "name"),
        ("x" * 65, "reader", "name"),
        ("ci/worker", "reader", "name"),
        ("ci", "root", "role"),
        ("ci", "none", "role"),
        ("ci", "", "role"),
    ],
)
async def test_bad_names_and_roles_are_refused(
    db: Database, name: str, role: str, field: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        async with db.transaction() as session:
            await ApiTokenRepository(session).create(name=name, role=role)
    assert raised.value.field == field
    assert await token_rows(db) == []


async def test_the_role_is_checked_by_the_database(db: Database) -> None:
    with pytest.raises(ValidationError) as raised:
        async with db.transaction() as session:
            await session.execute(
                sa.text(
                    "INSERT INTO api_tokens (id, name, role, secret_hash) "
                    "VALUES ('x', 'ci', 'root', :hash)"
                ),
                {"hash": "0" * 64},
            )
    assert raised.value.field == "ck_api_tokens_role"


# Users from JWT subjects


async def test_a_subject_becomes_one_user_named_as_it_prefers(db: Database) -> None:
    async with db.transaction() as session:
        made = await UserRepository(session).for_subject("auth0|4242", "ada.l")
    async with db.transaction() as session:
        again = await UserRepository(session).for_subject("auth0|4242", "someone-else")
    assert again.id == made.id
    assert (made.username, made.subject) == ("ada.l", "auth0|4242")
    async with db.session() as session:
        assert await UserRepository(session).count() == 1


async def test_a_taken_or_invalid_username_is_not_used(db: Database) -> None:
    async with db.transaction() as session:
        ada = await UserRepository(session).create(username="ada", email="ada@example.com")
    async with db.transaction() as session:
        users = UserRepository(session)
        impostor = await users.for_subject("google-oauth2|1", "ada")
        derived = await users.for_subject("auth0|abc", "no spaces please")
        same_base = await users.for_subject("auth0/abc", None)
        tiny = await users.for_subject("7", None)
    # An existing user is never taken over by a JWT claiming their name.
    assert impostor.id != ada.id and impostor.username != "ada"
    assert impostor.username.startswith("google-oauth2-1")
    assert derived.username == "auth0-abc"
    assert same_base.username.startswith("auth0-abc-") and len(same_base.username) == 18
    assert tiny.username.startswith("user-")
    async with db.session() as session:
        again = await UserRepository(session).get(ada.id)
    assert again is not None and again.subject is None
    names = [impostor.username, derived.username, same_base.username, tiny.username, "ada"]
    assert len(set(names)) == 5


async def test_two_processes_meeting_a_new_subject_make_one_user(migrated_url: str) -> None:
    """The second process's insert waits on (PostgreSQL) or follows (SQLite) the first's
    transaction, loses on the unique subject, and returns the first's row."""
    first, second = (Database(DatabaseSettings(url=migrated_url)) for _ in range(2))
    try:
        async with first.transaction() as session:
            mine = await UserRepository(session).for_subject("sub-race", "racer")

            async def other() -> User:
                async with second.transaction() as session:
                    return await UserRepository(session).for_subject("sub-race", "racer")

            theirs = asyncio.create_task(other())
            await asyncio.sleep(0.3)
            assert not theirs.done()
        assert (await theirs).id == mine.id

        # The same with a different subject wanting the username just taken.
        async with first.transaction() as session:
            await UserRepository(session).for_subject("sub-a", "popular")

            async def rival() -> User:
                async with second.transaction() as session:
                    return await UserRepository(session).for_subject("sub-b", "popular")

            task = asyncio.create_task(rival())
            await asyncio.sleep(0.3)
        other_user = await task
        assert other_user.subject == "sub-b" and other_user.username != "popular"
        async with first.session() as session:
            rows = (await session.scalars(sa.select(User).order_by(User.username))).all()
        assert sorted((u.subject or "", u.username) for u in rows) == sorted(
            [("sub-race", "racer"), ("sub-a", "popular"), ("sub-b", other_user.username)]
        )
    finally:
        async with first.transaction() as session:
            await session.execute(sa.delete(User))
        await first.dispose()
        await second.dispose()


# The command


def songbook(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graph.server.cli", "token", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def refused(result: subprocess.CompletedProcess[str], complaint: str) -> None:
    assert result.returncode != 0, result
    assert result.stderr.count("\n") == 1 and complaint in result.stderr, result.stderr
    assert result.stdout == ""


async def test_token_commands_create_list_and_revoke(db: Database, migrated_url: str) -> None:
    created = await asyncio.to_thread(
        songbook, migrated_url, "create", "--name", "worker-7", "--role", "worker"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.splitlines()[-1]
    assert token.startswith("sbk_") and token.strip() == token and len(token) == 47
    assert "worker-7" in created.stderr and token not in created.stderr
    (row,) = await token_rows(db)
    assert (row.name, row.role, row.revoked_at) == ("worker-7", TokenRole.WORKER, None)
    assert row.secret_hash == hashlib.sha256(token.encode()).hexdigest() != token

    listed = await asyncio.to_thread(songbook, migrated_url, "list")
    assert listed.returncode == 0, listed.stderr
    header, line = listed.stdout.splitlines()
    assert header.split() == ["NAME", "ROLE", "CREATED", "REVOKED"]
    assert line.split()[:2] == ["worker-7", "worker"] and line.split()[3] == "-"
    assert token not in listed.stdout and row.secret_hash not in listed.stdout

    revoked = await asyncio.to_thread(songbook, migrated_url, "revoke", "worker-7")
    assert revoked.returncode == 0, revoked.stderr
    (row,) = await token_rows(db)
    assert row.revoked_at is not None
    listed = await asyncio.to_thread(songbook, migrated_url, "list")
    assert listed.stdout.splitlines()[1].split()[3] != "-"

    refused(
        await asyncio.to_thread(songbook, migrated_url, "revoke", "worker-7"),
        "no active API token is named worker-7",
    )


async def test_token_commands_refuse_bad_input_and_change_nothing(
    db: Database, migrated_url: str
) -> None:
    created = await asyncio.to_thread(
        songbook, migrated_url, "create", "--name", "ci", "--role", "reader"
    )
    assert created.returncode == 0, created.stderr
    for args, complaint in (
        (("--name", "ci", "--role", "admin"), "an active API token is already named ci"),
        (("--name", "two words", "--role", "admin"), "1 to 64 letters, digits"),
        (("--name", "x" * 65, "--role", "admin"), "1 to 64 letters, digits"),
        (("--name", "ok", "--role", "root"), "one of reader, editor, worker, admin"),
        (("--name", "ok", "--role", "none"), "one of reader, editor, worker, admin"),
    ):
        refused(await asyncio.to_thread(songbook, migrated_url, "create", *args), complaint)
    assert [(row.name, row.role) for row in await token_rows(db)] == [("ci", TokenRole.READER)]
