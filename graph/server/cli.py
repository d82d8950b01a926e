"""The `songbook` command: serve, migrate, export-schema, seed, token, backup, restore,
search."""

import argparse
import asyncio
import contextlib
import math
import sys
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from persistence.settings import DatabaseSettings, SettingsError

if TYPE_CHECKING:
    from graph.core.settings import Settings
    from persistence.repositories import ApiTokenRepository

T = TypeVar("T")

DEFAULT_SCHEMA_PATH = Path("schema.graphql")
# Exit status for settings that do not parse or are unsafe (as for bad arguments).
SETTINGS_ERROR = 2


class DatabaseUnusable(Exception):
    """The database refused, could not be reached, or does not exist: said in one line."""


@contextlib.contextmanager
def database_named(url: str) -> Iterator[None]:
    """The database at `url` refusing or out of reach, said as DatabaseUnusable."""
    from persistence.database import unavailable_reason
    from persistence.seed import database_label

    try:
        yield
    except Exception as error:
        reason = unavailable_reason(error)
        if reason is None:
            raise
        raise DatabaseUnusable(f"cannot use the database {database_label(url)}: {reason}") from None


def migrate(settings: DatabaseSettings) -> None:
    from persistence.errors import MigrationRefused
    from persistence.migrate import upgrade

    with database_named(settings.url):
        try:
            upgrade(settings.url)
        except MigrationRefused as error:
            raise DatabaseUnusable(str(error)) from None


def export_schema(path: Path | None) -> None:
    from graph.schema import schema

    text = schema.as_str() + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def serve(args: argparse.Namespace, settings: "Settings") -> None:
    import uvicorn

    from graph.server import serving
    from graph.server.logs import log_config

    migrate(settings.database)
    config = uvicorn.Config(
        "graph.server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        log_level=args.log_level,
        log_config=log_config(settings, args.log_level),
        # In JSON, the request lines (graph/server/logs.py) take the access log's place.
        access_log=not settings.logs_as_json,
        # A WebSocket message larger than a request body may be is closed with 1009.
        ws_max_size=settings.max_body_bytes,
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace),
    )
    serving.serve(config)


def backup_or_restore(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    from persistence.backup import BackupError, backup, restore
    from persistence.seed import database_label

    label = database_label(settings.url)
    try:
        with database_named(settings.url):
            if args.command == "backup":
                backup(settings.url, args.path)
                print(f"backed up {label} to {args.path}")
            else:
                revision = restore(settings.url, args.path, force=args.force)
                print(f"restored {args.path} (schema {revision}) into {label}, migrated to head")
    except BackupError as error:
        sys.exit(f"songbook: {error}")


def rebuild_search(settings: DatabaseSettings) -> None:
    from persistence.database import Database
    from persistence.search import rebuild_search
    from persistence.seed import database_label

    migrate(settings)

    async def rebuild() -> tuple[int, int]:
        db = Database(settings)
        try:
            return await rebuild_search(db)
        finally:
            await db.dispose()

    with database_named(settings.url):
        songs, refolded = asyncio.run(rebuild())
    print(
        f"rebuilt the search index of {database_label(settings.url)}: {songs} songs, "
        f"{refolded} folded again"
    )


def seed(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    from persistence.seed import database_label, seed_library

    migrate(settings)
    seeded = asyncio.run(
        seed_library(
            settings,
            songs=args.songs,
            batch_size=args.batch_size,
            pending=args.pending,
            processing=args.processing,
            random_seed=args.random_seed,
        )
    )
    unfinished = [
        f"{count} {status}"
        for count, status in ((seeded.pending, "pending"), (seeded.processing, "processing"))
        if count
    ]
    print(
        f"added {seeded.songs} songs and {seeded.jobs} jobs"
        + (f" ({', '.join(unfinished)})" if unfinished else "")
        + f" to {database_label(settings.url)}"
    )


async def _with_tokens(
    settings: DatabaseSettings, work: "Callable[[ApiTokenRepository], Awaitable[T]]"
) -> T:
    """Run `work` on the API tokens in one transaction, and close the database."""
    from persistence.database import Database
    from persistence.repositories import ApiTokenRepository

    db = Database(settings)
    try:
        async with db.transaction() as session:
            return await work(ApiTokenRepository(session))
    finally:
        await db.dispose()


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def token_create(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    from persistence.validation import clean_token_name, clean_token_role

    # Refuse bad input before the database is touched, migration included.
    name, role = clean_token_name(args.name), clean_token_role(args.role)
    migrate(settings)
    row, secret = asyncio.run(_with_tokens(settings, lambda t: t.create(name=name, role=role)))
    print(
        f"Created the API token {row.name} (role {row.role}). It is shown this once, as the "
        "last line of standard output: store it now.",
        file=sys.stderr,
    )
    print(secret)


def token_list(settings: DatabaseSettings) -> None:
    migrate(settings)
    tokens = asyncio.run(_with_tokens(settings, lambda t: t.all()))
    if not tokens:
        print("No API tokens yet: `songbook token create` makes one.", file=sys.stderr)
        return
    rows = [("NAME", "ROLE", "CREATED", "REVOKED")] + [
        (t.name, t.role.value, _when(t.created_at), _when(t.revoked_at)) for t in tokens
    ]
    widths = [max(len(cell) for cell in column) for column in zip(*rows, strict=True)]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def token_revoke(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    migrate(settings)
    if not asyncio.run(_with_tokens(settings, lambda t: t.revoke(args.name))):
        sys.exit(f"songbook: no active API token is named {args.name}")
    print(
        f"Revoked the API token {args.name.strip()}: every server refuses it within "
        "SONGBOOK_TOKEN_CACHE_SECONDS."
    )


def token(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    from persistence.errors import Conflict, ValidationError

    try:
        if args.token_command == "create":
            token_create(args, settings)
        elif args.token_command == "list":
            token_list(settings)
        elif args.token_command == "revoke":
            token_revoke(args, settings)
    except (ValidationError, Conflict) as error:
        sys.exit(f"songbook: {error.message}")


def add_token_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    token_parser = commands.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description=(
            "API tokens let programs (workers, scripts) call the API with "
            "`Authorization: Bearer <token>`. Only a token's SHA-256 is stored."
        ),
    )
    token_commands = token_parser.add_subparsers(dest="token_command", required=True)
    create_parser = token_commands.add_parser(
        "create",
        help="make a token and print it, once",
        description=(
            "Migrate, then make an API token. The token is printed alone on the last line "
            "of standard output and never again; what was made goes to stderr."
        ),
    )
    create_parser.add_argument(
        "--name",
        required=True,
        help="1 to 64 letters, digits, dots, dashes or underscores, unique among active "
        "tokens; a worker token's name is the worker's id",
    )
    create_parser.add_argument(
        "--role",
        required=True,
        metavar="reader|editor|worker|admin",
        help="what the token may do",
    )
    token_commands.add_parser(
        "list", help="list tokens: name, role, created, revoked (never the secret)"
    )
    revoke_parser = token_commands.add_parser(
        "revoke",
        help="revoke the active token of a name",
        description="Revoke the active token of this name; servers refuse it within "
        "SONGBOOK_TOKEN_CACHE_SECONDS.",
    )
    revoke_parser.add_argument("name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="songbook", description="Songbook: a GraphQL API for a karaoke song library."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve_parser = commands.add_parser("serve", help="migrate, then serve the API")
    serve_parser.add_argument("--host", default="127.0.0.1")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--reload", action="store_true", help="restart on code changes")
    serve_parser.add_argument("--workers", type=int, default=1, help="server processes")
    serve_parser.add_argument("--log-level", default="info")

    commands.add_parser("migrate", help="bring the database schema to the newest revision")

    export_parser = commands.add_parser("export-schema", help="write the schema in SDL")
    export_parser.add_argument(
        "path", nargs="?", type=Path, default=DEFAULT_SCHEMA_PATH, help="'-' for stdout"
    )

    seed_parser = commands.add_parser(
        "seed",
        help="add demo songs and jobs to the library",
        description=(
            "Migrate, then add demo songs, each with a job history, to the library. It only "
            "adds (safe to run again, or on a library in use) and never reuses a YouTube id. "
            "By default every job is final (COMPLETED or FAILED), so workers find nothing "
            "to claim; a song has stems only when its newest job COMPLETED. Progress goes "
            "to stderr; a summary line to stdout."
        ),
    )
    seed_parser.add_argument(
        "--songs",
        type=int,
        default=1000,
        metavar="N",
        help="how many songs to add (default: %(default)s)",
    )
    seed_parser.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        metavar="N",
        help="songs inserted per transaction (default: %(default)s)",
    )
    seed_parser.add_argument(
        "--pending",
        type=int,
        default=0,
        metavar="N",
        help=(
            "give N of the songs a PENDING newest job: a backlog that workers (claimJob) "
            "will take (default: %(default)s, no backlog)"
        ),
    )
    seed_parser.add_argument(
        "--processing",
        type=int,
        default=0,
        metavar="N",
        help=(
            "give N of the songs a PROCESSING newest job, claimed by a seed-worker-K whose "
            "lease has lapsed, as after a worker crash: the next claimJob takes it over "
            "and starts it again (default: %(default)s)"
        ),
    )
    seed_parser.add_argument(
        "--random-seed",
        type=int,
        default=None,
        metavar="INT",
        help=(
            "repeat the same titles, artists and job histories from run to run; ids and "
            "times are still new, and YouTube ids still never collide "
            "(default: random per run)"
        ),
    )
    search_parser = commands.add_parser(
        "search",
        help="look after the search index",
        description="Look after what song search reads: `rebuild` folds every title and "
        "artist again and rebuilds the search index from the songs (after rows were "
        "written around Songbook, in SQL by hand).",
    )
    search_commands = search_parser.add_subparsers(dest="search_command", required=True)
    search_commands.add_parser("rebuild", help="fold every song again, rebuild the index")
    backup_parser = commands.add_parser(
        "backup",
        help="write a consistent snapshot of the database to a new file",
        description="Write a consistent snapshot of the database, while servers keep "
        "writing to it: SQLite's online backup, or pg_dump's custom format on PostgreSQL "
        "(pg_dump must be on PATH).",
    )
    backup_parser.add_argument("path", type=Path, help="the snapshot file to create")
    restore_parser = commands.add_parser(
        "restore",
        help="load a snapshot into the (empty) database, then migrate it",
        description="Load a snapshot made by `songbook backup` into the configured "
        "database, which must be empty unless --force; its schema must be at a revision "
        "Songbook knows, and is migrated to the newest.",
    )
    restore_parser.add_argument("path", type=Path, help="a snapshot from songbook backup")
    restore_parser.add_argument(
        "--force", action="store_true", help="replace what the database holds"
    )
    add_token_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except SettingsError as error:
        print(f"songbook: {error}", file=sys.stderr)
        sys.exit(SETTINGS_ERROR)
    except DatabaseUnusable as error:
        sys.exit(f"songbook: {error}")


def run(args: argparse.Namespace) -> None:
    settings = DatabaseSettings.load()
    if args.command == "serve":
        from graph.core.settings import Settings

        if args.workers < 1:
            sys.exit("songbook: --workers must be at least 1")
        if args.workers > 1 and settings.is_sqlite:
            # Job events and the SQLite write queue live in one process's memory.
            sys.exit(
                "songbook: several server processes need PostgreSQL (set DATABASE_URL); "
                "with SQLite, live job updates would reach only the process that made them"
            )
        # Every setting checked before anything starts (each worker reads them again).
        serve(args, Settings.load())
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "export-schema":
        export_schema(None if str(args.path) == "-" else args.path)
    elif args.command == "seed":
        if args.songs < 0:
            sys.exit("songbook: --songs must not be negative")
        if args.batch_size < 1:
            sys.exit("songbook: --batch-size must be at least 1")
        if args.pending < 0 or args.processing < 0:
            sys.exit("songbook: --pending and --processing must not be negative")
        if args.pending + args.processing > args.songs:
            sys.exit("songbook: --pending and --processing together cannot exceed --songs")
        seed(args, settings)
    elif args.command == "token":
        token(args, settings)
    elif args.command in ("backup", "restore"):
        backup_or_restore(args, settings)
    elif args.command == "search":
        rebuild_search(settings)


if __name__ == "__main__":
    main()
