"""Songs: the library, newest first, searchable by title or artist."""

import enum
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from persistence.models import Song, SongSource, fold
from persistence.pagination import Count, KeyColumn, KeysetOrder, Page, PageRequest
from persistence.repositories.base import Columns, Repository, column_list


class SongSort(enum.StrEnum):
    DATE_ADDED = "date_added"
    TITLE = "title"
    ARTIST = "artist"
    RELEVANCE = "relevance"


def _relevance() -> sa.ColumnElement[int]:
    """How well a song's title answers the search term (`term`, with the `prefix`, `word`
    and `anywhere` patterns it makes), from 4 to 0: the whole title, its start, a word's start,
    anywhere in it, or the artist only."""

    def like(name: str) -> sa.ColumnElement[bool]:
        return Song.title_folded.like(sa.bindparam(name), escape="\\")

    return sa.case(
        (Song.title_folded == sa.bindparam("term"), 4),
        (like("prefix"), 3),
        (like("word"), 2),
        (like("anywhere"), 1),
        else_=0,
    )


_SORT_COLUMNS: dict[SongSort, tuple[KeyColumn, ...]] = {
    SongSort.DATE_ADDED: (Song.date_added,),
    SongSort.TITLE: (Song.title,),
    # Songs without an artist sort as if the artist were empty, on every dialect. The ''
    # is written out, not bound, so that the expression is the index's own
    # (ix_songs_artist_sort), which neither database would match with a parameter.
    SongSort.ARTIST: (sa.func.coalesce(Song.artist, sa.literal_column("''", sa.String)),),
    # The most relevant first (descending), the newest first among equals.
    SongSort.RELEVANCE: (_relevance(), Song.date_added),
}
_SORT_ATTRIBUTES: dict[SongSort, tuple[str, ...]] = {
    SongSort.DATE_ADDED: ("date_added",),
    SongSort.TITLE: ("title",),
    SongSort.ARTIST: ("artist_sort_key",),
    SongSort.RELEVANCE: ("relevance", "date_added"),
}


@functools.cache
def song_order(sort: SongSort = SongSort.DATE_ADDED, descending: bool = True) -> KeysetOrder:
    """The order of that name; one object per order, so statements can be cached by it."""
    return KeysetOrder(
        name=f"songs:{sort.value}:{'desc' if descending else 'asc'}",
        columns=(*_SORT_COLUMNS[sort], Song.id),
        attributes=(*_SORT_ATTRIBUTES[sort], "id"),
        descending=descending,
    )


def by_relevance(order: KeysetOrder) -> bool:
    return order.attributes[0] == "relevance"


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
# Songs a short term's count looks through first, to tell a common term from a rare one.
PROBE_ROWS = 2000
# SQLite: a term of three characters or more that its search table finds in fewer songs
# than this is read from there at once, in any order, with no walk (a walk of a rare
# term's page reads WALK_ROWS songs to find none; these few, a millisecond or two).
FEW_HITS = 1000
# The shortest term a trigram matches; shorter ones are served as below.
TRIGRAM = 3
# SQLite: the most trigrams a one- or two-character term is expanded into (those it
# begins); past it, the term is common enough to be found by walking in order.
MOST_EXPANDED = 300
# SQLite's search table and its vocabulary (migrations/versions/0006_index_song_search.py).
SEARCH_TABLE = "songs_search"
SEARCH_VOCABULARY = "songs_search_vocabulary"
# Every column of a song but search's own: the plain rows of a whole song.
WHOLE_ROW = frozenset(
    column.key for column in Song.__table__.columns if not column.key.endswith("_folded")
)
# What closes each column in SQLite's search table, twice (see the migration).
CLOSING = "\x1f"
SEARCH_KEY: sa.ColumnClause[int] = sa.literal_column("songs.search_key")


def prefix_end(term: str) -> str | None:
    """The first string past all those that begin with `term`, in code point order (UTF-8's
    byte order, in which both databases compare the prefix indexes): the term with its
    last character one higher. None past U+10FFFF, where no such string exists."""
    last = ord(term[-1]) + 1
    if last > 0x10FFFF:
        return None
    # Surrogates are no characters: none can follow U+D7FF before U+E000.
    return term[:-1] + chr(0xE000 if 0xD800 <= last <= 0xDFFF else last)


def _begins(column: Any, dialect: str) -> list[sa.ColumnElement[bool]]:
    """`column` begins with the term: the range from `term` to `term_end`, as a prefix
    index serves it (PostgreSQL's `text_pattern_ops` compare bytes with ~>=~ and ~<~)."""
    term = sa.bindparam("term", type_=sa.Text)
    end = sa.bindparam("term_end", type_=sa.Text)
    if dialect == "sqlite":
        return [column >= term, column < end]
    return [column.op("~>=~")(term), column.op("~<~")(end)]


@dataclass(frozen=True, slots=True)
class SongFilter:
    search: str | None = None
    source: SongSource | None = None

    @property
    def term(self) -> str:
        """The search term as search compares it (folded); empty when there is none."""
        return fold(self.search)

    def parameters(self) -> dict[str, Any]:
        """The values `_matching`'s (and `_relevance`'s) parameters take for this filter."""
        values: dict[str, Any] = {}
        if self.search:
            escaped = escape_like(self.term)
            values["pattern"] = f"%{escaped}%"
            values.update(
                term=self.term,
                prefix=f"{escaped}%",
                word=f"% {escaped}%",
                anywhere=f"%{escaped}%",
                pairs=f"%{escape_like(paired(self.term))}%",
                plan_tag=term_tag(self.term),
                term_end=prefix_end(self.term),
            )
        if self.source is not None:
            values["source"] = self.source
        return values


class Matching(enum.Enum):
    """How a statement tells a song that holds the search term.

    - LIKE: the pattern, a parameter, against both folded columns; on PostgreSQL, from
      three characters, its trigram indexes can serve it;
    - PAIRS: two characters, through PostgreSQL's index of every song's text with each
      character doubled (`ix_songs_search_pairs`), where two characters are four and so
      have trigrams; strpos() then decides;
    - CHARACTER: one character, through PostgreSQL's index of the set of characters in
      each song's text (`ix_songs_search_characters`), which holds it exactly then;
    - POSITION: strpos() alone (PostgreSQL), which no index serves: for reading in order,
      where an index would only add its own reading.

    Values are always parameters, never written into the statement, where logs and
    traces would show them. On PostgreSQL a statement that may use an index also carries
    the term's `plan_tag` (`term_tag`), written into it: a keyed hash that tells nothing
    of the term, but makes each term's statement a prepared statement of its own, which
    PostgreSQL plans for that term's values. One shared by every term would switch to a
    generic plan after five runs, one plan for the commonest term and the rarest alike.
    Walks read in order by position, needing no plan of the term; and the count of two
    characters looks at the newest songs first, to read in order a pair found all over
    (`_common`).
    """

    NONE = "none"
    LIKE = "like"
    PLANNED = "planned"  # LIKE, planned for the term (PostgreSQL, three characters on)
    PAIRS = "pairs"
    CHARACTER = "character"
    POSITION = "position"

    @classmethod
    def of(cls, dialect: str, term: str) -> "Matching":
        if not term:
            return cls.NONE
        if dialect == "sqlite":
            return cls.LIKE
        if len(term) >= TRIGRAM:
            return cls.PLANNED
        return cls.PAIRS if len(term) == TRIGRAM - 1 else cls.CHARACTER

    def walking(self, dialect: str) -> "Matching":
        """How a walk in order tells the songs (see above)."""
        return self if dialect == "sqlite" or self is Matching.NONE else Matching.POSITION


# The expression `ix_songs_search_pairs` indexes, written as the index has it so that
# PostgreSQL matches the two (migrations/versions/0006_index_song_search.py).
PAIRED_TEXT = sa.literal_column(
    "regexp_replace(title_folded || ' ' || artist_folded, '(.)', '\\1\\1', 'g')", sa.Text
)


# The expression `ix_songs_search_characters` indexes, as the index has it (migrations/
# versions/0007_index_search_prefixes_and_characters.py): the characters of a song's text.
CHARACTERS = sa.literal_column(
    "string_to_array(title_folded || artist_folded, NULL)", ARRAY(sa.Text)
)


def paired(term: str) -> str:
    """`term` as it appears in the paired text: each character doubled."""
    return "".join(character * 2 for character in term)


# The key of `term_tag`, new in each process: a tag is never the same twice across runs.
_TAG_KEY = secrets.token_bytes(32)


def term_tag(term: str) -> str:
    """A tag for `term` that no one without this process's key can read it from."""
    return hmac.new(_TAG_KEY, term.encode(), hashlib.sha256).hexdigest()[:20]


def _planned_for_the_term() -> sa.ColumnElement[bool]:
    # Always true, and folded away by the planner; written into the statement text.
    tag: sa.BindParameter[str] = sa.bindparam("plan_tag", type_=sa.String, literal_execute=True)
    return tag != ""


def _like(title: Any, artist: Any, how: Matching = Matching.LIKE) -> sa.ColumnElement[bool]:
    if how is Matching.CHARACTER:
        character: sa.BindParameter[str] = sa.bindparam("term", type_=sa.Text)
        held = CHARACTERS.contains(sa.func.string_to_array(character, None))
        return sa.and_(held, _planned_for_the_term())
    if how in (Matching.POSITION, Matching.PAIRS):
        term: sa.BindParameter[str] = sa.bindparam("term")
        position = sa.or_(sa.func.strpos(title, term) > 0, sa.func.strpos(artist, term) > 0)
        if how is Matching.POSITION:
            return position
        pairs: sa.BindParameter[str] = sa.bindparam("pairs")
        return sa.and_(PAIRED_TEXT.like(pairs, escape="\\"), position, _planned_for_the_term())
    # Folded text against a folded pattern: LIKE's own case rules never come into it
    # (SQLite's folds ASCII, which folded text no longer holds in capitals).
    pattern: sa.BindParameter[str] = sa.bindparam("pattern")
    like = sa.or_(title.like(pattern, escape="\\"), artist.like(pattern, escape="\\"))
    return sa.and_(like, _planned_for_the_term()) if how is Matching.PLANNED else like


def _matching(searching: Matching, by_source: bool) -> list[sa.ColumnElement[bool]]:
    """SongFilter's conditions with their values left as parameters (`pattern`, `source`)."""
    clauses: list[sa.ColumnElement[bool]] = []
    if searching is not Matching.NONE:
        clauses.append(_like(Song.title_folded, Song.artist_folded, searching))
    if by_source:
        clauses.append(Song.source == sa.bindparam("source"))
    return clauses


def phrase(text: str) -> str:
    """`text` as an FTS5 phrase: matched as it is, whatever it holds."""
    return '"' + text.replace('"', '""') + '"'


class Plan(enum.Enum):
    """How a page of songs is read.

    - SCAN: the songs in order, each checked (no search; or the last resort of one);
    - WALK: the songs in order up to the `floor_N` key, WALK_ROWS songs past the page's
      start (the WALK_FLOOR statement finds it), each checked: a common term's page;
    - INDEXED: every song the search index finds, then sorted: a rare term's page;
    - PREFIXED: by relevance, the songs whose title begins with the term, the most
      relevant of all, in order, from the prefix index alone (their keys, then their
      rows): a page of a term that begins many titles.
    """

    SCAN = "scan"
    WALK_FLOOR = "walk floor"
    WALK = "walk"
    INDEXED = "indexed"
    PREFIXED = "prefixed"


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
        hits = sa.select(Song.id.label("key")).where(
            _like(Song.title_folded, Song.artist_folded, Matching.PLANNED)
        )
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


def _walk_floor(
    order: KeysetOrder, bounds: list[sa.ColumnElement[bool]], ordering: list[Any]
) -> sa.Select[Any]:
    """The key of the song `walk` (WALK_ROWS) songs past the start of `bounds`, in
    `ordering`: where a walk from there stops."""
    return (
        sa.select(*order.labelled())
        .where(*bounds)
        .order_by(*ordering)
        .limit(1)
        .offset(sa.bindparam("walk"))
    )


@functools.lru_cache(maxsize=512)
def _song_page(
    columns: frozenset[str] | None,
    order: KeysetOrder,
    plan: Plan,
    dialect: str,
    searching: Matching,
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
    if plan is Plan.WALK_FLOOR:
        return _walk_floor(order, bounds, ordering)
    if plan is Plan.PREFIXED:
        # The page's keys from the index alone (it carries every column they are ordered
        # and bounded by), then those few songs.
        keys = (
            sa.select(Song.id.label("key"))
            .where(*_begins(Song.title_folded, dialect), *bounds)
            .order_by(*ordering)
            .limit(sa.bindparam("limit"))
            .cte("prefixed")
            .prefix_with("MATERIALIZED")
        )
        return sa.select(*selected).join_from(keys, Song, Song.id == keys.c.key).order_by(*ordering)
    if plan is Plan.WALK:
        # Those songs in order, each checked: one bounded range of the order's index,
        # which a common term's page fills long before its end.
        bounds.append(order.within_parameters("floor", reverse=backwards))
        statement = sa.select(*selected).where(
            *_matching(searching.walking(dialect), False), *bounds
        )
    elif plan is Plan.INDEXED:
        # The matching songs, read through the search index on their own (a materialized
        # CTE fences them from the page's order and limit, which would walk an order's
        # index instead, checking each song against the few found), then sorted. Their
        # columns come along: on PostgreSQL a join back to songs was planned as a hash
        # of the whole table.
        if dialect == "sqlite":
            found = _joined_to_hits(sa.select(*selected), dialect, materialized=False)
        else:
            found = sa.select(*selected).where(
                _like(Song.title_folded, Song.artist_folded, searching)
            )
        hits = found.where(*bounds).cte("found").prefix_with("MATERIALIZED")
        descending = order.descending != backwards
        return (
            sa.select(hits)
            .order_by(
                *(
                    hits.c[name].desc() if descending else hits.c[name].asc()
                    for name in order.attributes
                )
            )
            .limit(sa.bindparam("limit"))
        )
    else:
        statement = sa.select(*selected).where(*_matching(searching, False), *bounds)
    return statement.order_by(*ordering).limit(sa.bindparam("limit"))


@functools.lru_cache(maxsize=16)
def _song_count(
    searching: Matching, by_source: bool, indexed: bool, dialect: str
) -> sa.Select[Any]:
    """How many songs match; a search's count stops past SEARCH_COUNT_CAP."""
    if searching is Matching.NONE:
        return sa.select(sa.func.count()).select_from(Song).where(*_matching(searching, by_source))
    matching = sa.select(sa.literal(1))
    if indexed and dialect == "sqlite" and not by_source:
        # SQLite's search table alone: its rows are the songs, and what it finds holds
        # the term (without U+001F: see `count_matching`), so no song need be read.
        matching = matching.select_from(sa.table(SEARCH_TABLE)).where(
            sa.text(f"{SEARCH_TABLE} MATCH :match")
        )
    elif indexed:
        # Streamed, not materialized: the count stops at the cap, and so does the index.
        matching = _joined_to_hits(matching, dialect, materialized=False)
        matching = matching.where(*_matching(Matching.NONE, by_source))
    else:
        matching = matching.select_from(Song).where(*_matching(searching, by_source))
    capped = matching.limit(SEARCH_COUNT_CAP + 1).subquery("capped")
    return sa.select(sa.func.count()).select_from(capped)


@functools.lru_cache(maxsize=2)
def _songs_begun(by_source: bool) -> sa.Select[Any]:
    """How many songs' titles, and how many songs' artists, begin with the term, up to
    past SEARCH_COUNT_CAP each (PostgreSQL's prefix indexes, migration 0007): either one
    past the cap puts the search's count past it, with no song read."""

    def begun(column: Any) -> sa.ScalarSelect[int]:
        capped = (
            sa.select(sa.literal(1))
            .where(*_begins(column, "postgresql"), *_matching(Matching.NONE, by_source))
            .limit(SEARCH_COUNT_CAP + 1)
            .subquery()
        )
        return sa.select(sa.func.count()).select_from(capped).scalar_subquery()

    return sa.select(sa.func.greatest(begun(Song.title_folded), begun(Song.artist_folded)))


# SQLite: the rows its search table finds for `match`, counted up to `few`.
_SEARCH_HITS = sa.select(sa.func.count()).select_from(
    sa.select(sa.literal(1))
    .select_from(sa.table(SEARCH_TABLE))
    .where(sa.text(f"{SEARCH_TABLE} MATCH :match"))
    .limit(sa.bindparam("few"))
    .subquery("hits")
)

# Relevance's third tier: titles in which a word (not the title) begins with the term.
WORD_TIER = 2


@functools.lru_cache(maxsize=64)
def _word_tier_walk(
    columns: frozenset[str] | None, plan: Plan, dialect: str, by_source: bool, since: bool
) -> sa.Select[Any]:
    """Relevance's word tier, newest first, as a walk: WALK_FLOOR, the key WALK_ROWS songs
    past `since_N` (or the newest), or WALK, that tier's songs up to `until_N`, as plain
    rows of the relevance order (for its cursors)."""
    newest = song_order()
    bounds = [Song.source == sa.bindparam("source")] if by_source else []
    if since:
        bounds.append(newest.beyond_parameters("since"))
    if plan is Plan.WALK_FLOOR:
        return _walk_floor(newest, bounds, newest.order_by())
    if plan is Plan.WALK:
        bounds.append(newest.within_parameters("until"))
    relevance = song_order(SongSort.RELEVANCE)
    return (
        sa.select(*_selected(columns, relevance))
        .where(_relevance() == WORD_TIER, *bounds)
        .order_by(*newest.order_by())
        .limit(sa.bindparam("limit"))
    )


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
        search index, which finds a rare term's few songs wherever they are. On SQLite,
        whose search table tells a rare term at once (fewer than FEW_HITS songs), such a
        term's page is read from the index with no walk. By relevance, which no index
        orders, the titles that begin with the term come first (Plan.PREFIXED), then
        those in which a word does (`_word_tier`); a page they leave short, the index
        answers."""
        request = request.validated()
        order = order or song_order()
        if columns is None and (by_relevance(order) or filter.term):
            # A relevance is no song's attribute, and a search may read its songs from a
            # set of its own: plain rows carry them.
            columns = WHOLE_ROW
        parameters = {
            **filter.parameters(),
            **request.bound_values(order),
            "limit": request.size + 1,
        }
        shape = (
            None if columns is None else frozenset(columns),
            order,
            self.dialect,
            Matching.of(self.dialect, filter.term),
            filter.source is not None,
            request.backwards,
            request.after is not None,
            request.before is not None,
        )

        async def read(plan: Plan) -> list[Any]:
            columns_, order_, dialect, *rest = shape
            statement = _song_page(columns_, order_, plan, dialect, *rest)
            result = await self.session.execute(statement, parameters)
            return list(result.scalars().all() if columns is None else result.all())

        if not filter.term:
            return request.page_of(await read(Plan.SCAN), order)
        if self.dialect == "sqlite" and len(filter.term) >= TRIGRAM:
            parameters["match"] = await self._match(filter.term)
            if await self._few_hits(parameters):
                return request.page_of(await read(Plan.INDEXED), order)
        if by_relevance(order) and order.descending != request.backwards and parameters["term_end"]:
            # Titles that begin with the term come first; a page full of them is the page.
            rows = await read(Plan.PREFIXED)
            if len(rows) > request.size:
                return request.page_of(rows, order)
            if order.descending and request.before is None:
                rows += await self._word_tier(request, shape[0], filter, parameters, rows)
                if len(rows) > request.size:
                    return request.page_of(rows, order)
        parameters["walk"] = WALK_ROWS
        # Relevance is no index's order: a walk in it would read every song.
        if not by_relevance(order):
            floor = (
                await self.session.execute(
                    _song_page(shape[0], order, Plan.WALK_FLOOR, *shape[2:]), parameters
                )
            ).first()
            if floor is None:
                # Fewer than WALK_ROWS songs from here on: the walk is the whole answer.
                return request.page_of(await read(Plan.SCAN), order)
            parameters.update({f"floor_{i}": value for i, value in enumerate(floor)})
            rows = await read(Plan.WALK)
            if len(rows) > request.size:
                return request.page_of(rows, order)  # a full page, and more beyond it
        parameters["match"] = match = await self._match(filter.term)
        rows = await read(Plan.SCAN if match is None else Plan.INDEXED)
        return request.page_of(rows, order)

    async def _word_tier(
        self,
        request: PageRequest,
        columns: frozenset[str] | None,
        filter: SongFilter,
        parameters: dict[str, Any],
        prefixed: Sequence[Any],
    ) -> Sequence[Any]:
        """By relevance, after every title that begins with the term (`prefixed`, the
        rest of them): the word tier, newest first, as far as a walk of WALK_ROWS songs
        finds it. The newest it finds are that tier's first, whatever lies past the walk:
        if they fill the page, they are the page."""
        values = {**parameters, "limit": request.size + 1 - len(prefixed)}
        if "after_0" in parameters:
            if parameters["after_0"] < WORD_TIER:
                return []  # the page starts past this tier
            if parameters["after_0"] == WORD_TIER:
                values.update(since_0=parameters["after_1"], since_1=parameters["after_2"])
        shape = (self.dialect, filter.source is not None, "since_0" in values)
        floor = (
            await self.session.execute(
                _word_tier_walk(columns, Plan.WALK_FLOOR, *shape), {**values, "walk": WALK_ROWS}
            )
        ).first()
        # Fewer than WALK_ROWS songs from there on: the walk reads them all.
        plan = Plan.SCAN if floor is None else Plan.WALK
        if floor is not None:
            values.update(until_0=floor[0], until_1=floor[1])
        result = await self.session.execute(_word_tier_walk(columns, plan, *shape), values)
        return list(result.all())

    async def count_matching(self, filter: SongFilter = SongFilter()) -> Count:
        """How many songs the filter lets through; a search's count is capped."""
        parameters = filter.parameters()
        indexed = False
        if filter.term:
            # PostgreSQL's planner picks between its trigram index and a scan that stops
            # at the cap by itself; SQLite is told to use its search table.
            match = await self._match(filter.term) if self.dialect == "sqlite" else None
            # The search table's text closes each column with U+001F: a term holding one
            # may match across that, and only the songs' own columns can tell.
            indexed = match is not None and CLOSING not in filter.term
            parameters["match"] = match
        matching = Matching.of(self.dialect, filter.term)
        if parameters.get("term_end") and self.dialect == "postgresql":
            # Titles or artists that begin with the term are its matches too, and the
            # prefix indexes count them at once: a common artist's name is capped there.
            begun = _songs_begun(filter.source is not None)
            if (await self.session.execute(begun, parameters)).scalar_one() > SEARCH_COUNT_CAP:
                return Count(SEARCH_COUNT_CAP, capped=True)
        # Two characters found all over are counted by reading in order, which reaches
        # the cap sooner than the index of pairs would gather them (each candidate's text
        # doubled by regexp_replace() to be checked); rarer ones read that index. (The
        # count of one character, or of three or more, is planned for the term itself:
        # see Matching.)
        if matching is Matching.PAIRS and await self._common(parameters):
            matching = Matching.POSITION
        statement = _song_count(matching, filter.source is not None, indexed, self.dialect)
        value = int((await self.session.execute(statement, parameters)).scalar_one())
        if filter.term and value > SEARCH_COUNT_CAP:
            return Count(SEARCH_COUNT_CAP, capped=True)
        return Count(value)

    async def _common(self, parameters: dict[str, Any]) -> bool:
        """Whether the newest PROBE_ROWS songs hold the term at least once in 100."""
        newest = (
            sa.select(Song.title_folded, Song.artist_folded)
            .order_by(Song.date_added.desc(), Song.id.desc())
            .limit(PROBE_ROWS)
            .subquery("newest")
        )
        statement = (
            sa.select(sa.func.count())
            .select_from(newest)
            .where(_like(newest.c.title_folded, newest.c.artist_folded, Matching.POSITION))
        )
        found = await self.session.scalar(statement, parameters)
        return bool(found and found * 100 >= PROBE_ROWS)

    async def _few_hits(self, parameters: dict[str, Any]) -> bool:
        """SQLite: whether its search table finds the `match` in fewer than FEW_HITS songs
        (or rows that only look like one: an upper bound, read from the table alone)."""
        found = await self.session.execute(_SEARCH_HITS, {**parameters, "few": FEW_HITS})
        return int(found.scalar_one()) < FEW_HITS

    async def _match(self, term: str) -> str | None:
        """What finds `term` in the search index. SQLite's FTS5 query is a phrase; or, for
        a term too short for trigrams, the trigrams it begins, which the stored text's
        two closing characters guarantee every occurrence has. PostgreSQL's is in the
        statement itself (see Matching). None when the index cannot narrow the search:
        reading in order is the way."""
        if self.dialect != "sqlite":
            return ""
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
        return " OR ".join(phrase(t) for t in trigrams) or phrase(CLOSING * 3)

    async def get_by_youtube_id(self, youtube_id: str, columns: Columns = None) -> Any:
        """The song made from this video, or None; with `columns`, a plain row of those."""
        where = Song.youtube_id == youtube_id
        if columns is None:
            return (await self.session.scalars(sa.select(Song).where(where))).one_or_none()
        statement = sa.select(*column_list(Song, columns)).where(where)
        return (await self.session.execute(statement)).one_or_none()
