"""Search: `songs(search:)` finds exactly the songs whose title or artist holds the term,
with Python's Unicode lower-casing on both sides and `%`, `_` and `\\` taken literally,
on either database. Checked against a scan in Python, over terms hypothesis draws."""

import asyncio
import random
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence import seed as seed_module
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base, Song, SongSource
from persistence.repositories import songs as songs_repository
from persistence.search import SEARCH_INDEXES
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.factories import global_id
from tests.live import ROOT, run_command

SONGS = Base.metadata.tables["songs"]
TERMS = 1500
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)
# Text where lower-casing is not ASCII's: dotted and dotless i, final sigma, sharp s,
# the Kelvin sign, a ligature, a titlecase digraph, combining marks, an emoji; and the
# characters LIKE treats specially.
SPECIAL = [
    ("İstanbul Nights", "Işık Öztürk"),
    ("ΣΊΣΥΦΟΣ", "Οδυσσέας"),
    ("Straße der Lieder", "GROẞE Band"),
    ("Zero \u212a", "ǅemal"),
    ("ﬁre ﬂies", "Café Noir"),
    ("Cafe\u0301 Society", None),
    ("100% Karaoke_Night", "back\\slash"),
    ("50%_off", "under_score"),
    ("Ünïcode Ballad", "Zoë 😀"),
    ("ǈubav", "ǉubav"),
]
WORDS = ["Midnight", "river", "NEON", "Heart", "glass", "Óscar", "été", "ÆON", "σκιά"]


@dataclass(frozen=True)
class Stored:
    id: str
    title: str
    artist: str | None


async def stored_library(session: Any) -> list[Stored]:
    """The songs as stored, oldest first (as `expected` wants them)."""
    statement = sa.select(Song.id, Song.title, Song.artist).order_by(Song.date_added, Song.id)
    return [Stored(*row) for row in (await session.execute(statement)).all()]


def matches(song: Stored, term: str) -> bool:
    """The rule search must follow, as plain Python."""
    wanted = term.strip().lower()
    return wanted in song.title.lower() or wanted in (song.artist or "").lower()


@pytest.fixture(scope="module")
def library(module_url: str) -> list[Stored]:
    """Songs written through the model (ORM) and through plain inserts (Core), newest last."""
    rng = random.Random(5)
    rows = [*SPECIAL]
    for _ in range(300):
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
        rows.append((title, rng.choice([None, *WORDS, "Los Faroles", "AC/DC"])))

    async def seed() -> list[Stored]:
        db = Database(DatabaseSettings(url=module_url))
        try:
            async with db.transaction() as session:
                songs = [
                    Song(
                        title=title,
                        artist=artist,
                        source=SongSource.UPLOAD,
                        date_added=BASE_TIME + timedelta(minutes=n),
                    )
                    for n, (title, artist) in enumerate(rows[::2])
                ]
                session.add_all(songs)
                await session.flush()
                stored = [Stored(s.id, s.title, s.artist) for s in songs]
                plain = [
                    {
                        "id": f"00000000-0000-7000-8000-{n:012d}",
                        "title": title,
                        "artist": artist,
                        "source": "local",
                        "date_added": BASE_TIME + timedelta(days=1, minutes=n),
                    }
                    for n, (title, artist) in enumerate(rows[1::2])
                ]
                await session.execute(SONGS.insert(), plain)
                stored += [Stored(str(p["id"]), str(p["title"]), p["artist"]) for p in plain]  # type: ignore[arg-type]
            return stored
        finally:
            await db.dispose()

    upgrade(module_url)
    return asyncio.run(seed())


@asynccontextmanager
async def app_client(url: str) -> AsyncIterator[httpx.AsyncClient]:
    db = Database(DatabaseSettings(url=url))
    app = create_app(Settings(), db=db)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://songbook.test") as c:
            yield c


@pytest.fixture
async def http(module_url: str, library: list[Stored]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(module_url) as client:
        yield client


def same_as_scan(url: str, library: list[Stored], drawn: list[str]) -> None:
    """Every term drawn finds what a scan of `library` finds."""

    async def compare() -> None:
        async with app_client(url) as http:
            for term in drawn:
                if term.strip():
                    assert await found(http, term) == expected(library, term), term

    asyncio.run(compare())


SEARCH = """query Search($q: String!) {
  songs(search: $q, first: 100) { totalCount edges { node { id } } }
}"""


async def found(http: httpx.AsyncClient, term: str) -> tuple[int, list[str]]:
    response = await http.post("/graphql", json={"query": SEARCH, "variables": {"q": term}})
    body = response.json()
    assert "errors" not in body, (term, body)
    songs = body["data"]["songs"]
    return songs["totalCount"], [edge["node"]["id"] for edge in songs["edges"]]


def expected(library: list[Stored], term: str) -> tuple[int, list[str]]:
    newest_first = list(reversed(library))  # added in order, each after the one before
    hits = [global_id("Song", song.id) for song in newest_first if matches(song, term)]
    return len(hits), hits[:100]


def terms(library: list[Stored]) -> Any:
    """Slices of stored titles and artists (1 to 6 characters, in any case), and text
    from an alphabet of letters that fold unusually and of LIKE's special characters."""
    texts = [t for song in library for t in (song.title, song.artist) if t]
    letters = [*"aeiİıIiσςΣßẞKkǅǆǄﬁ%_\\ 0", "\u00e9", "\u0301", "\U0001f600"]
    alphabet = st.lists(st.sampled_from(letters), min_size=1, max_size=5).map("".join)

    @st.composite
    def piece(draw: st.DrawFn) -> str:
        text = draw(st.sampled_from(texts))
        start = draw(st.integers(0, max(len(text) - 1, 0)))
        length = draw(st.integers(1, 6))
        cut = text[start : start + length]
        changes: list[Callable[[str], str]] = [str, str.upper, str.lower, str.swapcase, str.title]
        return draw(st.sampled_from(changes))(cut)

    return st.one_of(piece(), alphabet)


def test_search_finds_what_a_scan_finds(library: list[Stored], module_url: str) -> None:
    drawn: list[str] = []

    @settings(
        max_examples=TERMS, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(term=terms(library))
    def draw(term: str) -> None:
        drawn.append(term)

    draw()
    drawn += [s for s in ("İ", "i̇", "ς", "σ", "ss", "ß", "k", "%", "_", "\\", "é", "e\u0301")]

    same_as_scan(module_url, library, drawn)


@pytest.mark.parametrize(
    ("term", "titles"),
    [
        ("istanbul", []),  # "İ".lower() is "i̇": a dotted i, not a plain one
        ("i̇stanbul", ["İstanbul Nights"]),
        ("işık", ["İstanbul Nights"]),  # "I".lower() is a dotted i
        ("σίσυφος", ["ΣΊΣΥΦΟΣ"]),  # the last capital sigma lowers to a final one
        ("straße", ["Straße der Lieder"]),
        ("große", ["Straße der Lieder"]),
        ("zero k", ["Zero \u212a"]),
        ("100%", ["100% Karaoke_Night"]),
        ("0%_", ["50%_off"]),
        ("%", ["100% Karaoke_Night", "50%_off"]),
        ("_", ["100% Karaoke_Night", "50%_off"]),
        ("k\\s", ["100% Karaoke_Night"]),
        ("ZOË", ["Ünïcode Ballad"]),
    ],
)
async def test_unicode_and_like_characters(
    http: httpx.AsyncClient, library: list[Stored], term: str, titles: list[str]
) -> None:
    count, ids = await found(http, term)
    by_id = {global_id("Song", song.id): song.title for song in library}
    assert sorted(by_id[i] for i in ids) == sorted(titles)
    assert count == len(titles)


def test_a_short_walk_then_the_index_finds_the_same(
    library: list[Stored], module_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Searches walk WALK_ROWS songs in order before they turn to the search index: with
    a walk of 5, nearly every page is finished by the index, and nothing changes. (SQLite
    skips the walk for a term found in fewer than FEW_HITS songs: here, in none.)"""
    monkeypatch.setattr(songs_repository, "WALK_ROWS", 5)
    monkeypatch.setattr(songs_repository, "FEW_HITS", 1)
    rng = random.Random(11)
    texts = [t for song in library for t in (song.title, song.artist) if t]
    drawn = []
    for _ in range(300):
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        drawn.append(text[start : start + rng.randint(1, 5)])

    same_as_scan(module_url, library, drawn)


COUNT = """query Count($q: String) {
  songs(search: $q, first: 1) { totalCount totalCountIsCapped }
}"""


async def test_a_search_counts_exactly_up_to_ten_thousand(empty_url: str) -> None:
    """Exact up to the cap, then capped: whether the count reads the search index, or (on
    PostgreSQL) the prefix indexes find more than the cap of titles or artists that begin
    with the term ("zenith", "quell"; "quiet" begins fewer, before others past it)."""
    await asyncio.to_thread(upgrade, empty_url)
    await seed_library(DatabaseSettings(url=empty_url), songs=10_800, random_seed=3)
    db = Database(DatabaseSettings(url=empty_url))
    try:
        async with db.transaction() as session:
            await session.execute(
                SONGS.insert(),
                [
                    {
                        "id": f"00000000-0000-7000-9000-{n:012d}",
                        "title": f"Zenith {n}",
                        "artist": "Quell",
                        "source": "upload",
                        "date_added": BASE_TIME - timedelta(minutes=n),
                    }
                    for n in range(10_001)
                ],
            )
        async with db.read() as session:
            titles = (await session.execute(sa.select(Song.title, Song.artist))).all()
    finally:
        await db.dispose()
    capped = {"e", "ZENITH", "zenith", "enith", "quell", "uel"}
    async with app_client(empty_url) as http:
        for term in (*sorted(capped), "midnight", "NORTHBOUND", "quiet", "zenith 10", "zzz", None):
            response = await http.post("/graphql", json={"query": COUNT, "variables": {"q": term}})
            songs = response.json()["data"]["songs"]
            if term is None:  # no search: the whole library, counted exactly
                assert songs == {"totalCount": 20_801, "totalCountIsCapped": False}
                continue
            exact = sum(matches(Stored("", t, a), term) for t, a in titles)
            assert songs == {
                "totalCount": min(exact, 10_000),
                "totalCountIsCapped": exact > 10_000,
            }, term
            assert (exact > 10_000) == (term in capped), (term, exact)


async def test_the_search_index_follows_concurrent_writes(empty_url: str) -> None:
    """Four clients create, retitle and delete songs at once; then every search answers
    as a scan of what is left, and on SQLite the search table holds exactly the songs."""
    await asyncio.to_thread(upgrade, empty_url)
    rng = random.Random(17)
    create = """mutation C($t: String!, $a: String!) { createSong(input: {title: $t, artist: $a, source: UPLOAD}) { ... on CreateSongSuccess { song { id } } } }"""
    update = """mutation U($id: ID!, $t: String!) { updateSong(input: {id: $id, title: $t}) { __typename } }"""
    delete = """mutation D($id: ID!) { deleteSong(id: $id) { __typename } }"""
    words = [*WORDS, "Ǆemo", "ΣΟΦΙΑ", "Größe"]

    async def client(http: httpx.AsyncClient, seed: int) -> None:
        mine: list[str] = []
        own = random.Random(seed)
        for _ in range(40):
            roll = own.random()
            if roll < 0.5 or not mine:
                title = " ".join(own.choice(words) for _ in range(2))
                body = await post(http, create, t=title, a=own.choice(words))
                mine.append(body["data"]["createSong"]["song"]["id"])
            elif roll < 0.8:
                await post(http, update, id=own.choice(mine), t=own.choice(words))
            else:
                await post(http, delete, id=mine.pop(own.randrange(len(mine))))

    async with app_client(empty_url) as http:
        await asyncio.gather(*(client(http, rng.randrange(1 << 30)) for _ in range(4)))
        db = Database(DatabaseSettings(url=empty_url))
        try:
            async with db.read() as session:
                library = await stored_library(session)
                if db.dialect == "sqlite":
                    indexed = (
                        await session.execute(
                            sa.text(
                                "SELECT songs.title_folded || char(31, 31), songs.artist_folded || char(31, 31), "
                                "songs_search.title, songs_search.artist FROM songs "
                                "LEFT JOIN songs_search ON songs_search.rowid = songs.search_key"
                            )
                        )
                    ).all()
                    assert all(row[0] == row[2] and row[1] == row[3] for row in indexed)
                    stored = await session.scalar(sa.text("SELECT count(*) FROM songs_search"))
                    assert stored == len(library)
        finally:
            await db.dispose()
        for term in ["ǆ", "σοφ", "grö", "ss", "e", "mid", "Heart glass", "ón", "x"]:
            assert await found(http, term) == expected(library, term), term


async def post(http: httpx.AsyncClient, query: str, **variables: Any) -> Any:
    body = (await http.post("/graphql", json={"query": query, "variables": variables})).json()
    assert "errors" not in body, body
    return body


async def test_search_rebuild_repairs_what_was_written_around_songbook(empty_url: str) -> None:
    await asyncio.to_thread(upgrade, empty_url)
    await seed_library(DatabaseSettings(url=empty_url), songs=300, random_seed=5)
    db = Database(DatabaseSettings(url=empty_url))
    try:
        async with db.transaction() as session:
            # A hand-written UPDATE that knows nothing of the folded copies...
            await session.execute(
                sa.text("UPDATE songs SET title = 'Hand Written' WHERE artist = 'Mira Vale'")
            )
            if db.dialect == "sqlite":  # ...and a damaged search table.
                await session.execute(sa.text("DELETE FROM songs_search WHERE rowid % 3 = 0"))
        async with db.read() as session:
            library = await stored_library(session)
    finally:
        await db.dispose()
    async with app_client(empty_url) as http:
        assert await found(http, "hand written") != expected(library, "hand written")
    code, output = await run_command(empty_url, "search", "rebuild")
    assert code == 0 and "300 songs" in output, output
    async with app_client(empty_url) as http:
        for term in ("hand written", "mira", "ni", "o", "ght"):
            assert await found(http, term) == expected(library, term), term


def relevance(song: Stored, term: str) -> int:
    wanted, title = term.strip().lower(), song.title.lower()
    if title == wanted:
        return 4
    if title.startswith(wanted):
        return 3
    if f" {wanted}" in title:
        return 2
    return 1 if wanted in title else 0


RELEVANT = """query Relevant($q: String!, $after: String, $direction: SortDirection!) {
  songs(search: $q, first: 7, after: $after, orderBy: {field: RELEVANCE, direction: $direction}) {
    edges { node { id } } pageInfo { hasNextPage endCursor } } }"""


@pytest.mark.parametrize("walk", [None, 5])
@pytest.mark.parametrize("direction", ["DESC", "ASC"])
@pytest.mark.parametrize(
    "term", ["river", "neon", "heart", "he", "e", "midnight heart", "ǆ", "zzz"]
)
async def test_relevance_pages_through_every_match_in_order(
    http: httpx.AsyncClient,
    library: list[Stored],
    term: str,
    direction: str,
    walk: int | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Page by page, in either direction; with the walk of the word tier over the whole
    library, or over 5 songs at a time. (SQLite reads a term found in fewer than
    FEW_HITS songs from its index at once: here, only one found in none.)"""
    monkeypatch.setattr(songs_repository, "FEW_HITS", 1)
    if walk is not None:
        monkeypatch.setattr(songs_repository, "WALK_ROWS", walk)
    ids, after = [], None
    while True:
        variables = {"q": term, "after": after, "direction": direction}
        body = (
            await http.post("/graphql", json={"query": RELEVANT, "variables": variables})
        ).json()
        assert "errors" not in body, body
        songs = body["data"]["songs"]
        ids += [edge["node"]["id"] for edge in songs["edges"]]
        assert len(ids) <= len(library), "pages repeat songs"
        if not songs["pageInfo"]["hasNextPage"]:
            break
        after = songs["pageInfo"]["endCursor"]
    ranked = sorted(
        ((relevance(song, term), n, song) for n, song in enumerate(library) if matches(song, term)),
        key=lambda ranked: (ranked[0], ranked[1], ranked[2].id),
        reverse=direction == "DESC",
    )
    assert ids == [global_id("Song", song.id) for _, _, song in ranked]


async def test_relevance_needs_a_search_term(http: httpx.AsyncClient) -> None:
    body = (
        await http.post(
            "/graphql",
            json={"query": "{ songs(orderBy: {field: RELEVANCE}) { totalCount } }"},
        )
    ).json()
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "orderBy"}


def test_migrate_names_pg_trgm_when_it_may_not_create_it(
    backend_name: str, postgres_databases: Any
) -> None:
    """A database user without CREATE on the database cannot add pg_trgm: `songbook
    migrate` says so in one line, exits non-zero and leaves nothing half done."""
    if backend_name != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's")
    url = sa.make_url(postgres_databases.create())
    role = f"songbook_limited_{uuid.uuid4().hex[:8]}"
    postgres_databases.run(
        [
            f"CREATE ROLE {role} LOGIN",
            f'REVOKE CREATE ON DATABASE "{url.database}" FROM PUBLIC',
            f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}',
        ]
    )
    inside = url.set(drivername="postgresql").render_as_string(hide_password=False)

    async def grant(*statements: str) -> Any:
        import asyncpg

        connection = await asyncpg.connect(inside)
        try:
            return [await connection.fetchval(statement) for statement in statements]
        finally:
            await connection.close()

    try:
        asyncio.run(grant(f"GRANT USAGE, CREATE ON SCHEMA public TO {role}"))
        limited = url.set(username=role).render_as_string(hide_password=False)
        code, output = asyncio.run(run_command(limited, "migrate", stderr=True))
        assert code != 0
        (line,) = output.strip().splitlines()
        assert line.startswith("songbook: ") and "pg_trgm" in line, output
        assert "Traceback" not in output
        # One transaction: no table of the earlier revisions stayed behind.
        left = asyncio.run(
            grant("SELECT to_regclass('songs')", "SELECT to_regclass('alembic_version')")
        )
        assert left == [None, None]
    finally:
        asyncio.run(grant(f"DROP OWNED BY {role}"))
        postgres_databases.run([f"DROP ROLE {role}"])


async def search_index_present(session: Any, songs: int) -> bool:
    """Whether the search index is whole: SQLite's table holds `songs` rows, its three
    triggers and the prefix index stand; PostgreSQL has every search index."""
    if session.bind.dialect.name == "sqlite":
        stored = await session.scalar(sa.text("SELECT count(*) FROM songs_search"))
        triggers = await session.scalar(
            sa.text(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                "AND name LIKE 'songs_search_%'"
            )
        )
        index = await session.scalar(
            sa.text(
                "SELECT count(*) FROM sqlite_master WHERE name = 'ix_songs_title_folded_prefix'"
            )
        )
        return (stored, triggers, index) == (songs, 3, 1)
    names = await session.scalars(
        sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'songs'")
    )
    return set(SEARCH_INDEXES) <= set(names)


async def a_new_song_is_found(url: str, title: str, terms: tuple[str, ...]) -> None:
    """A song added through the API is indexed (the search index is whole after), and
    its title and each term find what a scan of the stored library finds."""
    async with app_client(url) as http:
        await post(
            http,
            f'mutation {{ createSong(input: {{title: "{title}", artist: "Late", source: UPLOAD}}) {{ __typename }} }}',
        )
        db = Database(DatabaseSettings(url=url))
        try:
            async with db.read() as session:
                library = await stored_library(session)
                assert await search_index_present(session, len(library))
        finally:
            await db.dispose()
        for term in (title.lower(), *terms):
            assert await found(http, term) == expected(library, term), term


async def test_a_large_seed_builds_the_search_index_once_and_keeps_it_after(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seeding an empty library past DEFER_INDEXES_FROM songs builds the index at the end
    (SQLite's triggers and PostgreSQL's search indexes set aside meanwhile): afterwards
    it holds every song, and follows later writes as before."""
    monkeypatch.setattr(seed_module, "DEFER_INDEXES_FROM", 100)
    await asyncio.to_thread(upgrade, empty_url)
    await seed_library(DatabaseSettings(url=empty_url), songs=400, random_seed=9)
    await a_new_song_is_found(empty_url, "Seeded After", ("river", "ni", "e", "zz"))


# A seed past DEFER_INDEXES_FROM that dies, as if killed, after two batches of songs.
KILLED_SEED = """
import asyncio, os, sys
from persistence import seed
from persistence.settings import DatabaseSettings

seed.DEFER_INDEXES_FROM = 100
insert, inserted = seed._insert, []

async def insert_then_die(session, table, rows):
    await insert(session, table, rows)
    inserted.append(table.name)
    if inserted.count("jobs") == 2:
        os._exit(9)

seed._insert = insert_then_die
asyncio.run(seed.seed_library(DatabaseSettings(url=sys.argv[1]), songs=400, batch_size=100))
"""


async def test_a_seed_killed_midway_leaves_search_whole_or_rebuildable(empty_url: str) -> None:
    """SQLite: the killed load was one transaction, so nothing of it stays and the
    triggers stand. PostgreSQL: the batches written stay, the search indexes are missing
    until `songbook search rebuild` makes them again. Either way search then finds
    exactly what a scan finds."""
    await asyncio.to_thread(upgrade, empty_url)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_SEED, empty_url, cwd=ROOT, stderr=asyncio.subprocess.DEVNULL
    )
    assert await process.wait() == 9
    db = Database(DatabaseSettings(url=empty_url))
    try:
        async with db.read() as session:
            library = await stored_library(session)
            if db.dialect == "sqlite":
                assert library == []
                assert await search_index_present(session, 0)
            else:
                assert len(library) == 200
                assert not await search_index_present(session, len(library))
                code, _ = await run_command(empty_url, "search", "rebuild")
                assert code == 0
                assert await search_index_present(session, len(library))
    finally:
        await db.dispose()
    await a_new_song_is_found(empty_url, "After The Kill", ("river", "ni", "e"))


@pytest.mark.parametrize(
    ("term", "end"),
    [
        ("river", "rives"),
        ("a", "b"),
        ("x\ud7ff", "x\ue000"),  # past U+D7FF come the surrogates, which are no characters
        ("ab\U0010fffe", "ab\U0010ffff"),
        ("ab\U0010ffff", None),  # nothing sorts past it
    ],
)
def test_a_prefix_range_ends_at_the_first_string_past_the_term(term: str, end: str | None) -> None:
    assert songs_repository.prefix_end(term) == end
