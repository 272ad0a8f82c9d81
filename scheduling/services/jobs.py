"""Job lifecycle: create, update, delete, look up with owner scoping."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import OuterRef, Subquery

from scheduling import clock, snapshots
from scheduling.errors import InvalidInput, NotFound
from scheduling.job_input import clean_job_input
from scheduling.models import ACTIVE_RUN_STATUSES, CronJob, CronRun, RunReason, RunStatus
from scheduling.occurrences import next_occurrence_of
from scheduling.targets import default_target

# Changing any of these moves the schedule: next_run_at (and the interval anchor) are recomputed.
SCHEDULE_DEFINING = frozenset(
    {"schedule_kind", "run_at", "cron_expr", "every_seconds", "timezone", "enabled"}
)


def get_job(job_id: str, owner_id: str | None) -> CronJob:
    """The job, if it exists and the caller may see it (owner_id None = operator)."""
    queryset = CronJob.objects.filter(job_id=job_id)
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    job = queryset.first()
    if job is None:
        raise NotFound(f"no job {job_id}", "job_id")
    return job


def list_jobs(owner_id: str | None) -> list[CronJob]:
    queryset = CronJob.objects.all()
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    return list(queryset.order_by("created_at"))


def create_job(data: Any, owner_id: str | None) -> CronJob:
    job = new_job(data, owner_id, clock.now())
    with transaction.atomic():
        job.save(force_insert=True)
    return job


def new_job(data: Any, owner_id: str | None, now: datetime) -> CronJob:
    """A validated, unsaved job with its defaults and first run filled in (single and bulk create)."""
    clean = clean_job_input(data, existing=None, partial=False, now=now)
    _enforce_owner(clean, owner_id)
    clean.setdefault("target", None)
    if clean["target"] is None:
        clean["target"] = default_target()
    if "wake_heartbeat" not in clean:
        clean["wake_heartbeat"] = "next" if clean.get("session_id") else "off"
    job = CronJob(created_at=now, updated_at=now, anchor_at=now, **clean)
    job.next_run_at = _first_run(job, now)
    return job


def update_job(job_id: str, data: Any, owner_id: str | None, *, partial: bool) -> CronJob:
    """Change the fields named in `data` (PUT and PATCH alike; partial=False demands a whole job).
    Metadata merges. Validation happens before any write, so a failing request changes nothing."""
    now = clock.now()
    with transaction.atomic():
        job = _locked_job(job_id, owner_id)
        clean = clean_job_input(data, existing=job, partial=partial, now=now)
        _enforce_owner(clean, owner_id)
        if "metadata" in clean:
            clean["metadata"] = {**(job.metadata or {}), **clean["metadata"]}
        if "target" in clean and clean["target"] is None:
            clean["target"] = default_target()
        schedule_moved = any(
            getattr(job, name) != value for name, value in clean.items() if name in SCHEDULE_DEFINING
        )
        due_unclaimed = job.next_run_at if job.next_run_at and job.next_run_at <= now else None
        for name, value in clean.items():
            setattr(job, name, value)
        job.updated_at = now
        if schedule_moved:
            if due_unclaimed:
                _skip_replaced_occurrence(job, due_unclaimed, now)
            job.anchor_at = now
            job.next_run_at = _first_run(job, now)
        job.save()
    return job


def _skip_replaced_occurrence(job: CronJob, occurrence: datetime, now: datetime) -> None:
    """An occurrence that was due but not yet started when its schedule changed is recorded as skipped,
    never dropped without a trace (the job row lock keeps schedulers from claiming it meanwhile)."""
    if CronRun.objects.filter(job_id=job.job_id, scheduled_at=occurrence, attempt=1).exists():
        return
    run = CronRun.for_job(job, reason=RunReason.SCHEDULE, scheduled_at=occurrence, created_at=now)
    run.status, run.finished_at = RunStatus.SKIPPED, now
    run.error = "the schedule changed before this occurrence started"
    run.save(force_insert=True)


def delete_job(job_id: str, owner_id: str | None) -> str:
    """Delete the job and cancel its queued runs (running ones finish and are recorded: they are history)."""
    now = clock.now()
    with transaction.atomic():
        job = _locked_job(job_id, owner_id)
        # Lock the queued runs before the first event append takes the event-log lock (lock order).
        queued = list(
            CronRun.objects.select_for_update()
            .filter(job_id=job.job_id, status=RunStatus.QUEUED)
            .order_by("run_id")
        )
        for run in queued:
            run.status = RunStatus.CANCELLED
            run.finished_at = now
            run.error = "job deleted"
            run.save()
        job.delete()
    return job_id


def _first_run(job: CronJob, now: datetime) -> datetime | None:
    if job.schedule_kind == "at":
        # A one-shot fires at run_at, even if that is a moment ago (accepted within the misfire grace).
        return job.run_at if job.enabled else None
    return next_occurrence_of(job, now - timedelta(microseconds=1) if job.schedule_kind == "cron" else now)


def _locked_job(job_id: str, owner_id: str | None) -> CronJob:
    queryset = CronJob.objects.select_for_update().filter(job_id=job_id)
    if owner_id is not None:
        queryset = queryset.filter(owner_id=owner_id)
    job = queryset.first()
    if job is None:
        raise NotFound(f"no job {job_id}", "job_id")
    return job


def _enforce_owner(clean: dict, owner_id: str | None) -> None:
    """Owner tokens create and keep rows under their own owner id only."""
    if owner_id is None:
        return
    if clean.get("owner_id") not in (None, owner_id):
        raise InvalidInput("an owner token can only use its own owner id", "user_id")
    clean["owner_id"] = owner_id


def describe_jobs(jobs: list[CronJob]) -> list[dict[str, Any]]:
    """Jobs as the API shows them: the snapshot plus `running` and `last_run`, in two queries total."""
    ids = [job.job_id for job in jobs]
    active = set(
        CronRun.objects.filter(job_id__in=ids, status__in=ACTIVE_RUN_STATUSES).values_list(
            "job_id", flat=True
        )
    )
    last_runs = _last_runs(ids)
    described = []
    for job in jobs:
        body = snapshots.job_snapshot(job)
        body["running"] = job.job_id in active
        last = last_runs.get(job.job_id)
        body["last_run"] = snapshots.run_snapshot(last) if last else None
        described.append(body)
    return described


def describe_new_jobs(jobs: list[CronJob]) -> list[dict[str, Any]]:
    """As describe_jobs, for jobs this request just created: they have no runs yet, so no query."""
    return [{**snapshots.job_snapshot(job), "running": False, "last_run": None} for job in jobs]


def _last_runs(job_ids: list[str]) -> dict[str, CronRun]:
    if not job_ids:
        return {}
    latest = CronRun.objects.filter(job_id=OuterRef("job_id")).order_by("-created_at").values("run_id")[:1]
    run_ids = (
        CronJob.objects.filter(job_id__in=job_ids)
        .annotate(last_run_id=Subquery(latest))
        .values_list("last_run_id", flat=True)
    )
    return {run.job_id: run for run in CronRun.objects.filter(run_id__in=[r for r in run_ids if r])}


def prepare_admin_save(job: CronJob, changed_fields: list[str], *, creating: bool) -> None:
    """Fill the bookkeeping an admin form does not show; the admin's own save then emits the event."""
    now = clock.now()
    if creating:
        job.created_at = now
        job.anchor_at = now
    job.updated_at = now
    if creating or SCHEDULE_DEFINING & set(changed_fields):
        job.anchor_at = now
        job.next_run_at = _first_run(job, now)
