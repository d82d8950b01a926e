"""Songbook's logs: a line per request, a line per slow statement, in JSON or in text.

SONGBOOK_LOG_FORMAT=json (the default in production) sends every logger's records (uvicorn's
and Songbook's) through python-json-logger, one JSON object per line; uvicorn's access log is
left out, since the request line says more. In text the server logs as it always has, with
the request lines added at INFO.

The request line (logger `songbook.requests`) carries operation_name, operation_type,
document_hash, duration_ms, status, error_codes, client_name and client_version (Apollo's
`apollographql-client-name`/`-version` headers) and trace_id; never a variable's value, an
argument or a token. A statement that takes SONGBOOK_SLOW_STATEMENT_MS or longer is logged
once (logger `songbook.sql`) with its SQL text, whose values are placeholders.
"""

import logging
import re
from typing import Any

from starlette.requests import Request

from graph.core.metrics import RequestRecord
from graph.core.settings import Settings

REQUESTS = logging.getLogger("songbook.requests")
SQL = logging.getLogger("songbook.sql")
_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,199}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e]{1,100}$")
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s"
RENAMED = {"asctime": "time", "levelname": "level", "name": "logger"}


def log_config(settings: Settings, level: str) -> dict[str, Any]:
    """uvicorn's `log_config` (logging.config.dictConfig) for these settings."""
    from uvicorn.config import LOGGING_CONFIG

    if not settings.logs_as_json:
        config: dict[str, Any] = {
            **LOGGING_CONFIG,
            "handlers": {
                **LOGGING_CONFIG["handlers"],
                "songbook": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
            },
            "loggers": {
                **LOGGING_CONFIG["loggers"],
                # The request lines only; Songbook's other loggers print as they always
                # have (Python's last-resort handler: warnings and worse, message only).
                "songbook.requests": {
                    "handlers": ["songbook"],
                    "level": level.upper(),
                    "propagate": False,
                },
            },
        }
        return config
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": JSON_FIELDS,
                "rename_fields": RENAMED,
            }
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["json"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level.upper(), "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }


def log_request(
    request: Request, record: RequestRecord, status: int, seconds: float, trace_id: str | None
) -> None:
    """The request's one line, at INFO."""
    if not REQUESTS.isEnabledFor(logging.INFO):
        return
    name = record.operation_name
    fields = {
        "operation_name": name if name and _NAME.match(name) else None,
        "operation_type": record.operation_type,
        "document_hash": record.document_hash,
        "duration_ms": round(seconds * 1000, 3),
        "status": status,
        "error_codes": record.error_codes,
        "client_name": _header(request, "apollographql-client-name"),
        "client_version": _header(request, "apollographql-client-version"),
        "trace_id": trace_id,
    }
    message = (
        f"{record.operation_type or '-'} {fields['operation_name'] or 'anonymous'} {status} "
        f"{fields['duration_ms']} ms"
        + (f" {','.join(record.error_codes)}" if record.error_codes else "")
    )
    REQUESTS.info(message, extra=fields)


def _header(request: Request, name: str) -> str | None:
    value = request.headers.get(name)
    return value if value is not None and _HEADER_VALUE.match(value) else None


def log_slow_statement(statement: str, seconds: float) -> None:
    milliseconds = round(seconds * 1000, 3)
    SQL.warning(
        "Slow statement (%s ms): %s",
        milliseconds,
        statement,
        extra={"statement": statement, "duration_ms": milliseconds},
    )
