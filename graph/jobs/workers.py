"""The work queue as processing workers use it: claim a job, report on it, end it.

Only the worker holding a job's claim may report on it; each report extends its lease.
A job whose lease lapsed can be claimed by another worker, after which the first
worker's reports are refused (ClaimNotHeldError).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry

from graph.core.context import Info
from graph.core.errors import InvalidInput, NotFoundError
from graph.core.identity import Role
from graph.core.permissions import Forbidden, IsWorker, identity_of
from graph.jobs.errors import ClaimNotHeldError, InvalidJobTransitionError
from graph.jobs.loaders import prime_job
from graph.jobs.types import Job
from persistence import models
from persistence.errors import ClaimNotHeld, InvalidTransition, NotFound, ValidationError
from persistence.repositories import JobRepository
from persistence.validation import clean_text

MAX_WORKER_ID_LENGTH = 128

WorkerId = Annotated[
    str | None,
    strawberry.argument(
        description="Who the worker is: its token's name, which is used when this is left "
        "out. A worker's token acts only as itself; admins may name any worker "
        f"(1-{MAX_WORKER_ID_LENGTH} characters)."
    ),
]
ClaimedJobId = Annotated[
    strawberry.ID, strawberry.argument(description="The global id of the job the worker holds.")
]


@strawberry.type(description="The claim was made, or nothing was waiting.")
class ClaimJobSuccess:
    job: Job | None = strawberry.field(
        description="The job now PROCESSING for the worker; null when no job is waiting."
    )


@strawberry.type(description="The job was changed.")
class WorkerJobSuccess:
    job: Job = strawberry.field(description="The job as it is now.")


ClaimJobPayload = Annotated[
    ClaimJobSuccess | InvalidInput,
    strawberry.union("ClaimJobPayload", description="The result of claimJob."),
]
WorkerJobPayload = Annotated[
    WorkerJobSuccess | InvalidInput | NotFoundError | InvalidJobTransitionError | ClaimNotHeldError,
    strawberry.union(
        "WorkerJobPayload",
        description="The result of reportJobProgress, completeJob and failJob.",
    ),
]


def clean_worker_id(worker_id: str) -> str:
    worker_id = worker_id.strip()
    if not worker_id or len(worker_id) > MAX_WORKER_ID_LENGTH:
        raise ValidationError(
            "worker_id", f"workerId must be 1 to {MAX_WORKER_ID_LENGTH} characters"
        )
    return worker_id


def acting_worker(info: Info, worker_id: str | None) -> str:
    """The worker a call acts as: a worker's token names it, and any workerId given must
    match; an admin may act for the worker it names, or as itself."""
    identity = identity_of(info)
    given = None if worker_id is None else clean_worker_id(worker_id)
    if identity.role is Role.WORKER:
        assert identity.worker_id is not None
        own = clean_worker_id(identity.worker_id)
        if given is not None and given != own:
            raise Forbidden("A worker's token acts only as that worker: leave workerId out")
        return own
    if given is not None:
        return given
    if identity.worker_id is None:
        raise ValidationError("worker_id", "workerId is required: this caller is no worker")
    return clean_worker_id(identity.worker_id)


async def _change_held_job(
    info: Info,
    job_global_id: str,
    change: Callable[[JobRepository, str], Awaitable[models.Job]],
) -> WorkerJobPayload:
    """Apply `change` to the job (by its database id) as one unit of work."""
    job_id = Job.key_of(job_global_id, "jobId")
    if job_id is None:
        return NotFoundError.of(job_global_id, "job")
    try:
        async with info.context.write() as repos:
            row = await change(repos(JobRepository), job_id)
    except ValidationError as error:
        return InvalidInput.of(error)
    except NotFound:
        return NotFoundError.of(job_global_id, "job")
    except ClaimNotHeld as error:
        return ClaimNotHeldError(message=error.message)
    except InvalidTransition as error:
        return InvalidJobTransitionError.of(error)
    prime_job(info.context.loaders, row)
    return WorkerJobSuccess(job=Job.from_model(row))


@strawberry.type
class WorkerMutation:
    @strawberry.mutation(
        permission_classes=[IsWorker],
        description=(
            "Take the oldest waiting job (or one whose worker's lease lapsed) and mark it "
            "PROCESSING for this worker, with a lease it extends by reporting."
        ),
    )
    async def claim_job(self, info: Info, worker_id: WorkerId = None) -> ClaimJobPayload:
        try:
            worker = acting_worker(info, worker_id)
        except ValidationError as error:
            return InvalidInput.of(error)
        async with info.context.write() as repos:
            row = await repos(JobRepository).claim_next(worker, info.context.settings.job_lease)
        if row is None:
            return ClaimJobSuccess(job=None)
        prime_job(info.context.loaders, row)
        return ClaimJobSuccess(job=Job.from_model(row))

    @strawberry.mutation(
        permission_classes=[IsWorker],
        description=(
            "Record the claim holder's progress (never lower than before) and latest step; "
            "extends its lease."
        ),
    )
    async def report_job_progress(
        self,
        info: Info,
        job_id: ClaimedJobId,
        progress: Annotated[
            int, strawberry.argument(description="0 to 100, never lower than reported before.")
        ],
        message: Annotated[
            str | None,
            strawberry.argument(description="The step the worker is on; left as it was if null."),
        ] = None,
        worker_id: WorkerId = None,
    ) -> WorkerJobPayload:
        try:
            worker = acting_worker(info, worker_id)
            message = clean_text("message", message)
        except ValidationError as error:
            return InvalidInput.of(error)
        lease = info.context.settings.job_lease
        return await _change_held_job(
            info,
            job_id,
            lambda jobs, id: jobs.report_progress(id, worker, progress, message, lease),
        )

    @strawberry.mutation(
        permission_classes=[IsWorker],
        description="The claim holder finished the job: COMPLETED, progress 100.",
    )
    async def complete_job(
        self, info: Info, job_id: ClaimedJobId, worker_id: WorkerId = None
    ) -> WorkerJobPayload:
        try:
            worker = acting_worker(info, worker_id)
        except ValidationError as error:
            return InvalidInput.of(error)
        return await _change_held_job(info, job_id, lambda jobs, id: jobs.complete(id, worker))

    @strawberry.mutation(
        permission_classes=[IsWorker],
        description="The claim holder gave up on the job: FAILED, with why.",
    )
    async def fail_job(
        self,
        info: Info,
        job_id: ClaimedJobId,
        message: Annotated[str, strawberry.argument(description="Why the job failed.")],
        worker_id: WorkerId = None,
    ) -> WorkerJobPayload:
        try:
            worker = acting_worker(info, worker_id)
            reason = clean_text("message", message, required=True)
        except ValidationError as error:
            return InvalidInput.of(error)
        assert reason is not None
        return await _change_held_job(info, job_id, lambda jobs, id: jobs.fail(id, worker, reason))
