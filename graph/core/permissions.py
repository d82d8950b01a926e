"""Who may use a field, declared on the field itself with Strawberry's permission classes.

    @strawberry.mutation(permission_classes=[IsEditor])
    async def delete_song(...): ...

Every role but `none` may read (a request whose role is `none` is refused as a whole, with
401, before any field runs); the classes here guard what more a field asks. A refusal is a
top-level error at the field's path with `extensions.code` FORBIDDEN, and the field's
resolver never runs, so nothing changes. Each class lists its roles in `roles`, so tools
that plan a query ahead (the compiled read path) can read the same declarations.
"""

from typing import Any, ClassVar

import strawberry
from graphql import GraphQLError
from strawberry.permission import BasePermission

from graph.core.identity import Identity, Role

FORBIDDEN = "FORBIDDEN"


class Forbidden(GraphQLError):
    """A refusal decided inside a resolver (where the rule depends on the arguments)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, extensions={"code": FORBIDDEN})


def identity_of(info: strawberry.Info[Any, Any]) -> Identity:
    identity: Identity = info.context.identity
    return identity


class RolePermission(BasePermission):
    """Allows the callers whose role is one of `roles`."""

    roles: ClassVar[frozenset[Role]] = frozenset()
    error_extensions: ClassVar[dict[str, object]] = {"code": FORBIDDEN}  # type: ignore[misc]

    def has_permission(self, source: Any, info: strawberry.Info[Any, Any], **kwargs: Any) -> bool:
        return identity_of(info).role in self.roles


class IsEditor(RolePermission):
    """Changes to the library: the song mutations and retryJob."""

    roles = frozenset({Role.EDITOR, Role.ADMIN})
    message = "Only editors may change the library"


class IsWorker(RolePermission):
    """The work queue: claiming jobs and reporting on them, as the token's own worker."""

    roles = frozenset({Role.WORKER, Role.ADMIN})
    message = "Only workers may claim and report on jobs"


class IsAdmin(RolePermission):
    """User management, and editing a job around the workers' claims."""

    roles = frozenset({Role.ADMIN})
    message = "Only admins may do this"


class IsSelfOrAdmin(BasePermission):
    """A user's private fields: that user (signed in with a JWT) and admins."""

    message = "Only this user and admins may see this"
    error_extensions: ClassVar[dict[str, object]] = {"code": FORBIDDEN}  # type: ignore[misc]
    roles: ClassVar[frozenset[Role]] = frozenset({Role.ADMIN})

    def has_permission(self, source: Any, info: strawberry.Info[Any, Any], **kwargs: Any) -> bool:
        identity = identity_of(info)
        if identity.role in self.roles:
            return True
        if identity.user_id is None:
            return False
        return bool(source.id == type(source).global_id(identity.user_id))
