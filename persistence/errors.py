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
    """The database could not be reached, or the connection was lost."""

    def __init__(self, message: str = "The database is unavailable") -> None:
        super().__init__(message)
