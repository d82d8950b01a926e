"""The compiled read path answers exactly what Strawberry's executor answers.

Two apps over one seeded library, one with the planner (SONGBOOK_COMPILED on) and one
without; every request goes to both and the answers must match byte for byte: status,
content type and body (same data, key order, errors, paths and nulls). The requests are
the operations in tests/operations/, the README's queries, hand-written documents that
reach every corner the planner covers (and the errors it hands back to Strawberry), and
documents hypothesis-graphql generates over the read schema. The planner's own counters
show that it answered the documents it should, not that it handed everything over.
"""

import asyncio
import base64
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import from_schema, nodes

from graph.core.planner import Planner
from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.migrate import upgrade
from persistence.models import Base
from persistence.seed import seed_library
from persistence.settings import DatabaseSettings
from tests.auth import bearer, issue_token
from tests.test_readme import readme_operations

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = sorted((ROOT / "tests" / "operations").glob("*.graphql"))
SCHEMA = (ROOT / "schema.graphql").read_text(encoding="utf-8")
SONGS = Base.metadata.tables["songs"]
JOBS = Base.metadata.tables["jobs"]
GENERATED = 1500  # per backend
READ_FIELDS = ["songs", "song", "songByYoutubeId", "node", "job", "jobs"]


@dataclass
class Pair:
    """The same library through both executors."""

    compiled: httpx.AsyncClient
    plain: httpx.AsyncClient
    planner: Planner
    song_ids: list[str]
    job_ids: list[str]
    youtube_id: str

    async def same(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Both answers, which must be identical; the decoded body."""
        body = {"query": query, "variables": variables or {}, **options}
        answers = [
            await c.post("/graphql", json=body, headers=headers)
            for c in (self.compiled, self.plain)
        ]
        compiled, plain = answers
        assert compiled.status_code == plain.status_code, (query, compiled.text, plain.text)
        assert compiled.headers["content-type"] == plain.headers["content-type"]
        assert compiled.content == plain.content, (query, variables)
        decoded: dict[str, Any] = compiled.json()
        return decoded

    async def answered(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """`same`, and the planner answered it (no error on the way)."""
        before = self.planner.answered
        body = await self.same(query, variables)
        assert self.planner.answered == before + 1, ("handed over", query, variables, body)
        assert "errors" not in body, body
        return body

    async def handed_over(
        self, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """`same`, and the planner left it to Strawberry."""
        before = self.planner.handed_over
        body = await self.same(query, variables)
        assert self.planner.handed_over == before + 1, ("answered", query, variables)
        return body


def global_id(type_name: str, key: str) -> str:
    return base64.b64encode(f"{type_name}:{key}".encode()).decode()


@pytest.fixture(scope="module")
def library(module_url: str) -> str:
    """60 seeded songs with their job histories, and a few that test the edges: a song
    with no job, one with no artist, text with `%`, `_` and non-ASCII letters, lyrics."""

    async def seed() -> None:
        await seed_library(
            DatabaseSettings(url=module_url), songs=60, pending=3, processing=2, random_seed=7
        )
        db = Database(DatabaseSettings(url=module_url))
        try:
            async with db.transaction() as session:
                await session.execute(
                    SONGS.insert(),
                    [
                        {"title": "100% Karaoke_Night", "artist": None, "source": "upload"},
                        {"title": "Ça plane pour moi", "artist": "Plastic Bertrand",
                         "source": "local", "lyrics": "Wham! bam!\nOu est ma femme?"},
                        {"title": "Ünïcode Ballad", "artist": "Zoë 😀", "source": "upload",
                         "album": "Ärger"},
                    ],
                )  # fmt: skip
        finally:
            await db.dispose()

    upgrade(module_url)
    asyncio.run(seed())
    return module_url


@asynccontextmanager
async def pair_on(url: str, token: bool = True, **options: Any) -> AsyncIterator[Pair]:
    db_compiled = Database(DatabaseSettings(url=url))
    db_plain = Database(DatabaseSettings(url=url))
    compiled_app = create_app(Settings(compiled=True, **options), db=db_compiled)
    plain_app = create_app(Settings(compiled=False, **options), db=db_plain)
    planner = compiled_app.state.planner
    assert isinstance(planner, Planner) and plain_app.state.planner is None
    try:
        song_ids: list[str] = []
        job_ids: list[str] = []
        youtube_id = None
        headers: dict[str, str] = {}
        if token:
            async with db_plain.read() as session:
                song_ids = list(
                    (await session.scalars(sa.select(SONGS.c.id).order_by(SONGS.c.id))).all()
                )
                job_ids = list(
                    (await session.scalars(sa.select(JOBS.c.id).order_by(JOBS.c.id))).all()
                )
                youtube_id = await session.scalar(
                    sa.select(SONGS.c.youtube_id).where(SONGS.c.youtube_id.is_not(None)).limit(1)
                )
            name = f"reader-{uuid.uuid4().hex[:8]}"
            headers = bearer(await issue_token(db_plain, "reader", name=name))

        def client(app: Any) -> httpx.AsyncClient:
            return httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://songbook.test",
                headers=headers,
            )

        async with client(compiled_app) as compiled, client(plain_app) as plain:
            yield Pair(compiled, plain, planner, song_ids, job_ids, str(youtube_id))
    finally:
        await db_compiled.dispose()
        await db_plain.dispose()


@pytest.fixture
async def pair(library: str) -> AsyncIterator[Pair]:
    async with pair_on(library) as made:
        yield made


# --- the operations clients send ------------------------------------------------------------


async def test_the_library_page_operation_is_answered_identically(pair: Pair) -> None:
    document = (ROOT / "tests" / "operations" / "LibraryPage.graphql").read_text()
    cursor = None
    for _ in range(4):  # load more, as the app does
        body = await pair.answered(document, {"first": 20, "after": cursor})
        cursor = body["data"]["songs"]["pageInfo"]["endCursor"]
    variations: list[dict[str, Any]] = [
        {"search": "a"},
        {"search": "%"},
        {"search": "_night"},
        {"search": "ZOË"},
        {"search": "   "},
        {"source": "UPLOAD", "first": 7},
        {"orderBy": {"field": "TITLE", "direction": "ASC"}},
        {"orderBy": {"field": "ARTIST"}, "first": 50},
        {"orderBy": {"field": "DATE_ADDED", "direction": "ASC"}, "first": 0},
    ]
    for variables in variations:
        await pair.answered(document, variables)


async def test_every_operation_file_is_answered_identically(pair: Pair) -> None:
    song, job = pair.song_ids[5], pair.job_ids[3]
    variables = {
        "id": global_id("Song", song),
        "jobId": global_id("Job", job),
        "songId": global_id("Song", song),
        "first": 3,
        "jobsFirst": 2,
        "youtubeId": pair.youtube_id,
    }
    for path in OPERATIONS:
        document = path.read_text()
        names = set(re.findall(r"\$(\w+)", document))
        wanted = {name: value for name, value in variables.items() if name in names}
        if document.lstrip("# \n").startswith("query") or "\nquery " in document:
            await pair.answered(document, wanted)


async def test_every_readme_query_is_answered_identically(pair: Pair) -> None:
    known = {
        "songId": global_id("Song", pair.song_ids[0]),
        "id": global_id("Song", pair.song_ids[1]),
        "jobId": global_id("Job", pair.job_ids[0]),
    }
    queries = [op for op in readme_operations() if op[0] == "query"]
    assert queries, "the README shows queries"
    for _, _, document, names in queries:
        await pair.same(document, {name: known[name] for name in names})


# --- every corner the planner covers ---------------------------------------------------------

SONG_ALL = """id title artist album source youtubeId filePath vocalsPath instrumentalPath
              lyrics dateAdded __typename"""
JOB_ALL = "id status progress message claimedBy leaseExpiresAt createdAt updatedAt __typename"


async def test_fields_aliases_fragments_and_typenames(pair: Pair) -> None:
    song = global_id("Song", pair.song_ids[2])
    job = global_id("Job", pair.job_ids[4])
    documents = [
        f"{{ songs(first: 5) {{ edges {{ node {{ {SONG_ALL} }} }} }} }}",
        f"{{ jobs(first: 6) {{ totalCount edges {{ cursor node {{ {JOB_ALL} }} }} }} }}",
        "{ __typename a: __typename songs(first: 1) { __typename pageInfo { __typename "
        "hasNextPage hasPreviousPage startCursor endCursor } edges { __typename } } }",
        f'{{ s: song(id: "{song}") {{ t: title title, ...F ... on Song {{ artist }} }} }}'
        " fragment F on Song { title album latestJob { status ...J } } fragment J on Job { id }",
        f'{{ node(id: "{song}") {{ __typename id ... on Job {{ status }} ... on Song {{ '
        f"title jobs(first: 2) {{ edges {{ node {{ {JOB_ALL} song {{ title }} }} }} }} }} }} }}",
        f'{{ node(id: "{job}") {{ id ... on Song {{ title }} ... on Job {{ {JOB_ALL} song {{'
        " id latestJob { id } } } } }",
        f'{{ job(id: "{job}") {{ song {{ title jobs {{ totalCount }} }} }} }}',
        f'{{ song(id: "{job}") {{ id }} job(id: "{song}") {{ id }} }}',
        f'{{ song(id: "{global_id("Song", "01a2f0c4-0000-7000-8000-000000000000")}") {{ id }} }}',
        f'{{ songByYoutubeId(youtubeId: " {pair.youtube_id} ") {{ id title }} }}',
        '{ songByYoutubeId(youtubeId: "nothing") { id } }',
        "{ a: songs(first: 2) { edges { node { id } } } b: songs(last: 2) { edges { node {"
        " id } } pageInfo { hasPreviousPage hasNextPage } } }",
        "{ songs(first: 3) { edges { a: node { title } b: node { latestJob { id } } } "
        "edges { cursor } } }",
        "{ songs(first: 30) { edges { node { jobs(first: 1) { edges { node { id } } } "
        "latestJob { id progress } } } } }",
        "{ songs(first: 4) { edges { node { jobs(last: 2) { pageInfo { hasNextPage "
        "hasPreviousPage } edges { cursor node { id } } } } } } }",
    ]
    for document in documents:
        await pair.answered(document)


async def test_variables_directives_and_cursors(pair: Pair) -> None:
    document = """query Q($first: Int, $after: String, $last: Int, $before: String,
        $withJobs: Boolean!, $skipTitle: Boolean = false, $order: SongOrder) {
      songs(first: $first, after: $after, last: $last, before: $before, orderBy: $order) {
        totalCount @include(if: $withJobs)
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
        edges {
          cursor
          node {
            title @skip(if: $skipTitle)
            ... @include(if: $withJobs) { latestJob { status } jobs(first: 2) { totalCount } }
            ...Artist
          }
        }
      }
    }
    fragment Artist on Song { artist @include(if: $withJobs) id }"""
    first = await pair.answered(document, {"first": 10, "withJobs": True})
    end = first["data"]["songs"]["pageInfo"]["endCursor"]
    start = first["data"]["songs"]["pageInfo"]["startCursor"]
    await pair.answered(document, {"first": 10, "after": end, "withJobs": False})
    await pair.answered(document, {"last": 5, "before": end, "withJobs": True, "skipTitle": True})
    await pair.answered(document, {"first": 3, "after": start, "before": end, "withJobs": False})
    for order in [{"field": "TITLE"}, {"field": "ARTIST", "direction": "ASC"}]:
        page = await pair.answered(document, {"first": 9, "withJobs": True, "order": order})
        cursor = page["data"]["songs"]["pageInfo"]["endCursor"]
        await pair.answered(
            document, {"first": 9, "after": cursor, "withJobs": True, "order": order}
        )
    job_page = await pair.answered(
        "{ jobs(first: 4, status: COMPLETED) { pageInfo { endCursor } } }"
    )
    cursor = job_page["data"]["jobs"]["pageInfo"]["endCursor"]
    await pair.answered(
        "query J($c: String) { jobs(first: 4, after: $c) { edges { node { id } } } }", {"c": cursor}
    )


async def test_errors_are_left_to_strawberry(pair: Pair) -> None:
    song = global_id("Song", pair.song_ids[0])
    other_order = (await pair.answered(
        '{ songs(first: 1, orderBy: {field: TITLE}) { pageInfo { endCursor } } }'
    ))["data"]["songs"]["pageInfo"]["endCursor"]  # fmt: skip
    for document, variables in [
        ("{ songs(first: 101) { edges { cursor } } }", None),
        ("{ songs(first: -1) { edges { cursor } } }", None),
        ("{ songs(first: 1, last: 1) { edges { cursor } } }", None),
        ('{ songs(after: "not a cursor") { edges { cursor } } }', None),
        ("query Q($c: String) { songs(after: $c) { edges { cursor } } }", {"c": other_order}),
        ("query Q($s: String) { songs(search: $s) { totalCount } }", {"s": "x" * 201}),
        ('{ node(id: "bm90IGFuIGlk") { id } }', None),
        ('{ song(id: "!!!") { id } }', None),
        (f'{{ song(id: "{song}") {{ jobs(first: 500) {{ totalCount }} }} }}', None),
        (f'{{ song(id: "{song}") {{ jobs(before: "x") {{ totalCount }} }} }}', None),
        ("query Q($n: Int!) { songs(first: $n) { totalCount } }", {"n": "ten"}),
        ("query Q($n: Int!) { songs(first: $n) { totalCount } }", None),
        ("{ songs { edges { node { nope } } } }", None),
        ("{ songs { edges { node { title } } }", None),
        ("{ viewer { id } }", None),
        # A field error nulls `node` while its siblings still wait on loaders' batches
        # that fields elsewhere wait on too: those must still get their rows.
        (
            f'{{ node(id: "{song}") {{ id ... on Job {{ status song {{ album }} }} ... on Song '
            "{ title latestJob { song { youtubeId latestJob { message song { dateAdded } } } }"
            f' jobs(first: -1) {{ totalCount }} }} }} song(id: "{song}") {{ latestJob {{ message'
            " claimedBy song { dateAdded } } } }",
            None,
        ),
        ("{ songs(first: 1) { totalCount } viewer { id } }", None),
        ("{ __schema { queryType { name } } }", None),
        ('mutation { retryJob(songId: "x") { __typename } }', None),
    ]:
        await pair.handed_over(document, variables)


async def test_a_persisted_query_is_answered_without_its_text(pair: Pair) -> None:
    import hashlib

    document = "query Hashed { songs(first: 2) { edges { node { title } } } }"
    sha = hashlib.sha256(document.encode()).hexdigest()
    extensions = {"persistedQuery": {"version": 1, "sha256Hash": sha}}
    # Unknown, then registered (Strawberry's path), then answered from its hash alone.
    for client in (pair.compiled, pair.plain):
        missing = await client.post("/graphql", json={"extensions": extensions})
        assert missing.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    await pair.same(document, extensions=extensions)
    before = pair.planner.answered
    answers = [
        await c.post("/graphql", json={"extensions": extensions})
        for c in (pair.compiled, pair.plain)
    ]
    assert answers[0].content == answers[1].content and answers[0].status_code == 200
    assert pair.planner.answered == before + 1


# --- generated documents ----------------------------------------------------------------------

DATETIME = st.datetimes(timezones=st.just(UTC)).map(lambda moment: nodes.String(moment.isoformat()))


def test_generated_read_queries_are_answered_identically(library: str) -> None:
    """A few thousand queries hypothesis-graphql builds from the read fields, with ids of
    real songs and jobs mixed into the generated arguments."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_generated(library))
    finally:
        loop.close()


async def _generated(url: str) -> None:
    # Generated documents nest connections freely: smaller limits keep each one quick
    # (a refused one is compared too).
    async with pair_on(url, max_nodes=2_000, max_depth=8) as pair:
        ids = [global_id("Song", k) for k in pair.song_ids[:5]] + [
            global_id("Job", k) for k in pair.job_ids[:5]
        ]
        real_ids = st.sampled_from(ids)
        documents = from_schema(
            SCHEMA,
            fields=READ_FIELDS,
            custom_scalars={"DateTime": DATETIME, "ID": real_ids.map(nodes.String)},
        )
        compared: list[str] = []
        loop = asyncio.get_running_loop()

        @settings(
            max_examples=GENERATED,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        @given(document=documents)
        def check(document: Any) -> None:
            compared.append(str(document))

        # Hypothesis draws the documents; each is then sent to both apps on this loop.
        await loop.run_in_executor(None, check)
        for document in compared:
            await pair.same(document)
        answered = pair.planner.answered
        assert answered >= len(compared) // 4, (answered, len(compared))


async def test_a_null_directive_variable_is_not_false(pair: Pair) -> None:
    document = """query Q($skip: Boolean = false) {
      songs(first: 2) { edges { node { title @skip(if: $skip) id } } } }"""
    await pair.answered(document, {"skip": False})
    body = await pair.handed_over(document, {"skip": None})
    assert body["errors"], body


async def test_page_sizes_are_measured_as_they_coerce(pair: Pair) -> None:
    """100.0 is the Int 100: measured as 100 on both paths, and never taken for a
    document's default."""
    document = """query Q($n: Int = 100) { songs(first: $n) { edges { node {
      jobs(first: $n) { edges { node { song { jobs(first: $n) { totalCount } } } } } } } } }"""
    for variables in ({"n": 100.0}, {}, {"n": 100}):
        body = await pair.handed_over(document, variables)
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
    await pair.answered(document, {"n": 3})


async def test_an_unreachable_database_is_reported_as_strawberry_reports_it() -> None:
    """Refused at connect (nothing listens on the port): one root is answered here, with
    Strawberry's error and nulls; several roots are left to Strawberry."""
    nowhere = "postgresql+asyncpg://songbook@127.0.0.1:9/songbook"
    async with pair_on(nowhere, anonymous="reader", token=False) as pair:
        song = global_id("Song", "01a2f0c4-0000-7000-8000-000000000000")
        for document in (
            "{ songs { totalCount } __typename }",
            f'{{ __typename song(id: "{song}") {{ id }} }}',
            "{ __typename }",
        ):
            before = pair.planner.answered
            await pair.same(document, headers={"Accept": "application/graphql-response+json"})
            assert pair.planner.answered == before + 1, document
        await pair.handed_over(f'{{ a: song(id: "{song}") {{ id }} b: songs {{ totalCount }} }}')
