"""Bring a database's schema to the newest revision, as `songbook migrate` does."""

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from persistence.database import Database

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


def head_revision() -> str | None:
    """The newest revision this code knows: a database at it has the schema the code uses."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def schema_revisions(db: Database) -> set[str]:
    """The revisions the database's schema is at (none before the first migration)."""

    def read(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with db.session() as session:
        connection = await session.connection()
        return await connection.run_sync(read)
