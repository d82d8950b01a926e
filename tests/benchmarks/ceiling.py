"""The hand-written ceiling: the benchmark operations served the way a good engineer writes
a fast read endpoint by hand, to measure Songbook against (tests/benchmarks/compiled.py).

Starlette, SQLAlchemy Core over the tables' metadata (no ORM, no session), the async
driver, orjson. One route per operation; each takes the operation's variables as a JSON
body and answers exactly the bytes Songbook answers for the GraphQL document beside it
(tests/test_ceiling.py checks that). Each statement is built once; each request takes one
pooled connection in autocommit mode (a read needs no transaction of its own) and sends
one statement, two for songs with their jobs. Nothing here is checked beyond what the
queries need: bad input is a plain 400.

    python -m uvicorn tests.benchmarks.ceiling:create_app --factory  (reads DATABASE_URL)
"""

import base64
import binascii
import functools
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from persistence.errors import ValidationError
from persistence.ids import is_valid_id
from persistence.models import Base
from persistence.pagination import MAX_PAGE_SIZE, decode_cursor
from persistence.repositories.jobs import NEWEST_FIRST
from persistence.repositories.songs import escape_like, song_order
from persistence.settings import DatabaseSettings

SONG_FIELDS = """id title artist album source youtubeId filePath vocalsPath
          instrumentalPath dateAdded latestJob { status progress }"""
# The GraphQL operation each route stands for, with the same variables.
LIBRARY = f"""query Library($first: Int!, $after: String) {{
  songs(first: $first, after: $after) {{
    edges {{ node {{ {SONG_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }} }} }}"""
SEARCH = f"""query Search($first: Int!, $search: String!) {{
  songs(first: $first, search: $search) {{
    edges {{ node {{ {SONG_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }} }} }}"""
SONGS_WITH_JOBS = """query SongsWithJobs($first: Int!) {
  songs(first: $first) {
    edges { node { id title
      jobs(first: 10) {
        edges { node { id status progress message createdAt } }
        pageInfo { hasNextPage endCursor } } } }
    pageInfo { hasNextPage endCursor } } }"""
NODE = f"""query Node($id: ID!) {{
  node(id: $id) {{ __typename id ... on Song {{ {SONG_FIELDS.removeprefix("id ")} }} }} }}"""

SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]
SONG_ORDER = song_order()  # the library's default: newest first
JOBS_PER_SONG = 10

SONG_COLUMNS = [
    SONGS.c[name]
    for name in (
        "id", "title", "artist", "album", "source", "youtube_id", "file_path",
        "vocals_path", "instrumental_path", "date_added",
    )
]  # fmt: skip


def global_id(type_name: str, key: str) -> str:
    # Songbook's codec (graph.core.relay) lives beside Strawberry's types, so it is
    # written out again here: base64 of `TypeName:key`.
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


def _newest_job_id() -> sa.ScalarSelect[Any]:
    newer = JOBS.alias("newer")
    return (
        sa.select(newer.c.id)
        .where(newer.c.song_id == SONGS.c.id)
        .order_by(newer.c.created_at.desc(), newer.c.id.desc())
        .limit(1)
        .correlate(SONGS)
        .scalar_subquery()
    )


def _with_latest_job(columns: list[sa.Column[Any]]) -> sa.Select[Any]:
    return sa.select(*columns, JOBS.c.status, JOBS.c.progress).select_from(
        SONGS.outerjoin(JOBS, JOBS.c.id == _newest_job_id())
    )


@functools.cache
def song_page(after: bool, search: bool) -> sa.Select[Any]:
    """A page of songs with their newest job, newest first, `limit` rows."""
    statement = _with_latest_job(SONG_COLUMNS)
    if after:
        key = sa.tuple_(SONGS.c.date_added, SONGS.c.id)
        bound = sa.tuple_(
            sa.bindparam("after_date", type_=SONGS.c.date_added.type), sa.bindparam("after_id")
        )
        statement = statement.where(key < bound)
    if search:
        pattern: sa.BindParameter[str] = sa.bindparam("pattern")
        statement = statement.where(
            sa.or_(
                SONGS.c.title.ilike(pattern, escape="\\"),
                SONGS.c.artist.ilike(pattern, escape="\\"),
            )
        )
    return statement.order_by(SONGS.c.date_added.desc(), SONGS.c.id.desc()).limit(
        sa.bindparam("limit")
    )


SONG_BY_ID = _with_latest_job(SONG_COLUMNS).where(SONGS.c.id == sa.bindparam("id"))
JOB_EXISTS = sa.select(JOBS.c.id).where(JOBS.c.id == sa.bindparam("id"))
TITLES_PAGE = (
    sa.select(SONGS.c.id, SONGS.c.title, SONGS.c.date_added)
    .order_by(SONGS.c.date_added.desc(), SONGS.c.id.desc())
    .limit(sa.bindparam("limit"))
)
_rank = (
    sa.func.row_number()
    .over(partition_by=JOBS.c.song_id, order_by=(JOBS.c.created_at.desc(), JOBS.c.id.desc()))
    .label("rank")
)
_ranked = (
    sa.select(
        JOBS.c.id,
        JOBS.c.song_id,
        JOBS.c.status,
        JOBS.c.progress,
        JOBS.c.message,
        JOBS.c.created_at,
        _rank,
    )
    .where(JOBS.c.song_id.in_(sa.bindparam("song_ids", expanding=True)))
    .subquery()
)
JOB_PAGES = (
    sa.select(_ranked)
    .where(_ranked.c.rank <= JOBS_PER_SONG + 1)
    .order_by(_ranked.c.song_id, _ranked.c.rank)
)


class BadRequest(Exception):
    pass


def _page_size(variables: dict[str, Any]) -> int:
    first = variables.get("first")
    if not isinstance(first, int) or not 0 <= first <= MAX_PAGE_SIZE:
        raise BadRequest("first")
    return first


def _song(row: Any) -> dict[str, Any]:
    return {
        "id": global_id("Song", row.id),
        "title": row.title,
        "artist": row.artist,
        "album": row.album,
        "source": None if row.source is None else row.source.name,
        "youtubeId": row.youtube_id,
        "filePath": row.file_path,
        "vocalsPath": row.vocals_path,
        "instrumentalPath": row.instrumental_path,
        "dateAdded": row.date_added,
        "latestJob": (
            None if row.status is None else {"status": row.status.name, "progress": row.progress}
        ),
    }


def _page_info(rows: list[Any], size: int, cursor: str | None) -> dict[str, Any]:
    return {"hasNextPage": len(rows) > size, "endCursor": cursor}


class Ceiling:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def rows(self, statement: sa.Executable, **parameters: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(statement, parameters)).all())

    async def songs(self, variables: dict[str, Any], search: str | None) -> bytes:
        size = _page_size(variables)
        parameters: dict[str, Any] = {"limit": size + 1}
        after = variables.get("after")
        if after is not None:
            try:
                parameters["after_date"], parameters["after_id"] = decode_cursor(
                    "after", after, SONG_ORDER
                )
            except ValidationError:
                raise BadRequest("after") from None
        if search:
            parameters["pattern"] = f"%{escape_like(search)}%"
        rows = await self.rows(song_page(after is not None, bool(search)), **parameters)
        page = rows[:size]
        body = {
            "data": {
                "songs": {
                    "edges": [{"node": _song(row)} for row in page],
                    "pageInfo": _page_info(
                        rows, size, SONG_ORDER.cursor_of(page[-1]) if page else None
                    ),
                }
            }
        }
        return orjson.dumps(body)

    async def library(self, request: Request) -> Response:
        return _json(await self.songs(await _variables(request), None))

    async def search(self, request: Request) -> Response:
        variables = await _variables(request)
        search = variables.get("search")
        if not isinstance(search, str):
            raise BadRequest("search")
        return _json(await self.songs(variables, search.strip()))

    async def songs_with_jobs(self, request: Request) -> Response:
        size = _page_size(await _variables(request))
        async with self.engine.connect() as connection:
            songs = list((await connection.execute(TITLES_PAGE, {"limit": size + 1})).all())
            page = songs[:size]
            jobs: dict[str, list[Any]] = {song.id: [] for song in page}
            if page:
                result = await connection.execute(JOB_PAGES, {"song_ids": list(jobs)})
                for job in result:
                    jobs[job.song_id].append(job)
        edges = []
        for song in page:
            history = jobs[song.id]
            shown = history[:JOBS_PER_SONG]
            edges.append(
                {
                    "node": {
                        "id": global_id("Song", song.id),
                        "title": song.title,
                        "jobs": {
                            "edges": [
                                {
                                    "node": {
                                        "id": global_id("Job", job.id),
                                        "status": job.status.name,
                                        "progress": job.progress,
                                        "message": job.message,
                                        "createdAt": job.created_at,
                                    }
                                }
                                for job in shown
                            ],
                            "pageInfo": _page_info(
                                history,
                                JOBS_PER_SONG,
                                NEWEST_FIRST.cursor_of(shown[-1]) if shown else None,
                            ),
                        },
                    }
                }
            )
        cursor = SONG_ORDER.cursor_of(page[-1]) if page else None
        body = {"data": {"songs": {"edges": edges, "pageInfo": _page_info(songs, size, cursor)}}}
        return _json(orjson.dumps(body))

    async def node(self, request: Request) -> Response:
        id = (await _variables(request)).get("id")
        try:
            type_name, _, key = base64.b64decode(str(id), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeError, ValueError):
            raise BadRequest("id") from None
        if not is_valid_id(key):
            raise BadRequest("id")
        node: dict[str, Any] | None = None
        if type_name == "Song":
            rows = await self.rows(SONG_BY_ID, id=key)
            if rows:
                node = {"__typename": "Song", **_song(rows[0])}
        elif type_name == "Job":
            if await self.rows(JOB_EXISTS, id=key):
                node = {"__typename": "Job", "id": id}
        else:
            raise BadRequest("id")
        return _json(orjson.dumps({"data": {"node": node}}))


async def _variables(request: Request) -> dict[str, Any]:
    try:
        variables = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest("body") from None
    if not isinstance(variables, dict):
        raise BadRequest("body")
    return variables


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


async def _bad_request(request: Request, error: Exception) -> Response:
    return Response(f"bad {error}", status_code=400)


async def _healthz(request: Request) -> Response:
    return _json(b'{"status":"ok"}')


def create_app(url: str | None = None) -> Starlette:
    """The ceiling over the database at `url` (default: DATABASE_URL, as Songbook reads it)."""
    settings = DatabaseSettings(url=url) if url else DatabaseSettings()
    # Songbook's pool sizes (SQLite has no use for them); no pre-ping, which costs a
    # round trip per request that hand-written code would not pay.
    pool = (
        {}
        if settings.is_sqlite
        else {"pool_size": settings.pool_size, "max_overflow": settings.max_overflow}
    )
    engine = create_async_engine(settings.url, isolation_level="AUTOCOMMIT", **pool)
    ceiling = Ceiling(engine)
    app = Starlette(
        routes=[
            Route("/healthz", _healthz),
            Route("/library", ceiling.library, methods=["POST"]),
            Route("/search", ceiling.search, methods=["POST"]),
            Route("/songs-with-jobs", ceiling.songs_with_jobs, methods=["POST"]),
            Route("/node", ceiling.node, methods=["POST"]),
        ],
        exception_handlers={BadRequest: _bad_request},
    )
    app.state.engine = engine
    return app
