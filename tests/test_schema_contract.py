"""The schema's contract with clients: everything described, and job lists that page both
ways (Relay cursor connections) at a cost that does not grow with the page of songs."""

from typing import Any

import pytest
import sqlalchemy as sa
from graphql import get_introspection_query

from persistence.database import Database
from persistence.models import Job
from tests.conftest import GraphQLClient, StatementCounter
from tests.factories import BASE_TIME, add_songs, global_id

BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}

# --- Descriptions, read the way GraphiQL and code generators read them -----------------


def undescribed(schema: dict[str, Any]) -> list[str]:
    """Every type, field, argument, input field and enum value without a description."""
    offenders: list[str] = []

    def check(coordinate: str, element: dict[str, Any]) -> None:
        description = element.get("description")
        if not isinstance(description, str) or not description.strip():
            offenders.append(coordinate)

    for type_ in schema["types"]:
        name = type_["name"]
        if name.startswith("__") or name in BUILT_IN_SCALARS:
            continue
        check(name, type_)
        for field in type_["fields"] or []:
            check(f"{name}.{field['name']}", field)
            for argument in field["args"]:
                check(f"{name}.{field['name']}({argument['name']}:)", argument)
        for input_field in type_["inputFields"] or []:
            check(f"{name}.{input_field['name']}", input_field)
        for value in type_["enumValues"] or []:
            check(f"{name}.{value['name']}", value)
    return offenders


async def introspect(gql: GraphQLClient) -> dict[str, Any]:
    query = get_introspection_query(
        descriptions=True, specified_by_url=True, input_value_deprecation=True
    )
    schema: dict[str, Any] = (await gql.data(query))["__schema"]
    return schema


async def test_every_schema_element_is_described(gql: GraphQLClient) -> None:
    schema = await introspect(gql)
    names = {type_["name"] for type_ in schema["types"]}
    # The walk sees the whole schema: every kind of element it checks is there.
    assert {"Query", "Mutation", "Subscription", "Song", "JobStatus", "CreateSongInput"} <= names
    offenders = undescribed(schema)
    assert not offenders, "no description: " + ", ".join(offenders)


async def test_date_time_points_at_its_specification(gql: GraphQLClient) -> None:
    schema = await introspect(gql)
    [date_time] = [type_ for type_ in schema["types"] if type_["name"] == "DateTime"]
    assert date_time["kind"] == "SCALAR"
    assert date_time["specifiedByURL"], "DateTime has no specifiedByURL"
    assert date_time["specifiedByURL"].startswith("https://")


def test_the_walk_finds_what_lacks_a_description() -> None:
    """The check itself can fail: an element of each kind left undescribed is named."""
    described = "Told."
    schema = {
        "types": [
            {"name": "__Type", "description": None, "fields": [], "inputFields": None,
             "enumValues": None},
            {"name": "String", "description": None, "fields": None, "inputFields": None,
             "enumValues": None},
            {"name": "Thing", "description": "", "fields": [
                {"name": "a", "description": described, "args": [
                    {"name": "x", "description": None}]},
                {"name": "b", "description": "  ", "args": []},
            ], "inputFields": None, "enumValues": None},
            {"name": "ThingInput", "description": described, "fields": None, "inputFields": [
                {"name": "c", "description": None}], "enumValues": None},
            {"name": "Kind", "description": described, "fields": None, "inputFields": None,
             "enumValues": [{"name": "D", "description": None},
                            {"name": "E", "description": described}]},
        ]
    }  # fmt: skip
    assert undescribed(schema) == ["Thing", "Thing.a(x:)", "Thing.b", "ThingInput.c", "Kind.D"]


# --- Job lists page forwards and backwards ----------------------------------------------

PAGE_FIELDS = """
  edges { cursor node { id createdAt } }
  pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
"""
SONG_JOBS = f"""
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {{
  song(id: $id) {{
    jobs(first: $first, after: $after, last: $last, before: $before) {{ {PAGE_FIELDS} }}
  }}
}}"""
ALL_JOBS = f"""
query($first: Int, $after: String, $last: Int, $before: String) {{
  jobs(first: $first, after: $after, last: $last, before: $before) {{ {PAGE_FIELDS} }}
}}"""


async def newest_first(db: Database) -> list[str]:
    """Every job's global id in the lists' order: newest first, ties broken by id."""
    async with db.session() as session:
        ids = await session.scalars(
            sa.select(Job.id).order_by(Job.created_at.desc(), Job.id.desc())
        )
        return [global_id("Job", id) for id in ids]


def ids_of(page: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in page["edges"]]


def check_cursors(page: dict[str, Any]) -> None:
    cursors = [edge["cursor"] for edge in page["edges"]]
    assert page["pageInfo"]["startCursor"] == (cursors[0] if cursors else None)
    assert page["pageInfo"]["endCursor"] == (cursors[-1] if cursors else None)


async def walk_backwards(fetch: Any, size: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Every item, by `last: size` pages each `before` the previous page's start."""
    pages: list[dict[str, Any]] = []
    before: str | None = None
    while True:
        page = await fetch(last=size, before=before)
        check_cursors(page)
        pages.append(page)
        assert len(pages) <= 20, "backward paging never ended"
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    visited = [id for page in reversed(pages) for id in ids_of(page)]
    return visited, pages


async def walk_forwards(fetch: Any, size: int) -> list[str]:
    """Every item, by `first: size` pages each `after` the previous page's end."""
    visited: list[str] = []
    after: str | None = None
    for _ in range(20):
        page = await fetch(first=size, after=after)
        check_cursors(page)
        visited += ids_of(page)
        if not page["pageInfo"]["hasNextPage"]:
            return visited
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("forward paging never ended")


async def test_song_jobs_page_backwards_and_forwards(gql: GraphQLClient, db: Database) -> None:
    [song] = await add_songs(db, 1, jobs_per_song=7)
    await add_songs(db, 1, jobs_per_song=2, title="Another")  # not in the song's list
    song_id = global_id("Song", song.id)
    async with db.session() as session:
        rows = await session.scalars(
            sa.select(Job.id)
            .where(Job.song_id == song.id)
            .order_by(Job.created_at.desc(), Job.id.desc())
        )
        expected = [global_id("Job", id) for id in rows]
    assert len(expected) == 7

    async def fetch(**arguments: Any) -> dict[str, Any]:
        jobs: dict[str, Any] = (await gql.data(SONG_JOBS, id=song_id, **arguments))["song"]["jobs"]
        return jobs

    # The last three are the three oldest, still newest first, with more before them.
    last = await fetch(last=3)
    assert ids_of(last) == expected[4:]
    created = [edge["node"]["createdAt"] for edge in last["edges"]]
    assert created == sorted(created, reverse=True)
    assert last["pageInfo"]["hasPreviousPage"] is True
    assert last["pageInfo"]["hasNextPage"] is False

    middle = await fetch(last=3, before=last["pageInfo"]["startCursor"])
    assert ids_of(middle) == expected[1:4]
    assert middle["pageInfo"]["hasPreviousPage"] is True

    visited, pages = await walk_backwards(fetch, 3)
    assert [ids_of(page) for page in pages] == [expected[4:], expected[1:4], expected[:1]]
    assert pages[-1]["pageInfo"]["hasPreviousPage"] is False
    assert visited == expected
    assert await walk_forwards(fetch, 3) == expected


async def test_all_jobs_page_backwards_and_forwards(gql: GraphQLClient, db: Database) -> None:
    # Songs added at the same moment: their jobs' times tie, so the id breaks the ties.
    await add_songs(db, 3, jobs_per_song=3, date_added=BASE_TIME)
    await add_songs(db, 2, jobs_per_song=1)
    expected = await newest_first(db)
    assert len(expected) == 11

    async def fetch(**arguments: Any) -> dict[str, Any]:
        jobs: dict[str, Any] = (await gql.data(ALL_JOBS, **arguments))["jobs"]
        return jobs

    last = await fetch(last=4)
    assert ids_of(last) == expected[-4:]
    assert last["pageInfo"]["hasPreviousPage"] is True
    assert last["pageInfo"]["hasNextPage"] is False

    for size in (1, 3, 4, 11):
        visited, pages = await walk_backwards(fetch, size)
        assert visited == expected, size
        assert len(visited) == len(set(visited))
        assert pages[-1]["pageInfo"]["hasPreviousPage"] is False
        assert await walk_forwards(fetch, size) == expected, size


async def test_a_page_of_songs_pages_each_songs_jobs_from_the_end_in_one_batch(
    gql: GraphQLClient, db: Database, statements: StatementCounter
) -> None:
    await add_songs(db, 20, jobs_per_song=3)
    async with db.session() as session:
        rows = (
            await session.execute(
                sa.select(Job.song_id, Job.id).order_by(Job.created_at.desc(), Job.id.desc())
            )
        ).all()
    by_song: dict[str, list[str]] = {}
    for song_id, job_id in rows:
        by_song.setdefault(global_id("Song", song_id), []).append(global_id("Job", job_id))
    query = """query($first: Int!) { songs(first: $first) { edges { node {
        id jobs(last: 2) { edges { node { id } } pageInfo { hasPreviousPage hasNextPage } }
    } } } }"""

    counts = {}
    for size in (5, 20):
        statements.reset()
        data = await gql.data(query, first=size)
        counts[size] = statements.count
        songs = [edge["node"] for edge in data["songs"]["edges"]]
        assert len(songs) == size
        for song in songs:
            assert ids_of(song["jobs"]) == by_song[song["id"]][-2:]
            assert song["jobs"]["pageInfo"] == {"hasPreviousPage": True, "hasNextPage": False}
    assert counts[5] == counts[20], statements.statements


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"first": 1, "last": 1}, "first"),
        ({"last": 2, "before": "not a cursor"}, "before"),
        ({"last": 2, "before": "bm90IGEgY3Vyc29y"}, "before"),  # base64, not a cursor
    ],
)
async def test_bad_paging_arguments_are_bad_user_input(
    gql: GraphQLClient, db: Database, arguments: dict[str, Any], field: str
) -> None:
    [song] = await add_songs(db, 1, jobs_per_song=2)
    for query, variables in (
        (SONG_JOBS, {"id": global_id("Song", song.id)}),
        (ALL_JOBS, {}),
    ):
        body = await gql(query, **variables, **arguments)
        assert body.get("errors"), body
        error = body["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert error["extensions"].get("field") == field, body


async def test_a_cursor_of_another_list_is_bad_user_input(gql: GraphQLClient, db: Database) -> None:
    song, _ = await add_songs(db, 2, jobs_per_song=2)
    songs = await gql.data("{ songs(first: 1) { pageInfo { endCursor } } }")
    foreign = songs["songs"]["pageInfo"]["endCursor"]
    for query, variables in (
        (SONG_JOBS, {"id": global_id("Song", song.id)}),
        (ALL_JOBS, {}),
    ):
        body = await gql(query, **variables, last=1, before=foreign)
        assert body.get("errors"), body
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", body
