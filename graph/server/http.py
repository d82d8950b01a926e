"""GraphQL over HTTP: media types, content negotiation and errors outside GraphQL.

The rules follow the GraphQL-over-HTTP specification. `application/json` answers stay as
legacy clients know them (200 for any well-formed request); `application/graphql-response+json`
answers say with their status whether the request ran (400, no `data`, when it did not).
"""

from typing import Any

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# The content types of answers, as sent in Content-Type.
CONTENT_TYPES = {
    GRAPHQL_RESPONSE_JSON: f"{GRAPHQL_RESPONSE_JSON}; charset=utf-8",
    JSON: JSON,
}

_HTTP_CODES = {
    400: "BAD_REQUEST",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class HTTPError(Exception):
    """A request refused before any GraphQL runs, answered as a GraphQL error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _HTTP_CODES.get(status, "BAD_REQUEST")
        self.headers = headers or {}


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value.strip())))
            except ValueError:
                return 0.0
    return 1.0


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in for an `Accept` header, or None when none is acceptable.

    No header, `*/*` and `application/*` get `application/json`, as the spec asks for
    clients that predate `application/graphql-response+json`. Between equally wanted types
    the spec's own wins.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int] | None = None
    chosen: str | None = None
    for item in accept.split(","):
        media_range, *params = item.split(";")
        media_range = media_range.strip().lower()
        quality = _quality(params)
        if quality <= 0:
            continue
        if media_range == GRAPHQL_RESPONSE_JSON:
            media_type, specificity = GRAPHQL_RESPONSE_JSON, 2
        elif media_range == JSON:
            media_type, specificity = JSON, 1
        elif media_range in ("*/*", "application/*"):
            media_type, specificity = JSON, 0
        else:
            continue
        if best is None or (quality, specificity) > best:
            best, chosen = (quality, specificity), media_type
    return chosen


def error_body(message: str, code: str) -> dict[str, Any]:
    return {"errors": [{"message": message, "extensions": {"code": code}}]}
