"""The server's configuration, read from the environment once at start-up."""

import os
from dataclasses import dataclass, field

from persistence.config import DatabaseSettings


@dataclass(frozen=True, slots=True)
class AppSettings:
    """Everything `create_app` needs; each field names its environment variable."""

    database: DatabaseSettings = field(default_factory=DatabaseSettings)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "AppSettings":
        env = dict(os.environ if environ is None else environ)
        return cls(database=DatabaseSettings.from_env(env))
