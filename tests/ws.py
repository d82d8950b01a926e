"""A GraphQL-over-WebSocket client speaking both protocols Songbook serves on /graphql:
graphql-transport-ws (graphql-ws, Apollo, GraphiQL) and the legacy graphql-ws."""

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class GraphQLSocket:
    """One connection; `subscribe` starts an operation, `receive` reads its messages."""

    def __init__(self, connection: ClientConnection, protocol: str) -> None:
        self.connection = connection
        self.protocol = protocol
        self._ids = itertools.count(1)

    async def send(self, message: dict[str, Any]) -> None:
        await self.connection.send(orjson.dumps(message).decode())

    async def receive(self, within: float = 10.0) -> dict[str, Any]:
        """The next message other than keep-alives."""
        while True:
            raw = await asyncio.wait_for(self.connection.recv(), within)
            message: dict[str, Any] = orjson.loads(raw)
            if message["type"] in ("ka", "ping", "pong"):
                if message["type"] == "ping":
                    await self.send({"type": "pong"})
                continue
            return message

    async def subscribe(self, query: str, **variables: Any) -> str:
        id = str(next(self._ids))
        kind = "subscribe" if self.protocol == TRANSPORT_WS else "start"
        await self.send(
            {"id": id, "type": kind, "payload": {"query": query, "variables": variables}}
        )
        return id

    async def next_result(self, within: float = 10.0) -> dict[str, Any]:
        """The payload (data and/or errors) of the next event of any operation."""
        message = await self.receive(within)
        assert message["type"] in ("next", "data"), message
        payload: dict[str, Any] = message["payload"]
        return payload

    async def next_data(self, within: float = 10.0) -> dict[str, Any]:
        payload = await self.next_result(within)
        assert "errors" not in payload, payload["errors"]
        data: dict[str, Any] = payload["data"]
        return data

    async def expect_silence(self, seconds: float) -> None:
        """Fail if any message arrives within `seconds`."""
        try:
            message = await self.receive(seconds)
        except TimeoutError:
            return
        raise AssertionError(f"expected no message, got {message}")


@asynccontextmanager
async def graphql_socket(
    url: str,
    protocol: str = TRANSPORT_WS,
    init: dict[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[GraphQLSocket]:
    """A connection through its handshake (connection_init with `init` as its payload, then
    connection_ack)."""
    async with connect(url, subprotocols=[Subprotocol(protocol)], **options) as connection:
        assert connection.subprotocol == protocol
        socket = GraphQLSocket(connection, protocol)
        await socket.send({"type": "connection_init", "payload": init or {}})
        ack = await socket.receive()
        assert ack["type"] == "connection_ack", ack
        yield socket


@asynccontextmanager
async def serve_in_process(app: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn inside this event loop, so a test can look at its state
    while real WebSocket clients use it; yields the /graphql WebSocket URL."""
    import uvicorn

    from tests.live import free_port

    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="websockets-sansio"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"ws://127.0.0.1:{port}/graphql"
    finally:
        server.should_exit = True
        await task


async def eventually(condition: Any, within: float = 5.0) -> None:
    """Wait until `condition()` holds, failing after `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition never held")
        await asyncio.sleep(0.02)
