"""The generic repository: one model's rows through one session, never committing."""

from collections.abc import Collection, Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from persistence.models import Base
from persistence.pagination import KeysetOrder, Page, PageRequest, paginate

M = TypeVar("M", bound=Base)

# What repositories read through: a session (the ORM's unit of work), or for reads only, a
# bare connection (the compiled read path: plain rows, no identity map).
Reader = AsyncSession | AsyncConnection
# Column keys a caller will read; None for whole rows.
Columns = Collection[str] | None


def any_of(column: Any, name: str, dialect: str) -> sa.ColumnElement[bool]:
    """`column` is one of the list given as parameter `name`: one array parameter on
    PostgreSQL (`= ANY($1)`, the same statement text whatever the list's length), an
    expanding IN elsewhere."""
    if dialect == "postgresql":
        clause: sa.ColumnElement[bool] = column == sa.any_(
            sa.bindparam(name, type_=postgresql.ARRAY(column.type))
        )
        return clause
    clause = column.in_(sa.bindparam(name, expanding=True))
    return clause


def column_list(model: type[Any], keys: Iterable[str]) -> list[Any]:
    """The model's columns named by `keys` (each once, in order), for a select of rows that
    hold only those; `id` always comes first."""
    return [getattr(model, key) for key in dict.fromkeys(["id", *keys])]


class Repository(Generic[M]):
    """Reads and writes rows of `model` inside the caller's unit of work.

    A repository flushes so that database rules are checked where the write happens, but
    it never commits: the unit of work that owns the session decides.
    """

    model: ClassVar[type[Any]]

    def __init__(self, session: Reader) -> None:
        # Typed as a session for the writes; over a connection, only the reads that use
        # nothing but execute() and scalars() (which both have) are ever called.
        self.session: AsyncSession = session  # type: ignore[assignment]

    @property
    def dialect(self) -> str:
        """The database's dialect name (`postgresql`, `sqlite`)."""
        if isinstance(self.session, AsyncSession):
            return str(self.session.get_bind().dialect.name)
        return str(self.session.dialect.name)

    async def get(self, id: str) -> M | None:
        return await self.session.get(self.model, id)

    async def get_many(self, ids: Iterable[str], columns: Columns = None) -> dict[str, Any]:
        """The rows with these ids, keyed by id; missing ids are simply absent. With
        `columns`, plain rows holding only those columns (and the id)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        where = self.model.id.in_(wanted)
        if columns is None:
            entities = await self.session.scalars(sa.select(self.model).where(where))
            return {row.id: row for row in entities.all()}
        statement = sa.select(*column_list(self.model, columns)).where(where)
        return {row.id: row for row in (await self.session.execute(statement)).all()}

    async def create(self, **values: Any) -> M:
        row: M = self.model(**values)
        self.session.add(row)
        await self.session.flush()
        return row

    async def update(self, row: M, **values: Any) -> M:
        for name, value in values.items():
            setattr(row, name, value)
        await self.session.flush()
        return row

    async def delete(self, row: M) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def page(
        self,
        request: PageRequest,
        order: KeysetOrder,
        where: Sequence[sa.ColumnElement[bool]] = (),
        columns: Columns = None,
    ) -> Page[Any]:
        """One keyset page of the rows matching `where`; with `columns`, plain rows holding
        those columns and what orders them."""
        if columns is None:
            statement = sa.select(self.model)
        else:
            sorting = order.labelled()
            named = {getattr(c, "key", None) for c in sorting}
            chosen = [c for c in column_list(self.model, columns) if c.key not in named]
            statement = sa.select(*chosen, *sorting)
        return await paginate(
            self.session, statement.where(*where), order, request, plain=columns is not None
        )

    async def count(self, where: Sequence[sa.ColumnElement[bool]] = ()) -> int:
        statement = sa.select(sa.func.count()).select_from(self.model).where(*where)
        return int((await self.session.execute(statement)).scalar_one())
