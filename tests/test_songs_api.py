"""The library through the API: reading, paging, searching, writing songs."""

import base64
from typing import Any

import sqlalchemy as sa

from persistence.database import Database
from persistence.models import Job, Song
from tests.conftest import GraphQLClient
from tests.factories import add_song, add_songs, global_id

SONG_FIELDS = """
    __typename id title artist album source youtubeId filePath vocalsPath instrumentalPath
    lyrics dateAdded
"""


def create_song(fields: str = "song { id title artist source youtubeId }") -> str:
    return f"""
    mutation($input: CreateSongInput!) {{
      createSong(input: $input) {{
        __typename
        ... on CreateSongSuccess {{ {fields} }}
        ... on ValidationError {{ message field }}
        ... on ConflictError {{ message existingSong {{ id title }} }}
      }}
    }}"""


async def count_rows(db: Database, model: type) -> int:
    async with db.session() as session:
        return (await session.execute(sa.select(sa.func.count()).select_from(model))).scalar_one()


async def test_create_song_trims_text_and_reads_back(gql: GraphQLClient, db: Database) -> None:
    data = await gql.data(
        create_song(),
        input={
            "title": "  Hello  ",
            "artist": " Adele ",
            "source": "YOUTUBE",
            "youtubeId": "YQHsXMglC9A",
        },
    )
    result = data["createSong"]
    assert result["__typename"] == "CreateSongSuccess"
    song = result["song"]
    assert song["title"] == "Hello"
    assert song["artist"] == "Adele"
    assert song["source"] == "YOUTUBE"

    fetched = await gql.data(
        f"query($id: ID!) {{ song(id: $id) {{ {SONG_FIELDS} }} }}", id=song["id"]
    )
    assert fetched["song"]["__typename"] == "Song"
    assert fetched["song"]["youtubeId"] == "YQHsXMglC9A"
    assert fetched["song"]["dateAdded"].endswith("+00:00")

    by_youtube = await gql.data(
        "query($y: String!) { songByYoutubeId(youtubeId: $y) { id } }", y="YQHsXMglC9A"
    )
    assert by_youtube["songByYoutubeId"]["id"] == song["id"]
    async with db.session() as session:
        stored = (await session.scalars(sa.select(Song))).one()
    assert stored.title == "Hello"


async def test_node_resolves_every_type_by_global_id(
    gql: GraphQLClient, admin_gql: GraphQLClient, db: Database
) -> None:
    song = await add_song(db, jobs_per_song=1)
    job_id = (await gql.data("{ jobs { edges { node { id } } } }"))["jobs"]["edges"][0]["node"][
        "id"
    ]
    user = await admin_gql.data(
        'mutation { createUser(input: {username: "ada"}) { ... on CreateUserSuccess { user { id } } } }'
    )
    user_id = user["createUser"]["user"]["id"]
    query = """query($id: ID!) { node(id: $id) { __typename id
        ... on Song { title } ... on Job { status } ... on User { username } } }"""
    assert (await gql.data(query, id=global_id("Song", song.id)))["node"] == {
        "__typename": "Song",
        "id": global_id("Song", song.id),
        "title": "Song 000",
    }
    assert (await gql.data(query, id=job_id))["node"]["status"] == "FAILED"
    assert (await gql.data(query, id=user_id))["node"]["username"] == "ada"
    unknown = global_id("Song", "01900000-0000-7000-8000-000000000000")
    assert (await gql.data(query, id=unknown))["node"] is None


async def test_songs_page_newest_first_and_follow_cursors(gql: GraphQLClient, db: Database) -> None:
    await add_songs(db, 25)
    query = """query($first: Int, $after: String) {
      songs(first: $first, after: $after) {
        totalCount
        edges { cursor node { title } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      } }"""
    titles: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await gql.data(query, first=10, after=after))["songs"]
        pages += 1
        assert page["totalCount"] == 25
        titles += [edge["node"]["title"] for edge in page["edges"]]
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert pages == 3
    assert titles == [f"Song {n:03d}" for n in reversed(range(25))]


async def test_songs_backwards_with_last_and_before(gql: GraphQLClient, db: Database) -> None:
    await add_songs(db, 12)
    everything = (await gql.data("{ songs(first: 12) { edges { cursor node { title } } } }"))[
        "songs"
    ]
    before = everything["edges"][8]["cursor"]
    page = (
        await gql.data(
            """query($b: String) { songs(last: 3, before: $b) {
                edges { node { title } } pageInfo { hasNextPage hasPreviousPage } } }""",
            b=before,
        )
    )["songs"]
    assert [e["node"]["title"] for e in page["edges"]] == ["Song 006", "Song 005", "Song 004"]
    assert page["pageInfo"] == {"hasNextPage": True, "hasPreviousPage": True}


async def test_order_by_title_and_artist(gql: GraphQLClient, db: Database) -> None:
    for title, artist in [("b", "Zed"), ("a", None), ("c", "Amy")]:
        await add_song(db, title=title, artist=artist)
    query = """query($o: SongOrder) { songs(orderBy: $o) { edges { node { title } } } }"""

    def titles(data: dict[str, Any]) -> list[str]:
        return [e["node"]["title"] for e in data["songs"]["edges"]]

    assert titles(await gql.data(query, o={"field": "TITLE", "direction": "ASC"})) == [
        "a",
        "b",
        "c",
    ]
    assert titles(await gql.data(query, o={"field": "ARTIST", "direction": "ASC"})) == [
        "a",
        "c",
        "b",
    ]
    assert titles(await gql.data(query, o={"field": "ARTIST", "direction": "DESC"})) == [
        "b",
        "c",
        "a",
    ]


async def test_paging_by_artist_visits_every_song_once(gql: GraphQLClient, db: Database) -> None:
    await add_songs(db, 30)
    await add_songs(db, 3, artist=None, title="Anonymous")
    query = """query($after: String) { songs(first: 7, after: $after, orderBy: {field: ARTIST, direction: ASC}) {
        edges { node { id artist } } pageInfo { hasNextPage endCursor } } }"""
    seen: list[str] = []
    artists: list[str] = []
    after = None
    while True:
        page = (await gql.data(query, after=after))["songs"]
        seen += [e["node"]["id"] for e in page["edges"]]
        artists += [e["node"]["artist"] or "" for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 33
    assert artists == sorted(artists)


async def test_search_is_case_insensitive_and_literal(gql: GraphQLClient, db: Database) -> None:
    await add_song(db, title="100% Pure Love", artist="Crystal Waters")
    await add_song(db, title="snake_case blues", artist="Pythonistas")
    await add_song(db, title="Plain", artist="O'Brien")
    await add_song(db, title="Other", artist="X")
    query = "query($s: String) { songs(search: $s) { totalCount edges { node { title } } } }"

    async def found(text: str) -> list[str]:
        return sorted(e["node"]["title"] for e in (await gql.data(query, s=text))["songs"]["edges"])

    assert await found("crystal") == ["100% Pure Love"]
    assert await found("0%") == ["100% Pure Love"]
    assert await found("%") == ["100% Pure Love"]
    assert await found("_") == ["snake_case blues"]
    assert await found("e_c") == ["snake_case blues"]
    assert await found("o'brien") == ["Plain"]
    assert await found("' OR 1=1 --") == []
    assert await found("\\") == []
    assert await found("   ") == ["100% Pure Love", "Other", "Plain", "snake_case blues"]


async def test_filter_by_source(gql: GraphQLClient, db: Database) -> None:
    await add_songs(db, 2)
    await add_song(db, source="local", title="Local one")
    data = await gql.data("{ songs(source: LOCAL) { totalCount edges { node { title source } } } }")
    assert data["songs"]["totalCount"] == 1
    assert data["songs"]["edges"][0]["node"] == {"title": "Local one", "source": "LOCAL"}


async def test_song_jobs_newest_first_with_paging(gql: GraphQLClient, db: Database) -> None:
    song = await add_song(db, jobs_per_song=3)
    query = """query($id: ID!, $after: String) { song(id: $id) {
        latestJob { status progress song { title } }
        jobs(first: 2, after: $after) { totalCount edges { cursor node { status } }
          pageInfo { hasNextPage endCursor } } } }"""
    first = (await gql.data(query, id=global_id("Song", song.id)))["song"]
    assert first["latestJob"] == {
        "status": "COMPLETED",
        "progress": 100,
        "song": {"title": "Song 000"},
    }
    assert first["jobs"]["totalCount"] == 3
    assert [e["node"]["status"] for e in first["jobs"]["edges"]] == ["COMPLETED", "COMPLETED"]
    assert first["jobs"]["pageInfo"]["hasNextPage"] is True
    rest = (
        await gql.data(
            query, id=global_id("Song", song.id), after=first["jobs"]["pageInfo"]["endCursor"]
        )
    )["song"]["jobs"]
    assert [e["node"]["status"] for e in rest["edges"]] == ["FAILED"]
    assert rest["pageInfo"]["hasNextPage"] is False


async def test_update_song_changes_only_given_fields(gql: GraphQLClient, db: Database) -> None:
    song = await add_song(db, album="First")
    mutation = """mutation($input: UpdateSongInput!) { updateSong(input: $input) {
        __typename ... on UpdateSongSuccess { song { title album lyrics } }
        ... on Error { message } } }"""
    data = await gql.data(
        mutation, input={"id": global_id("Song", song.id), "lyrics": "la la", "album": None}
    )
    assert data["updateSong"] == {
        "__typename": "UpdateSongSuccess",
        "song": {"title": "Song 000", "album": None, "lyrics": "la la"},
    }


async def test_delete_song_takes_its_jobs(gql: GraphQLClient, db: Database) -> None:
    song = await add_song(db, jobs_per_song=2)
    keep = await add_song(db, jobs_per_song=1)
    gid = global_id("Song", song.id)
    data = await gql.data(
        "mutation($id: ID!) { deleteSong(id: $id) { __typename ... on DeleteSongSuccess { deletedSongId } } }",
        id=gid,
    )
    assert data["deleteSong"] == {"__typename": "DeleteSongSuccess", "deletedSongId": gid}
    assert (await gql.data("query($id: ID!) { song(id: $id) { id } }", id=gid))["song"] is None
    assert await count_rows(db, Song) == 1
    assert await count_rows(db, Job) == 1
    again = await gql.data(
        "mutation($id: ID!) { deleteSong(id: $id) { __typename ... on NotFoundError { id } } }",
        id=gid,
    )
    assert again["deleteSong"] == {"__typename": "NotFoundError", "id": gid}
    assert keep.id


async def test_create_song_with_job_creates_both(gql: GraphQLClient, db: Database) -> None:
    data = await gql.data(
        """mutation($input: CreateSongInput!) { createSongWithJob(input: $input) { __typename
            ... on CreateSongWithJobSuccess { song { id latestJob { id } } job { id status progress song { title } } } } }""",
        input={"title": "Hello", "artist": "Adele", "source": "UPLOAD"},
    )
    result = data["createSongWithJob"]
    assert result["__typename"] == "CreateSongWithJobSuccess"
    assert result["job"]["status"] == "PENDING"
    assert result["job"]["progress"] == 0
    assert result["job"]["song"]["title"] == "Hello"
    assert result["song"]["latestJob"]["id"] == result["job"]["id"]
    assert await count_rows(db, Job) == 1


def test_global_ids_are_relay_style() -> None:
    assert base64.b64decode(global_id("Song", "abc")).decode() == "Song:abc"
