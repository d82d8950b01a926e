"""The people who own the library: types, queries and mutations."""

from graph.core.domain import Domain
from graph.users.mutations import UserMutation
from graph.users.queries import UserQuery
from graph.users.types import User

DOMAIN = Domain(queries=(UserQuery,), mutations=(UserMutation,), types=(User,))
