"""Users: the people who own the library."""

import hashlib
import re
import secrets

import sqlalchemy as sa

from persistence.database import constraint_name
from persistence.errors import Conflict
from persistence.models import User
from persistence.repositories.base import Repository
from persistence.validation import USERNAME

# The unique constraints a new user's row can meet when another process makes one at the
# same moment (persistence/models.py, named by the metadata's naming convention).
_SUBJECT_TAKEN = "uq_users_subject"
_USERNAME_TAKEN = "uq_users_username"
_NOT_IN_USERNAMES = re.compile(r"[^A-Za-z0-9_.-]+")
# Rounds of "look, then insert" before giving up: each lost round means another process
# took the subject (then the next look finds it) or the username picked (then another is).
_ATTEMPTS = 5


class UserRepository(Repository[User]):
    model = User

    async def get_by_username(self, username: str) -> User | None:
        statement = sa.select(User).where(User.username == username)
        return (await self.session.scalars(statement)).one_or_none()

    async def get_by_subject(self, subject: str) -> User | None:
        statement = sa.select(User).where(User.subject == subject)
        return (await self.session.scalars(statement)).one_or_none()

    async def for_subject(self, subject: str, preferred_username: str | None) -> User:
        """The user who signs in with JWTs whose `sub` is `subject`, made on first sight.

        A new user is named `preferred_username` when that is a valid username nobody has,
        otherwise a name derived from the subject. An existing user is never taken over by
        name: only `subject` links a JWT to a row. Safe when several processes meet a new
        subject at once: one row is made, and every caller gets it.
        """
        for _ in range(_ATTEMPTS):
            user = await self.get_by_subject(subject)
            if user is not None:
                return user
            username = await self._free_username(subject, preferred_username)
            user = User(username=username, subject=subject)
            try:
                # A savepoint, so losing the race leaves the caller's transaction usable.
                async with self.session.begin_nested():
                    self.session.add(user)
            except sa.exc.IntegrityError as error:
                if constraint_name(error) not in (_SUBJECT_TAKEN, _USERNAME_TAKEN):
                    raise
                continue
            return user
        raise Conflict(_SUBJECT_TAKEN, "no user could be made for this subject; try again")

    async def _free_username(self, subject: str, preferred: str | None) -> str:
        """The first free name of: the preferred one, one made from the subject, that with
        a digest of the subject; failing all three, one with a random suffix."""
        candidates: list[str] = []
        if preferred is not None and USERNAME.fullmatch(preferred.strip()):
            candidates.append(preferred.strip())
        digest = hashlib.sha256(subject.encode()).hexdigest()
        base = _NOT_IN_USERNAMES.sub("-", subject).strip("-.")[:64]
        if len(base) < 3:
            base = f"user-{digest[:12]}"
        candidates += [base, f"{base[:55]}-{digest[:8]}"]
        taken = set(
            await self.session.scalars(
                sa.select(User.username).where(User.username.in_(candidates))
            )
        )
        for candidate in candidates:
            if candidate not in taken:
                return candidate
        return f"{base[:47]}-{secrets.token_hex(8)}"
