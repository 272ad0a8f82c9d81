from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.db import models

from scheduling import clock
from scheduling.identifiers import new_run_id

from .base import RecordedModel

if TYPE_CHECKING:
    from .jobs import CronJob


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    ERROR = "error"
    SKIPPED = "skipped"
    MISSED = "missed"
    CANCELLED = "cancelled"


ACTIVE_RUN_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)
TERMINAL_RUN_STATUSES = (
    RunStatus.SUCCESS,
    RunStatus.ERROR,
    RunStatus.SKIPPED,
    RunStatus.MISSED,
    RunStatus.CANCELLED,
)


class RunReason(models.TextChoices):
    SCHEDULE = "schedule"
    MANUAL = "manual"
    BACKFILL = "backfill"
    RESCHEDULE = "reschedule"
    CALENDAR_ACTION = "calendar_action"
    CATCH_UP = "catch_up"


class CronRun(RecordedModel):
    """One execution (or recorded non-execution) of a job occurrence.

    `job_id` is a plain column, not a foreign key: runs are history and outlive their job (the calendar
    keeps past runs of deleted jobs). The job's owner, session and title are copied for the same reason.
    """

    run_id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    job_id = models.CharField(max_length=40)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    session_id = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=128, blank=True, default="")
    job_title = models.CharField(max_length=200, blank=True, default="")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    reason = models.CharField(max_length=16, choices=RunReason.choices, default=RunReason.SCHEDULE)
    # Nominal instant of the occurrence; NULL for plain manual runs.
    scheduled_at = models.DateTimeField(null=True, blank=True)
    # 1 for the scheduler's run of an occurrence; an operator's backfill of a missed occurrence is attempt 2.
    attempt = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    output = models.TextField(blank=True, default="")
    # A running run is leased by one scheduler process; an expired lease means that process died.
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # The idempotency key: two schedulers (or a restart) racing on one occurrence cannot both
            # insert its run. NULL scheduled_at (manual runs) never collides, in PostgreSQL and SQLite.
            models.UniqueConstraint(
                fields=["job_id", "scheduled_at", "attempt"], name="cron_run_once_per_occurrence"
            ),
        ]
        indexes = [
            models.Index(fields=["job_id", "scheduled_at"], name="cron_run_job_occurrence"),
            models.Index(fields=["job_id", "-created_at"], name="cron_run_job_recent"),
            models.Index(fields=["-created_at"], name="cron_run_recent"),
            # Lease sweeps and overlap checks only look at active runs; keep that index tiny.
            models.Index(
                fields=["status", "lease_expires_at"],
                name="cron_run_active",
                condition=models.Q(status__in=["queued", "running"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} ({self.status})"

    @classmethod
    def for_job(
        cls,
        job: CronJob,
        *,
        reason: str,
        scheduled_at: datetime | None = None,
        attempt: int = 1,
        created_at: datetime | None = None,
    ) -> CronRun:
        """An unsaved run of `job`, carrying the job's identity (runs outlive their job)."""
        return cls(
            job_id=job.job_id, owner_id=job.owner_id, session_id=job.session_id, channel=job.channel,
            job_title=job.title or job.command[:200], reason=reason, scheduled_at=scheduled_at,
            attempt=attempt, created_at=created_at or clock.now(),
        )  # fmt: skip

    @property
    def occurrence_id(self) -> str:
        moment = self.scheduled_at or self.created_at
        return f"cron|{self.job_id}|{int(moment.timestamp())}"
