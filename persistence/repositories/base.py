"""The generic repository: one model's rows through one session, never committing."""

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from persistence.models import Base
from persistence.pagination import KeysetOrder, Page, PageRequest, paginate

M = TypeVar("M", bound=Base)


class Repository(Generic[M]):
    """Reads and writes rows of `model` inside the caller's unit of work.

    A repository flushes so that database rules are checked where the write happens, but
    it never commits: the unit of work that owns the session decides.
    """

    model: ClassVar[type[Any]]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, id: str) -> M | None:
        return await self.session.get(self.model, id)

    async def get_many(self, ids: Iterable[str]) -> dict[str, M]:
        """The rows with these ids, keyed by id; missing ids are simply absent."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        statement = sa.select(self.model).where(self.model.id.in_(wanted))
        return {row.id: row for row in (await self.session.scalars(statement)).all()}

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
    ) -> Page[M]:
        """One keyset page of the rows matching `where`."""
        return await paginate(self.session, sa.select(self.model).where(*where), order, request)

    async def count(self, where: Sequence[sa.ColumnElement[bool]] = ()) -> int:
        statement = sa.select(sa.func.count()).select_from(self.model).where(*where)
        return int((await self.session.execute(statement)).scalar_one())
