"""Response headers that keep browsers on the safe side, on every response."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Browsers take a response for the type it declares (JSON stays JSON, never a script).
NOSNIFF = ("x-content-type-options", "nosniff")


class SecurityHeaders:
    """Adds X-Content-Type-Options: nosniff to every HTTP response, errors included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault(*NOSNIFF)
            await send(message)

        await self.app(scope, receive, send_with_headers)
