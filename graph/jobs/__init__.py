"""Processing jobs: types, queries, lifecycle and worker mutations, live updates."""

from graph.core.domain import Domain
from graph.jobs.mutations import JobMutation
from graph.jobs.queries import JobQuery
from graph.jobs.subscriptions import JobSubscription
from graph.jobs.types import Job
from graph.jobs.workers import WorkerMutation

DOMAIN = Domain(
    queries=(JobQuery,),
    mutations=(JobMutation, WorkerMutation),
    subscriptions=(JobSubscription,),
    types=(Job,),
)
