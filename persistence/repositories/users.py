"""Users: the people who own the library."""

import sqlalchemy as sa

from persistence.models import User
from persistence.repositories.base import Repository


class UserRepository(Repository[User]):
    model = User

    async def get_by_username(self, username: str) -> User | None:
        statement = sa.select(User).where(User.username == username)
        return (await self.session.scalars(statement)).one_or_none()
