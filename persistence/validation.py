"""The rules every write of a song, job, user or API token follows, whoever writes it."""

import re
from typing import Any

import sqlalchemy as sa

from persistence.errors import ValidationError
from persistence.models import Job, Song, SongSource, TokenRole, User


def _text_limits() -> dict[str, int]:
    """Each text column's longest value: its declared length, or `info["max_length"]` for
    unbounded text types (lyrics, messages)."""
    limits: dict[str, int] = {}
    for model in (Song, Job, User):
        for column in model.__table__.columns:
            if isinstance(column.type, sa.String) and not isinstance(column.type, sa.Enum):
                limit = column.info.get("max_length") or column.type.length
                if limit:
                    limits.setdefault(column.key, limit)
    return limits


TEXT_LIMITS = _text_limits()
REQUIRED_SONG_TEXT = ("title", "artist")
YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,64}")
# No colon: people signed in with a JWT work as `jwt:<subject>`, never as a token.
TOKEN_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(field: str, value: str | None, *, required: bool = False) -> str | None:
    """Trim `value`, refuse it when required and empty, too long, or holding control bytes."""
    if value is None:
        if required:
            raise ValidationError(field, f"{field} is required")
        return None
    value = value.strip()
    if not value:
        if required:
            raise ValidationError(field, f"{field} must not be empty")
        return None
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        raise ValidationError(field, f"{field} must be at most {limit} characters")
    if field != "lyrics" and CONTROL_CHARACTERS.search(value):
        raise ValidationError(field, f"{field} must not contain control characters")
    return value


def clean_youtube_id(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not YOUTUBE_ID.fullmatch(value):
        raise ValidationError("youtube_id", "youtube_id must be an 11-character YouTube video id")
    return value


def clean_song(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """The cleaned columns of a song write. When updating, only the given keys are checked."""
    cleaned: dict[str, Any] = {}
    for field, value in values.items():
        if field == "youtube_id":
            cleaned[field] = clean_youtube_id(value)
        elif field == "source":
            if value is None:
                raise ValidationError("source", "source is required")
            cleaned[field] = value
        else:
            cleaned[field] = clean_text(field, value, required=field in REQUIRED_SONG_TEXT)
    if creating:
        for field in REQUIRED_SONG_TEXT:
            if field not in cleaned:
                raise ValidationError(field, f"{field} is required")
    if creating:
        check_youtube_source(cleaned.get("source"), cleaned.get("youtube_id"))
    return cleaned


def check_youtube_source(source: SongSource | None, youtube_id: str | None) -> None:
    """A song from YouTube needs its video id: checked on a new song, and on a song as an
    update would leave it."""
    if source == SongSource.YOUTUBE and not youtube_id:
        raise ValidationError("youtube_id", "a song from YouTube needs its youtube_id")


def clean_user(username: str, email: str | None) -> dict[str, Any]:
    username = username.strip()
    if not USERNAME.fullmatch(username):
        raise ValidationError(
            "username",
            "username must be 3 to 64 letters, digits, dots, dashes or underscores",
        )
    cleaned_email = None
    if email is not None and email.strip():
        cleaned_email = email.strip()
        if len(cleaned_email) > 254 or not EMAIL.fullmatch(cleaned_email):
            raise ValidationError("email", "email must be a valid address")
    return {"username": username, "email": cleaned_email}


def clean_token_name(name: str) -> str:
    name = name.strip()
    if not TOKEN_NAME.fullmatch(name):
        raise ValidationError(
            "name", "a token name must be 1 to 64 letters, digits, dots, dashes or underscores"
        )
    return name


def clean_token_role(role: str) -> TokenRole:
    try:
        return TokenRole(role.strip())
    except ValueError:
        roles = ", ".join(member.value for member in TokenRole)
        raise ValidationError("role", f"a token's role must be one of {roles}") from None
