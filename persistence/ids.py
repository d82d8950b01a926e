"""Time-ordered identifiers (UUIDv7, RFC 9562).

New rows get ids that sort by creation time, so inserts land at the right-hand end of the
primary-key index instead of scattering across it.
"""

import os
import time
import uuid


def new_id() -> str:
    """A new UUIDv7 as a lowercase string."""
    unix_ms = time.time_ns() // 1_000_000
    value = (unix_ms & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value &= ~(0xF << 76)
    value |= 0x7 << 76  # version 7
    value &= ~(0x3 << 62)
    value |= 0x2 << 62  # RFC 9562 variant
    return str(uuid.UUID(int=value))


def is_valid_id(text: str) -> bool:
    """Whether `text` is a UUID in its canonical form, as `new_id` writes it."""
    try:
        return str(uuid.UUID(text)) == text
    except ValueError:
        return False
