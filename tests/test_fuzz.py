"""Schema fuzzing: queries and mutations generated from schema.graphql by hypothesis-graphql,
valid and invalid, sent to a real server on each backend. None may get a 5xx, and no answer
may show a stack trace, SQL, a file path or a driver's name."""

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from tests.auth import bearer, issue_token
from tests.live import LiveServer, live_server

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = (ROOT / "schema.graphql").read_text(encoding="utf-8")
DATETIME = st.datetimes(timezones=st.just(UTC)).map(lambda moment: nodes.String(moment.isoformat()))
CUSTOM_SCALARS = {"DateTime": DATETIME}
LEAKS = re.compile(
    r"Traceback|File \"|\bSELECT\b|\bINSERT\b|\bUPDATE \w+ SET\b|sqlalchemy|asyncpg|aiosqlite|"
    r"sqlite3|psycopg|site-packages|" + re.escape(str(ROOT)),
    re.IGNORECASE,
)
EXAMPLES = 300
# Valid documents of every root field, and documents hypothesis-graphql breaks on purpose.
DOCUMENTS = st.one_of(
    from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS),
    from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, mode=Mode.NEGATIVE),
)


@pytest.fixture(scope="module")
def fuzzed(
    module_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    url = module_url
    with live_server(url, tmp_path_factory.mktemp("fuzz")) as server:
        headers = bearer(asyncio.run(issue_token(url, "admin")))
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            seed = """mutation { createSongWithJob(input: {title: "Seed", source: UPLOAD}) {
              __typename } }"""
            assert http.post("/graphql", json={"query": seed}).status_code == 200
        yield server, headers


def check(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    assert not LEAKS.search(response.text), response.text


def test_generated_documents_never_fail_the_server(
    fuzzed: tuple[LiveServer, dict[str, str]],
) -> None:
    server, headers = fuzzed
    with httpx.Client(base_url=server.url, timeout=30) as http:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            database=None,
        )
        @given(document=DOCUMENTS, admin=st.booleans(), as_graphql_response=st.booleans())
        def run(document: Any, admin: bool, as_graphql_response: bool) -> None:
            accept = (
                "application/graphql-response+json" if as_graphql_response else "application/json"
            )
            check(
                http.post(
                    "/graphql",
                    json={"query": str(document)},
                    headers={**(headers if admin else {}), "Accept": accept},
                )
            )

        run()
    assert "Traceback" not in server.log()
