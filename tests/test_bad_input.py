"""Every bad input gets a clear error and leaves the data as it was."""

import asyncio
import base64
import json
import threading
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.models import Job, JobStatus, Song, SongSource, User
from persistence.settings import DatabaseSettings
from tests.conftest import GraphQLClient
from tests.factories import add_song, global_id


@pytest.fixture
def gql(admin_gql: GraphQLClient) -> GraphQLClient:
    """Every call as an admin, who may act for any worker: these tests are about bad input, not
    about roles (tests/test_auth.py is)."""
    return admin_gql


CREATE = """mutation($input: CreateSongInput!) { createSong(input: $input) { __typename
  ... on CreateSongSuccess { song { id } }
  ... on ValidationError { message field }
  ... on ConflictError { message existingSong { id title } } } }"""

CREATE_WITH_JOB = """mutation($input: CreateSongInput!) { createSongWithJob(input: $input) {
  __typename ... on Error { message } } }"""

UPDATE_JOB = """mutation($input: UpdateJobInput!) { updateJob(input: $input) { __typename
  ... on UpdateJobSuccess { job { progress } }
  ... on ValidationError { message field }
  ... on NotFoundError { message id } } }"""


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    async with db.session() as session:
        return {
            model.__tablename__: [
                tuple(row) for row in (await session.execute(sa.select(model.__table__))).all()
            ]
            for model in (Song, Job, User)
        }


def song_input(**fields: Any) -> dict[str, Any]:
    return {"title": "Hello", "artist": "Adele", "source": "UPLOAD", **fields}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 1000}, "title"),
        ({"artist": ""}, "artist"),
        ({"album": "y" * 301}, "album"),
        ({"title": "bad\x00byte"}, "title"),
        ({"source": "YOUTUBE"}, "youtubeId"),
        ({"source": "YOUTUBE", "youtubeId": "not a youtube id"}, "youtubeId"),
        ({"lyrics": "z" * 100_001}, "lyrics"),
    ],
)
async def test_invalid_song_fields_are_refused(
    fields: dict[str, Any], field: str, gql: GraphQLClient, db: Database
) -> None:
    await add_song(db)
    before = await snapshot(db)
    for mutation, name in ((CREATE, "createSong"), (CREATE_WITH_JOB, "createSongWithJob")):
        result = (await gql.data(mutation, input=song_input(**fields)))[name]
        assert result["__typename"] == "ValidationError"
        assert result["message"]
        if "field" in result:
            assert result["field"] == field
    assert await snapshot(db) == before


UPDATE = """mutation($input: UpdateSongInput!) {
  updateSong(input: $input) { __typename ... on ValidationError { field message } } }"""


@pytest.mark.parametrize(
    ("source", "fields", "field"),
    [
        (SongSource.UPLOAD, {"source": None}, "source"),
        (SongSource.UPLOAD, {"source": "YOUTUBE"}, "youtubeId"),
        (SongSource.YOUTUBE, {"youtubeId": None}, "youtubeId"),
        (SongSource.YOUTUBE, {"youtubeId": "  "}, "youtubeId"),
        (SongSource.UPLOAD, {"title": "   "}, "title"),
    ],
)
async def test_an_update_cannot_leave_a_song_that_could_not_be_created(
    source: SongSource,
    fields: dict[str, Any],
    field: str,
    gql: GraphQLClient,
    db: Database,
) -> None:
    youtube_id = "dQw4w9WgXcQ" if source is SongSource.YOUTUBE else None
    song = await add_song(db, source=source, youtube_id=youtube_id)
    before = await snapshot(db)
    update = {"id": global_id("Song", song.id), **fields}
    result = (await gql.data(UPDATE, input=update))["updateSong"]
    assert result["__typename"] == "ValidationError"
    assert result["field"] == field
    assert await snapshot(db) == before


async def test_duplicate_youtube_id_is_a_conflict_naming_the_song(
    gql: GraphQLClient, db: Database
) -> None:
    first = await gql.data(CREATE, input=song_input(source="YOUTUBE", youtubeId="dQw4w9WgXcQ"))
    before = await snapshot(db)
    again = (
        await gql.data(
            CREATE, input=song_input(title="Other", source="YOUTUBE", youtubeId="dQw4w9WgXcQ")
        )
    )["createSong"]
    assert again["__typename"] == "ConflictError"
    assert again["existingSong"]["id"] == first["createSong"]["song"]["id"]
    assert await snapshot(db) == before


async def test_racing_duplicates_leave_exactly_one_song(gql: GraphQLClient, db: Database) -> None:
    results = await asyncio.gather(
        *(
            gql.data(
                CREATE_WITH_JOB,
                input=song_input(title=f"Race {n}", source="YOUTUBE", youtubeId="9bZkp7q19f0"),
            )
            for n in range(8)
        )
    )
    kinds = sorted(result["createSongWithJob"]["__typename"] for result in results)
    assert kinds == ["ConflictError"] * 7 + ["CreateSongWithJobSuccess"]
    snap = await snapshot(db)
    assert len(snap["songs"]) == 1
    assert len(snap["jobs"]) == 1


async def test_create_song_with_job_leaves_nothing_when_the_job_insert_fails(
    gql: GraphQLClient, db: Database
) -> None:
    """The database itself refuses the second insert (a trigger); the song must go too."""
    async with db.transaction() as session:
        if db.dialect == "sqlite":
            await session.execute(
                sa.text(
                    "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'no jobs today'); END"
                )
            )
        else:
            await session.execute(
                sa.text(
                    "CREATE FUNCTION refuse_jobs() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no jobs today'; END $$ LANGUAGE plpgsql"
                )
            )
            await session.execute(
                sa.text(
                    "CREATE TRIGGER refuse_jobs BEFORE INSERT ON jobs FOR EACH ROW EXECUTE FUNCTION refuse_jobs()"
                )
            )
    try:
        body = await gql(CREATE_WITH_JOB, input=song_input())
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert "no jobs today" not in str(body)
        assert await snapshot(db) == {"songs": [], "jobs": [], "users": []}
    finally:
        async with db.transaction() as session:
            await session.execute(
                sa.text("DROP TRIGGER refuse_jobs" + ("" if db.dialect == "sqlite" else " ON jobs"))
            )
            if db.dialect != "sqlite":
                await session.execute(sa.text("DROP FUNCTION refuse_jobs()"))


MISSING_KEY = "01900000-0000-7000-8000-000000000000"
MALFORMED_IDS = [
    "",  # empty
    "nope",  # not base64
    "%%%",
    "Song:1",
    global_id("Song", "not-a-uuid"),  # a key that is not a UUID
    global_id("Playlist", MISSING_KEY),  # a type Songbook does not have
    global_id("", MISSING_KEY),
]
# Every query and mutation that takes an id: (operation, the argument, the type it names).
ID_ENTRY_POINTS = [
    ("query($id: ID!) { node(id: $id) { id } }", "id", None),
    ("query($id: ID!) { song(id: $id) { id } }", "id", "Song"),
    ("query($id: ID!) { job(id: $id) { id } }", "id", "Job"),
    ("query($id: ID!) { user(id: $id) { id } }", "id", "User"),
    ('mutation($id: ID!) { updateSong(input: {id: $id, title: "x"}) { ...R } }', "id", "Song"),
    ("mutation($id: ID!) { deleteSong(id: $id) { ...R } }", "id", "Song"),
    ("mutation($id: ID!) { updateJob(input: {id: $id, progress: 5}) { ...R } }", "id", "Job"),
    ("mutation($id: ID!) { retryJob(songId: $id) { ...R } }", "songId", "Song"),
    (
        'mutation($id: ID!) { reportJobProgress(jobId: $id, workerId: "w", progress: 5) { ...R } }',
        "jobId",
        "Job",
    ),
    ('mutation($id: ID!) { completeJob(jobId: $id, workerId: "w") { ...R } }', "jobId", "Job"),
    (
        'mutation($id: ID!) { failJob(jobId: $id, workerId: "w", message: "m") { ...R } }',
        "jobId",
        "Job",
    ),
]
RESULT = "fragment R on Error { __typename ... on NotFoundError { id } }"


def _document(operation: str) -> str:
    return f"{operation} {RESULT}" if "...R" in operation else operation


@pytest.mark.parametrize("malformed", MALFORMED_IDS)
async def test_a_malformed_id_is_bad_user_input_at_every_entry_point(
    malformed: str, gql: GraphQLClient, db: Database
) -> None:
    await add_song(db, jobs_per_song=1)
    before = await snapshot(db)
    for operation, argument, _ in ID_ENTRY_POINTS:
        body = await gql(_document(operation), id=malformed)
        # Null where the field may be null (queries), else no data at all (mutations).
        assert body["data"] is None or set(body["data"].values()) == {None}, operation
        (error,) = body["errors"]
        assert error["message"] == f"{argument} is not a valid id", operation
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": argument}, operation
    assert await snapshot(db) == before


async def test_an_id_of_nothing_is_null_in_queries_and_not_found_in_mutations(
    gql: GraphQLClient, db: Database
) -> None:
    song = await add_song(db, jobs_per_song=1)
    async with db.session() as session:
        job_key = (await session.scalars(sa.select(Job.id))).one()
    existing = {"Song": global_id("Song", song.id), "Job": global_id("Job", job_key)}
    before = await snapshot(db)
    for operation, _, type_name in ID_ENTRY_POINTS:
        if type_name is None:
            nothing = [global_id(name, MISSING_KEY) for name in ("Song", "Job", "User")]
        else:
            # An id of nothing of the type, and the id of another type's object.
            others = [id for name, id in existing.items() if name != type_name]
            nothing = [global_id(type_name, MISSING_KEY), *others]
        for id in nothing:
            (result,) = (await gql.data(_document(operation), id=id)).values()
            if operation.startswith("query"):
                assert result is None, (operation, id)
            else:
                assert result == {"__typename": "NotFoundError", "id": id}, (operation, id)
    assert await snapshot(db) == before


@pytest.mark.parametrize("progress", [-1, 101, 10_000])
async def test_progress_outside_0_to_100_is_refused(
    progress: int, gql: GraphQLClient, db: Database
) -> None:
    await add_song(db, jobs_per_song=1, job_status=JobStatus.PROCESSING)
    async with db.session() as session:
        job_id = (await session.scalars(sa.select(Job.id))).one()
    before = await snapshot(db)
    result = (
        await gql.data(UPDATE_JOB, input={"id": global_id("Job", job_id), "progress": progress})
    )["updateJob"]
    assert result == {
        "__typename": "ValidationError",
        "message": "progress must be between 0 and 100",
        "field": "progress",
    }
    assert await snapshot(db) == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ("first: -1", "first must not be negative"),
        ("first: 10000", "first must be at most 100"),
        ("last: 101", "last must be at most 100"),
        ("first: 1, last: 1", "Pass either first or last, not both"),
        ('after: "garbage"', "after is not a valid cursor for this list"),
        ('before: "WyJqb2JzIl0"', "before is not a valid cursor for this list"),
    ],
)
async def test_bad_page_arguments(arguments: str, message: str, gql: GraphQLClient) -> None:
    body = await gql(f"{{ songs({arguments}) {{ edges {{ cursor }} }} }}")
    assert body["data"] is None
    assert body["errors"][0]["message"] == message
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_cursor_from_another_order_is_refused(gql: GraphQLClient, db: Database) -> None:
    await add_song(db)
    cursor = (await gql.data("{ songs { edges { cursor } } }"))["songs"]["edges"][0]["cursor"]
    body = await gql(
        "query($c: String) { songs(after: $c, orderBy: {field: TITLE}) { edges { cursor } } }",
        c=cursor,
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def forged_cursor(order: str, key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps([order, key]).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("field", "order", "key"),
    [
        ("songs", "songs:date_added:desc", ["x", "y"]),
        ("songs", "songs:date_added:desc", [{"t": "2026-01-01T00:00:00"}, "y"]),
        ("songs", "songs:date_added:desc", [{"t": "2026-01-01T00:00:00+00:00"}, 7]),
        ("songs(orderBy: {field: TITLE, direction: ASC}, ", "songs:title:asc", [1, 2]),
        ("songs(orderBy: {field: ARTIST}, ", "songs:artist:desc", [True, "y"]),
        ("jobs", "jobs:created_at:desc", [None, "y"]),
    ],
)
async def test_forged_cursors_are_refused(
    field: str, order: str, key: list[Any], gql: GraphQLClient, db: Database
) -> None:
    await add_song(db)
    selection = f"{field}after: $c)" if field.endswith(", ") else f"{field}(after: $c)"
    body = await gql(
        f"query($c: String) {{ {selection} {{ edges {{ cursor }} }} }}", c=forged_cursor(order, key)
    )
    assert body["data"] is None
    assert body["errors"][0]["message"] == "after is not a valid cursor for this list"
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_search_text_is_never_sql(gql: GraphQLClient, db: Database) -> None:
    await add_song(db, title="Bobby Tables")
    before = await snapshot(db)
    for text in ["'; DROP TABLE songs; --", '" OR ""="', "%' OR '1'='1", "\\", "_%_", "x" * 200]:
        data = await gql.data("query($s: String) { songs(search: $s) { totalCount } }", s=text)
        assert data["songs"]["totalCount"] == 0
    body = await gql("query($s: String) { songs(search: $s) { totalCount } }", s="x" * 201)
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert await snapshot(db) == before


async def test_malformed_requests(client: httpx.AsyncClient) -> None:
    bad_json = await client.post(
        "/graphql", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 400
    syntax = (await client.post("/graphql", json={"query": "{ songs { "})).json()
    assert syntax["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    unknown = (await client.post("/graphql", json={"query": "{ nope }"})).json()
    assert unknown["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    coercion = (
        await client.post(
            "/graphql",
            json={
                "query": "query($n: Int) { songs(first: $n) { totalCount } }",
                "variables": {"n": "ten"},
            },
        )
    ).json()
    assert coercion["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_queries_deeper_than_the_limit_are_refused(gql: GraphQLClient) -> None:
    deep = "{ songs { edges { node { jobs { edges { node { song { jobs { edges { node { song { jobs { edges { node { id } } } } } } } } } } } } } } }"
    body = await gql(deep)
    assert body.get("data") is None
    # 15 fields nested; it also asks for too many nodes, reported after the depth.
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "depth",
        "measured": 15,
        "allowed": 12,
    }
    assert "depth" in body["errors"][0]["message"]
    assert await gql(deep) == body


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/songbook",
        "sqlite+aiosqlite:////nonexistent-directory/songbook.db",
    ],
)
async def test_unreachable_database_is_reported_without_details(url: str) -> None:
    threads_before = set(threading.enumerate())
    db = Database(DatabaseSettings(url=url, connect_timeout=2))
    app = create_app(Settings(database=db.settings), db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://songbook.test"
    ) as client:
        for query in [
            "{ songs { totalCount } }",
            'mutation { createSong(input: {title: "a", artist: "b", source: LOCAL}) { __typename } }',
        ]:
            body = (await client.post("/graphql", json={"query": query})).json()
            error = body["errors"][0]
            assert error["extensions"]["code"] == "DATABASE_UNAVAILABLE"
            assert error["message"] == "The database is unavailable"
            assert "nonexistent" not in str(body) and "127.0.0.1" not in str(body)

        # A persisted query looked up by its hash alone needs the database too.
        hash_only = {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}
        for accept, status in [
            ("application/json", 200),
            ("application/graphql-response+json", 503),
        ]:
            response = await client.get(
                "/graphql",
                params={"extensions": json.dumps(hash_only)},
                headers={"accept": accept},
            )
            assert response.status_code == status
            assert response.json()["errors"] == [
                {
                    "message": "The database is unavailable",
                    "extensions": {"code": "DATABASE_UNAVAILABLE"},
                }
            ]
    await db.dispose()
    # A connection that failed to open left no thread behind (aiosqlite's worker would
    # otherwise call into this test's event loop after it closed).
    new_threads = set(threading.enumerate()) - threads_before
    assert [t for t in new_threads if "_connection_worker_thread" in t.name] == []


VALUE_CASES = [
    ("query($v: Int) { songs(first: $v) { totalCount } }", "secret-int-1"),
    ("query($v: Int) { songs(first: $v) { totalCount } }", 2**40),
    ("query($v: String) { songs(search: $v) { totalCount } }", {"secret": "secret-string-2"}),
    ("query($v: SongSource) { songs(source: $v) { totalCount } }", "secret-enum-3"),
    ("query($v: ID!) { song(id: $v) { id } }", ["secret-id-4"]),
    ("query($v: SongOrder) { songs(orderBy: $v) { totalCount } }", {"field": "secret-5"}),
    ("query($v: SongOrder) { songs(orderBy: $v) { totalCount } }", {"fild": "secret-6"}),
    (
        "mutation($v: CreateSongInput!) { createSong(input: $v) { __typename } }",
        {"title": 7, "artist": "secret-7", "source": "UPLOAD"},
    ),
]


@pytest.mark.parametrize(("query", "value"), VALUE_CASES)
async def test_a_variable_that_does_not_coerce_is_named_but_its_value_never_repeated(
    client: httpx.AsyncClient, query: str, value: Any
) -> None:
    response = await client.post("/graphql", json={"query": query, "variables": {"v": value}})
    errors = response.json()["errors"]
    for error in errors:
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("Variable '$v' "), error
    for part in ("secret", "1099511627776"):
        assert part not in response.text, errors


async def test_a_nul_character_is_bad_input_on_every_backend(
    client: httpx.AsyncClient, db: Database, backend_name: str
) -> None:
    """PostgreSQL refuses NUL in text, where SQLite takes it: a write is refused either way,
    and a search with one is bad input or no match, never an internal error."""
    search = (
        await client.post(
            "/graphql", json={"query": '{ songs(search: "a\\u0000") { totalCount } }'}
        )
    ).json()
    create = (
        await client.post(
            "/graphql",
            json={
                "query": CREATE,
                "variables": {"input": {"title": "a\x00b", "artist": "c", "source": "UPLOAD"}},
            },
        )
    ).json()
    assert create["data"]["createSong"]["__typename"] == "ValidationError"
    assert (await snapshot(db))["songs"] == []
    if backend_name == "postgresql":
        assert search["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        assert "NUL" in search["errors"][0]["message"]
    else:
        assert search == {"data": {"songs": {"totalCount": 0}}}
