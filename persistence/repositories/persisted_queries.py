"""Persisted queries: GraphQL documents by their SHA-256, bounded by least recent use."""

from datetime import datetime

import sqlalchemy as sa

from persistence.models import PersistedQuery, utcnow
from persistence.repositories.base import Repository


class PersistedQueryRepository(Repository[PersistedQuery]):
    model = PersistedQuery

    async def document(self, sha256: str) -> str | None:
        statement = sa.select(PersistedQuery.document).where(PersistedQuery.sha256 == sha256)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def touch(self, sha256: str, when: datetime | None = None) -> bool:
        """Mark a document as just used; False when no row holds it (evicted meanwhile)."""
        statement = (
            sa.update(PersistedQuery)
            .where(PersistedQuery.sha256 == sha256)
            .values(last_used_at=when or utcnow())
        )
        result = await self.session.execute(statement)
        return bool(getattr(result, "rowcount", 0))

    async def add(self, sha256: str, document: str, when: datetime | None = None) -> None:
        """Insert a document; another process inserting the same one first is a Conflict."""
        now = when or utcnow()
        await self.create(sha256=sha256, document=document, created_at=now, last_used_at=now)

    async def evict_beyond(self, limit: int) -> None:
        """Delete all but the `limit` most recently used documents."""
        keep_order = (PersistedQuery.last_used_at.desc(), PersistedQuery.sha256.desc())
        surplus = (
            sa.select(PersistedQuery.sha256).order_by(*keep_order).offset(limit).scalar_subquery()
        )
        await self.session.execute(
            sa.delete(PersistedQuery).where(PersistedQuery.sha256.in_(surplus))
        )
