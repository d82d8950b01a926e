"""GraphQL over HTTP: content negotiation, status codes and error bodies, as the spec says.

`application/json` answers are what legacy clients know (200 with `data: null` and
`errors`); `application/graphql-response+json` answers carry the outcome in the status.
"""

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import AliasChoices

from graph.core.settings import Settings
from graph.server.app import create_app
from persistence.database import Database
from persistence.repositories import UserRepository
from persistence.settings import DatabaseSettings, SettingsError
from tests.factories import add_song

GRAPHQL_RESPONSE = "application/graphql-response+json"
AS_GRAPHQL_RESPONSE = {"accept": GRAPHQL_RESPONSE}
AS_JSON = {"accept": "application/json"}


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post("/graphql", json=body, headers=headers)


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body["errors"]]


async def test_each_accept_gets_its_media_type(client: httpx.AsyncClient) -> None:
    query = {"query": "{ __typename }"}
    for accept, expected in [
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        ("application/graphql-response+json,application/json;q=0.9", GRAPHQL_RESPONSE),
        ("application/json", "application/json"),
        ("*/*", "application/json"),
    ]:
        response = await post(client, query, accept=accept)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(expected), accept
        assert response.json() == {"data": {"__typename": "Query"}}
    no_accept = await client.post(
        "/graphql",
        content=b'{"query": "{ __typename }"}',
        headers={"content-type": "application/json"},
    )
    assert no_accept.headers["content-type"] == "application/json"


async def test_subscriptions_over_http_point_to_the_websocket(client: httpx.AsyncClient) -> None:
    subscription = "subscription { jobUpdated { id } }"
    for response in [
        await post(client, {"query": subscription}),
        await post(client, {"query": subscription}, **AS_GRAPHQL_RESPONSE),
        await client.get("/graphql", params={"query": subscription}),
    ]:
        assert response.status_code == 400
        assert codes(response.json()) == ["BAD_REQUEST"]
        assert "WebSocket" in response.json()["errors"][0]["message"]


async def test_a_document_of_several_operations_must_name_one(
    client: httpx.AsyncClient, db: Database
) -> None:
    document = (
        "query Count { songs { totalCount } } "
        'mutation Add { createUser(input: {username: "ada"}) { __typename } }'
    )
    for _ in range(2):  # the second time from the validation cache
        refused = await post(client, {"query": document}, **AS_GRAPHQL_RESPONSE)
        assert refused.status_code == 400
        assert codes(refused.json()) == ["GRAPHQL_VALIDATION_FAILED"]
        assert "operationName" in refused.json()["errors"][0]["message"]
        assert "data" not in refused.json()
    async with db.session() as session:
        assert await UserRepository(session).get_by_username("ada") is None

    named = await post(client, {"query": document, "operationName": "Count"})
    assert named.json() == {"data": {"songs": {"totalCount": 0}}}


async def test_answers_vary_with_accept_so_shared_caches_keep_them_apart(
    client: httpx.AsyncClient,
) -> None:
    for response in [
        await client.get("/graphql", params={"query": "{ __typename }"}, headers=AS_JSON),
        await client.get("/graphql", headers={"accept": "text/html"}),
        await client.get(
            "/graphql", params={"query": "{ __typename }"}, headers={"accept": "text/csv"}
        ),
        await post(client, {"query": "{ __typename }"}, **AS_GRAPHQL_RESPONSE),
    ]:
        assert "Accept" in response.headers["vary"].split(", "), response


@pytest.mark.parametrize(
    ("query", "variables", "code"),
    [
        ("{ songs { ", None, "GRAPHQL_PARSE_FAILED"),
        ("{ noSuchField }", None, "GRAPHQL_VALIDATION_FAILED"),
        ("query($id: ID!) { song(id: $id) { id } }", {"id": None}, "BAD_USER_INPUT"),
    ],
    ids=["parse", "validation", "variable-coercion"],
)
async def test_request_errors_are_400_without_data_under_graphql_response_json(
    client: httpx.AsyncClient, query: str, variables: Any, code: str
) -> None:
    body = {"query": query, "variables": variables}
    strict = await post(client, body, **AS_GRAPHQL_RESPONSE)
    assert strict.status_code == 400
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in strict.json()
    assert codes(strict.json()) == [code]

    # Legacy clients see exactly what they always saw.
    legacy = await post(client, body, **AS_JSON)
    assert legacy.status_code == 200
    assert legacy.headers["content-type"] == "application/json"
    assert legacy.json()["data"] is None
    assert codes(legacy.json()) == [code]


async def test_field_errors_keep_200_and_data(client: httpx.AsyncClient, db: Database) -> None:
    await add_song(db)
    body = {"query": '{ a: song(id: "not-a-global-id") { id } songs { totalCount } }'}
    response = await post(client, body, **AS_GRAPHQL_RESPONSE)
    assert response.status_code == 200
    result = response.json()
    assert result["data"] == {"a": None, "songs": {"totalCount": 1}}
    assert codes(result) == ["BAD_USER_INPUT"]


async def test_a_mutation_over_get_is_405_with_allow(
    client: httpx.AsyncClient, db: Database
) -> None:
    mutation = 'mutation { createUser(input: {username: "ada"}) { __typename } }'
    for headers in (AS_GRAPHQL_RESPONSE, AS_JSON):
        response = await client.get("/graphql", params={"query": mutation}, headers=headers)
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert codes(response.json()) == ["METHOD_NOT_ALLOWED"]
    async with db.session() as session:
        assert await UserRepository(session).get_by_username("ada") is None


async def test_queries_run_over_get(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query Q($n: Int) { songs(first: $n) { totalCount } }",
            "variables": json.dumps({"n": 1}),
            "operationName": "Q",
        },
        headers=AS_GRAPHQL_RESPONSE,
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"songs": {"totalCount": 0}}}


@pytest.mark.parametrize(
    ("content_type", "status", "code"),
    [
        ("text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("application/x-www-form-urlencoded", 415, "UNSUPPORTED_MEDIA_TYPE"),
        (None, 415, "UNSUPPORTED_MEDIA_TYPE"),
    ],
)
async def test_unsupported_request_bodies_are_415(
    client: httpx.AsyncClient, content_type: str | None, status: int, code: str
) -> None:
    headers = {"accept": GRAPHQL_RESPONSE}
    if content_type:
        headers["content-type"] = content_type
    response = await client.post(
        "/graphql", content=b'{"query": "{ __typename }"}', headers=headers
    )
    assert response.status_code == status
    assert response.headers["content-type"].startswith(GRAPHQL_RESPONSE)
    assert codes(response.json()) == [code]


async def test_unacceptable_accept_is_406(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept="text/plain")
    assert response.status_code == 406
    assert response.headers["content-type"] == "application/json"
    assert codes(response.json()) == ["NOT_ACCEPTABLE"]


@pytest.mark.parametrize(
    "body",
    [b'{ "not a JSON', b"", b'"a string"', b"42", b'{"qeury": "{ __typename }"}', b'{"query": 1}'],
    ids=["broken", "empty", "string", "number", "no-query", "query-not-string"],
)
@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
async def test_malformed_requests_are_400_with_a_json_error_body(
    client: httpx.AsyncClient, body: bytes, accept: str
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json", "accept": accept}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(accept)
    result = response.json()
    assert "data" not in result
    assert codes(result) == ["BAD_REQUEST"]
    assert result["errors"][0]["message"]


async def test_graphiql_opens_for_browsers_only(client: httpx.AsyncClient) -> None:
    page = await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "GraphiQL.createFetcher" in page.text

    # A client asking for JSON without a query learns what is missing, in JSON.
    api = await client.get("/graphql", headers={"accept": "*/*"})
    assert api.status_code == 400
    assert codes(api.json()) == ["BAD_REQUEST"]


@pytest.fixture
async def app_client(db: Database) -> AsyncIterator[Any]:
    """Makes clients of apps with custom settings over the test database."""
    clients: list[httpx.AsyncClient] = []

    async def make(**settings: Any) -> httpx.AsyncClient:
        app = create_app(Settings(database=db.settings, **settings), db=db)
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://songbook.test"
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


async def test_graphiql_can_be_switched_off(app_client: Any) -> None:
    client = await app_client(graphiql=False)
    browser = await client.get("/graphql", headers={"accept": "text/html,*/*;q=0.8"})
    assert browser.status_code == 400
    assert codes(browser.json()) == ["BAD_REQUEST"]
    html_only = await client.get("/graphql", headers={"accept": "text/html"})
    assert html_only.status_code == 406
    assert (await client.get("/graphql/assets/graphiql.min.js")).status_code == 404


async def test_graphiql_assets_are_served_locally_when_installed(
    app_client: Any, tmp_path: Path
) -> None:
    installed = await app_client()
    page = (await installed.get("/graphql", headers={"accept": "text/html"})).text
    if "/graphql/assets/" not in page:
        pytest.fail("GraphiQL's assets are not installed: run `make install` (needs npm)")
    assert "unpkg.com" not in page
    for name in ("graphiql.min.js", "graphiql.min.css", "react.production.min.js"):
        asset = await installed.get(f"/graphql/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["cache-control"] == "public, max-age=86400"
    assert (await installed.get("/graphql/assets/package.json")).status_code == 404

    offline = await app_client(graphiql_assets=tmp_path / "missing")
    page = (await offline.get("/graphql", headers={"accept": "text/html"})).text
    assert "https://unpkg.com/graphiql@4.1.2/graphiql.min.js" in page
    assert "https://unpkg.com/react@18.3.1/umd/react.production.min.js" in page
    assert (await offline.get("/graphql/assets/graphiql.min.js")).status_code == 404


def policy(response: httpx.Response) -> dict[str, list[str]]:
    """The page's Content-Security-Policy, directive by directive."""
    directives = response.headers["content-security-policy"].split(";")
    return {name: values for name, *values in (d.split() for d in directives)}


async def test_every_response_tells_browsers_not_to_sniff(app_client: Any) -> None:
    client = await app_client(cors_origins=("https://app.example",))
    responses = [
        await client.post("/graphql", json={"query": "{ __typename }"}),
        await client.post("/graphql", content=b"{", headers={"content-type": "application/json"}),
        await client.put("/graphql"),
        await client.get("/graphql", headers={"accept": "text/html"}),
        await client.get("/graphql/assets/graphiql.min.js"),
        await client.get("/graphql/assets/nothing.js"),
        await client.get("/healthz"),
        await client.get("/readyz"),
        await client.get("/nowhere"),
        await client.get("/"),
        await client.options(
            "/graphql",
            headers={"origin": "https://app.example", "access-control-request-method": "POST"},
        ),
    ]
    assert {r.status_code for r in responses} >= {200, 307, 400, 404, 405}
    for response in responses:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


async def test_graphiql_may_load_only_what_it_needs(app_client: Any, tmp_path: Path) -> None:
    """Its own scripts and styles (by nonce when inline, new each time), its fonts and
    icons (data: URLs), requests to its own origin; nothing else, and no framing."""
    installed = await app_client()
    first, second = [
        await installed.get("/graphql", headers={"accept": "text/html"}) for _ in range(2)
    ]
    csp = policy(first)
    nonce = re.search(r'<script nonce="([^"]+)">', first.text)
    assert nonce is not None and f'<style nonce="{nonce[1]}">' in first.text
    assert csp == {
        "default-src": ["'none'"],
        "script-src": ["'self'", f"'nonce-{nonce[1]}'"],
        "style-src": ["'self'", f"'nonce-{nonce[1]}'"],
        "font-src": ["data:"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "base-uri": ["'none'"],
        "form-action": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert policy(second)["script-src"] != csp["script-src"], "a nonce is used once"
    assert "unsafe" not in first.headers["content-security-policy"]
    # GraphQL answers are data, not pages: they need no policy.
    api = await installed.post("/graphql", json={"query": "{ __typename }"})
    assert "content-security-policy" not in api.headers

    offline = await app_client(graphiql_assets=tmp_path / "missing")
    cdn = policy(await offline.get("/graphql", headers={"accept": "text/html"}))
    assert "'self'" not in cdn["script-src"] and "'self'" not in cdn["style-src"]
    assert sorted(cdn["script-src"][:3]) == [
        "https://unpkg.com/graphiql@4.1.2/graphiql.min.js",
        "https://unpkg.com/react-dom@18.3.1/umd/react-dom.production.min.js",
        "https://unpkg.com/react@18.3.1/umd/react.production.min.js",
    ]
    assert cdn["style-src"][0] == "https://unpkg.com/graphiql@4.1.2/graphiql.min.css"
    assert cdn["connect-src"] == ["'self'"]


async def test_cors_allows_only_configured_origins(app_client: Any) -> None:
    preflight = {
        "origin": "https://app.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,apollographql-client-name",
    }
    closed = await app_client()
    response = await closed.options("/graphql", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    simple = await closed.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://app.example"}
    )
    assert "access-control-allow-origin" not in simple.headers

    open_ = await app_client(cors_origins=("https://app.example",))
    response = await open_.options("/graphql", headers=preflight)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "apollographql-client-name" in response.headers["access-control-allow-headers"]
    simple = await open_.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://app.example"}
    )
    assert simple.headers["access-control-allow-origin"] == "https://app.example"

    other = await open_.options("/graphql", headers={**preflight, "origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_settings_read_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SONGBOOK_GRAPHIQL": "off",
        "SONGBOOK_CORS_ORIGINS": "https://a.example, https://b.example/",
        "SONGBOOK_TRUSTED_DOCUMENTS": str(tmp_path / "manifest.json"),
        "SONGBOOK_APQ_MAX_DOCUMENTS": "5",
        "SONGBOOK_APQ_CACHE_SIZE": "0",
        "SONGBOOK_DB_POOL_PRE_PING": "no",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.load()
    assert settings.graphiql is False
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    assert settings.trusted_documents == tmp_path / "manifest.json"
    assert (settings.apq_max_documents, settings.apq_cache_size) == (5, 0)
    assert settings.database.pool_pre_ping is False


def test_settings_default_and_refuse_what_does_not_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SONGBOOK_GRAPHIQL", "SONGBOOK_CORS_ORIGINS", "SONGBOOK_TRUSTED_DOCUMENTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SONGBOOK_APQ_CACHE_SIZE", "")  # empty counts as unset
    defaults = Settings.load()
    assert defaults.graphiql_on is True and defaults.cors_origins == ()
    assert defaults.trusted_documents is None and defaults.apq_cache_size == 1_000
    # One rule for every switch, and the value itself is never repeated back.
    for name, value, expected in [
        ("SONGBOOK_GRAPHIQL", "maybe-secret", "SONGBOOK_GRAPHIQL must be on or off"),
        ("SONGBOOK_DB_ECHO", "maybe-secret", "SONGBOOK_DB_ECHO must be on or off"),
        ("SONGBOOK_APQ_MAX_DOCUMENTS", "-1", "SONGBOOK_APQ_MAX_DOCUMENTS must be at least 0"),
        ("SONGBOOK_JOB_LEASE_SECONDS", "0", "SONGBOOK_JOB_LEASE_SECONDS must be more than 0"),
    ]:
        with monkeypatch.context() as patch:
            patch.setenv(name, value)
            with pytest.raises(SettingsError) as refused:
                Settings.load()
            assert str(refused.value).startswith(expected)
            assert value not in str(refused.value) or value == "0"


async def test_other_methods_are_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.head("/graphql", params={"query": "{ __typename }"})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        other = await client.request(method, "/graphql", json={"query": "{ __typename }"})
        assert other.status_code == 405, method
        assert other.headers["allow"] == "GET, POST"
        assert other.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


def test_the_readme_documents_every_setting() -> None:
    """The README's table lists exactly the variables the settings read."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE))
    declared = set()
    for model in (Settings, DatabaseSettings):
        for field in model.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                declared.add(str(alias.choices[0]))
    assert documented == declared
