"""Domain errors raised by the data layer, the same whatever the SQL dialect."""


class DomainError(Exception):
    """Base class for failures the data layer reports to its callers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} {id} does not exist")
        self.entity = entity
        self.id = id


class Conflict(DomainError):
    """A write would break a uniqueness rule; `constraint` names the rule."""

    def __init__(self, constraint: str, message: str) -> None:
        super().__init__(message)
        self.constraint = constraint


class ValidationError(DomainError):
    """A value breaks a rule of the data; `field` names the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class DatabaseUnavailable(DomainError):
    """The database could not be reached, or the connection was lost.

    `reason` says why in a few words fit for a log line: never a host, a name or a value.
    """

    def __init__(
        self, message: str = "The database is unavailable", reason: str = "unavailable"
    ) -> None:
        super().__init__(message)
        self.reason = reason


class DatabaseTimeout(DomainError):
    """A statement ran past the database's statement timeout and was cancelled there."""

    def __init__(self, message: str = "The database took too long to answer") -> None:
        super().__init__(message)


class InvalidTransition(DomainError):
    """A job cannot move from its status to the one asked for; `current` is its status."""

    def __init__(self, current: str, message: str) -> None:
        super().__init__(message)
        self.current = current


class ClaimNotHeld(DomainError):
    """A worker reported on a job it does not hold (never claimed, or claimed since by
    another worker after its lease lapsed)."""

    def __init__(self, job_id: str, worker_id: str) -> None:
        super().__init__(f"Worker {worker_id} does not hold job {job_id}")
        self.job_id = job_id
        self.worker_id = worker_id


class SubscriberTooSlow(DomainError):
    """A subscriber left too many events unread; it was dropped so others are not held up."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"Too slow: more than {limit} events were waiting to be sent; subscribe again"
        )
        self.limit = limit


class MigrationRefused(Exception):
    """A migration cannot run on this database as it is; the message says why and what to
    do, in one line fit to print."""
