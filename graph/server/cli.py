"""The `songbook` command: serve, migrate, export-schema, seed."""

import argparse
import asyncio
import sys
from pathlib import Path

from persistence.settings import DatabaseSettings, SettingsError

DEFAULT_SCHEMA_PATH = Path("schema.graphql")


def migrate(settings: DatabaseSettings) -> None:
    from persistence.migrate import upgrade

    upgrade(settings.url)


def export_schema(path: Path | None) -> None:
    from graph.schema import schema

    text = schema.as_str() + "\n"
    if path is None:
        sys.stdout.write(text)
    else:
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}", file=sys.stderr)


def serve(args: argparse.Namespace, settings: DatabaseSettings) -> None:
    import uvicorn

    from graph.core.settings import Settings

    migrate(settings)
    uvicorn.run(
        "graph.server.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        reload=args.reload,
        workers=None if args.reload else args.workers,
        log_level=args.log_level,
        # A WebSocket message larger than a request body may be is closed with 1009.
        ws_max_size=Settings.load().max_body_bytes,
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
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        settings = DatabaseSettings.load()
    except SettingsError as error:
        sys.exit(f"songbook: {error}")
    if args.command == "serve":
        if args.workers < 1:
            sys.exit("songbook: --workers must be at least 1")
        if args.workers > 1 and settings.is_sqlite:
            # Job events and the SQLite write queue live in one process's memory.
            sys.exit(
                "songbook: several server processes need PostgreSQL (set DATABASE_URL); "
                "with SQLite, live job updates would reach only the process that made them"
            )
        serve(args, settings)
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


if __name__ == "__main__":
    main()
