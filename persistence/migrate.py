"""Bring a database's schema to the newest revision, as `songbook migrate` does."""

from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations

ROOT = Path(migrations.__file__).resolve().parent


def alembic_config(url: str) -> Config:
    """Alembic's configuration for `url`, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(ROOT))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logging"] = False
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`; safe when several processes run it at once (see env.py)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
