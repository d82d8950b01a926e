"""Songs: the library, newest first, searchable by title or artist."""

import enum
import functools
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from persistence.models import Song, SongSource, fold
from persistence.pagination import Count, KeyColumn, KeysetOrder, Page, PageRequest
from persistence.repositories.base import Columns, Repository, column_list


class SongSort(enum.StrEnum):
    DATE_ADDED = "date_added"
    TITLE = "title"
    ARTIST = "artist"


_SORT_COLUMNS: dict[SongSort, tuple[KeyColumn, str]] = {
    SongSort.DATE_ADDED: (Song.date_added, "date_added"),
    SongSort.TITLE: (Song.title, "title"),
    # Songs without an artist sort as if the artist were empty, on every dialect.
    SongSort.ARTIST: (sa.func.coalesce(Song.artist, ""), "artist_sort_key"),
}


@functools.cache
def song_order(sort: SongSort = SongSort.DATE_ADDED, descending: bool = True) -> KeysetOrder:
    """The order of that name; one object per order, so statements can be cached by it."""
    column, attribute = _SORT_COLUMNS[sort]
    return KeysetOrder(
        name=f"songs:{sort.value}:{'desc' if descending else 'asc'}",
        columns=(column, Song.id),
        attributes=(attribute, "id"),
        descending=descending,
    )


def escape_like(text: str) -> str:
    """Make `%`, `_` and the escape character itself match literally in LIKE."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# A search's totalCount is exact up to this many songs; past it, it says this many and
# that it is capped, rather than count a million rows.
SEARCH_COUNT_CAP = 10_000
# Songs a search looks through in the page's own order (an index's) before it turns to
# the search index instead: enough to fill a page with any term found in one song of
# 200, while a rarer term's search index lookup and sort stay small.
WALK_ROWS = 10_000
# The shortest term a trigram matches; shorter ones are served as below.
TRIGRAM = 3
# SQLite: the most trigrams a one- or two-character term is expanded into (those it
# begins); past it, the term is common enough to be found by walking in order.
MOST_EXPANDED = 300
# SQLite's search table and its vocabulary (migrations/versions/0006_index_song_search.py).
SEARCH_TABLE = "songs_search"
SEARCH_VOCABULARY = "songs_search_vocabulary"
SEARCH_KEY: sa.ColumnClause[int] = sa.literal_column("songs.search_key")


@dataclass(frozen=True, slots=True)
class SongFilter:
    search: str | None = None
    source: SongSource | None = None

    @property
    def term(self) -> str:
        """The search term as search compares it (folded); empty when there is none."""
        return fold(self.search)

    def parameters(self) -> dict[str, Any]:
        """The values `_matching`'s parameters take for this filter."""
        values: dict[str, Any] = {}
        if self.search:
            values["pattern"] = f"%{escape_like(self.term)}%"
        if self.source is not None:
            values["source"] = self.source
        return values


def _like(title: Any, artist: Any) -> sa.ColumnElement[bool]:
    # Folded text against a folded pattern: LIKE's own case rules never come into it
    # (SQLite's folds ASCII, which folded text no longer holds in capitals).
    pattern: sa.BindParameter[str] = sa.bindparam("pattern")
    return sa.or_(title.like(pattern, escape="\\"), artist.like(pattern, escape="\\"))


def _matching(searching: bool, by_source: bool) -> list[sa.ColumnElement[bool]]:
    """SongFilter's conditions with their values left as parameters (`pattern`, `source`)."""
    clauses: list[sa.ColumnElement[bool]] = []
    if searching:
        clauses.append(_like(Song.title_folded, Song.artist_folded))
    if by_source:
        clauses.append(Song.source == sa.bindparam("source"))
    return clauses


def phrase(text: str) -> str:
    """`text` as an FTS5 phrase: matched as it is, whatever it holds."""
    return '"' + text.replace('"', '""') + '"'


class Plan(enum.Enum):
    """How a page of songs is read.

    - SCAN: the songs in order, each checked (no search; or the last resort of one);
    - WALK: the first WALK_ROWS songs in order, each checked: a common term's page;
    - INDEXED: every song the search index finds, then sorted: a rare term's page.
    """

    SCAN = "scan"
    WALK = "walk"
    INDEXED = "indexed"


def _selected(columns: frozenset[str] | None, order: KeysetOrder) -> list[Any]:
    if columns is None:
        return [Song]
    sorting = order.labelled()
    named = {getattr(c, "key", None) for c in sorting}
    chosen = [c for c in column_list(Song, sorted(columns)) if c.key not in named]
    return [*chosen, *sorting]


def _search_hits(dialect: str, materialized: bool) -> sa.CTE:
    """The songs the search index finds; `materialized`, on their own: the index is read
    first and the few songs it finds sorted after, never a walk in order over a rare
    term's songs."""
    if dialect == "sqlite":
        hits: sa.Select[Any] = sa.select(sa.literal_column("rowid").label("key")).select_from(
            sa.table(SEARCH_TABLE)
        )
        hits = hits.where(sa.text(f"{SEARCH_TABLE} MATCH :match"))
    else:
        hits = sa.select(Song.id.label("key")).where(_like(Song.title_folded, Song.artist_folded))
    cte = hits.cte("hits")
    return cte.prefix_with("MATERIALIZED") if materialized else cte


def _joined_to_hits(
    statement: sa.Select[Any], dialect: str, materialized: bool = True
) -> sa.Select[Any]:
    hits = _search_hits(dialect, materialized)
    key = SEARCH_KEY if dialect == "sqlite" else Song.id
    statement = statement.join_from(hits, Song, key == hits.c.key)
    if dialect == "sqlite":
        # The index finds candidates; the rule itself decides (see `fold`).
        statement = statement.where(_like(Song.title_folded, Song.artist_folded))
    return statement


@functools.lru_cache(maxsize=512)
def _song_page(
    columns: frozenset[str] | None,
    order: KeysetOrder,
    plan: Plan,
    dialect: str,
    searching: bool,
    by_source: bool,
    backwards: bool,
    after: bool,
    before: bool,
) -> sa.Select[Any]:
    """The statement of a page of songs, built once per shape of request: what varies
    between requests of one shape is in its parameters (the filter's, the cursors'
    `after_N`/`before_N`, `limit`, and a search's `match` and `walk`)."""
    bounds = [Song.source == sa.bindparam("source")] if by_source else []
    if after:
        bounds.append(order.beyond_parameters("after"))
    if before:
        bounds.append(order.beyond_parameters("before", reverse=True))
    ordering = order.order_by(reverse=backwards)
    selected = _selected(columns, order)
    if plan is Plan.WALK:
        # The songs in order from where the page starts, WALK_ROWS of them at most, and of
        # those the ones that match: one range of the order's index, however rare the term.
        walked = (
            sa.select(Song.id, Song.title_folded, Song.artist_folded)
            .where(*bounds)
            .order_by(*ordering)
            .limit(sa.bindparam("walk"))
            .subquery("walked")
        )
        statement = (
            sa.select(*selected)
            .join_from(walked, Song, Song.id == walked.c.id)
            .where(_like(walked.c.title_folded, walked.c.artist_folded))
        )
    elif plan is Plan.INDEXED:
        statement = _joined_to_hits(sa.select(*selected), dialect).where(*bounds)
    else:
        statement = sa.select(*selected).where(*_matching(searching, False), *bounds)
    return statement.order_by(*ordering).limit(sa.bindparam("limit"))


@functools.lru_cache(maxsize=16)
def _song_count(searching: bool, by_source: bool, indexed: bool, dialect: str) -> sa.Select[Any]:
    """How many songs match; a search's count stops past SEARCH_COUNT_CAP."""
    if not searching:
        return sa.select(sa.func.count()).select_from(Song).where(*_matching(False, by_source))
    matching = sa.select(sa.literal(1))
    if indexed:
        # Streamed, not materialized: the count stops at the cap, and so does the index.
        matching = _joined_to_hits(matching, dialect, materialized=False)
        matching = matching.where(*_matching(False, by_source))
    else:
        matching = matching.select_from(Song).where(*_matching(True, by_source))
    capped = matching.limit(SEARCH_COUNT_CAP + 1).subquery("capped")
    return sa.select(sa.func.count()).select_from(capped)


class SongRepository(Repository[Song]):
    model = Song

    async def list(
        self,
        request: PageRequest,
        filter: SongFilter = SongFilter(),
        order: KeysetOrder | None = None,
        columns: Columns = None,
    ) -> Page[Any]:
        """A page of the library, newest first unless another order is given.

        `columns`: the only columns the caller will read; the page then holds plain rows
        of those (with the id and what orders them), never a lyrics nobody asked for.
        Whole songs when None.

        A search walks the page's order first (WALK_ROWS songs at most), which fills a
        page of a common term at once; a page it leaves short is read again from the
        search index, which finds a rare term's few songs wherever they are."""
        request = request.validated()
        order = order or song_order()
        parameters = {
            **filter.parameters(),
            **request.bound_values(order),
            "limit": request.size + 1,
        }
        plans = [Plan.SCAN]
        if filter.term:
            match = await self._match(filter.term)
            plans = [Plan.WALK, Plan.SCAN if match is None else Plan.INDEXED]
            parameters.update(walk=WALK_ROWS, match=match)
        for plan in plans:
            statement = _song_page(
                None if columns is None else frozenset(columns),
                order,
                plan,
                self.dialect,
                bool(filter.term),
                filter.source is not None,
                request.backwards,
                request.after is not None,
                request.before is not None,
            )
            result = await self.session.execute(statement, parameters)
            rows = list(result.scalars().all() if columns is None else result.all())
            if len(rows) > request.size:
                break  # a full page, and more beyond: no other plan can do better
        return request.page_of(rows, order)

    async def count_matching(self, filter: SongFilter = SongFilter()) -> Count:
        """How many songs the filter lets through; a search's count is capped."""
        parameters = filter.parameters()
        indexed = False
        if filter.term:
            # PostgreSQL's planner picks between its trigram index and a scan that stops
            # at the cap by itself; SQLite is told to use its search table.
            match = await self._match(filter.term) if self.dialect == "sqlite" else None
            indexed = match is not None
            parameters["match"] = match
        statement = _song_count(bool(filter.term), filter.source is not None, indexed, self.dialect)
        value = int((await self.session.execute(statement, parameters)).scalar_one())
        if filter.term and value > SEARCH_COUNT_CAP:
            return Count(SEARCH_COUNT_CAP, capped=True)
        return Count(value)

    async def _match(self, term: str) -> str | None:
        """What finds `term` in the search index: SQLite's FTS5 query (a phrase; or, for a
        term too short for trigrams, the trigrams it begins, which the stored text's two
        closing characters guarantee every occurrence has), PostgreSQL's own LIKE (its
        trigram index serves it from three characters). None when the index cannot
        narrow the search: walking in order is the way."""
        if self.dialect != "sqlite":
            return "" if len(term) >= TRIGRAM else None
        if len(term) >= TRIGRAM:
            return phrase(term)
        # Every trigram that begins with the term: those after it in the vocabulary's
        # order, up to the first that does not (U+10FFFF sorts after any character).
        trigrams = (
            (
                await self.session.execute(
                    sa.text(
                        f"SELECT term FROM {SEARCH_VOCABULARY} WHERE term >= :term "
                        "AND term < :term || char(1114111) LIMIT :most"
                    ),
                    {"term": term, "most": MOST_EXPANDED + 1},
                )
            )
            .scalars()
            .all()
        )
        if len(trigrams) > MOST_EXPANDED:
            return None
        # No trigram begins with it: nothing holds it. (An empty OR would be an error; the
        # stored text never holds three U+001F in a row.)
        return " OR ".join(phrase(t) for t in trigrams) or phrase("\x1f" * 3)

    async def get_by_youtube_id(self, youtube_id: str, columns: Columns = None) -> Any:
        """The song made from this video, or None; with `columns`, a plain row of those."""
        where = Song.youtube_id == youtube_id
        if columns is None:
            return (await self.session.scalars(sa.select(Song).where(where))).one_or_none()
        statement = sa.select(*column_list(Song, columns)).where(where)
        return (await self.session.execute(statement)).one_or_none()
