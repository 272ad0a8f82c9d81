from __future__ import annotations

from django.db import models

from scheduling.identifiers import new_job_id

from .base import RecordedModel


class ScheduleKind(models.TextChoices):
    AT = "at"
    CRON = "cron"
    EVERY = "every"


class Priority(models.TextChoices):
    CRITICAL = "critical"
    NORMAL = "normal"
    LOW = "low"


class WakeMode(models.TextChoices):
    NEXT = "next"
    NOW = "now"
    OFF = "off"


class MissedPolicy(models.TextChoices):
    STASIS = "stasis"
    SKIP = "skip"
    RUN_ONCE = "run_once"


class OverlapPolicy(models.TextChoices):
    SKIP = "skip"
    ALLOW = "allow"


class CronJob(RecordedModel):
    """A recurring or one-shot job. `next_run_at` is denormalised and indexed: NULL means nothing to fire
    (disabled, or a one-shot that has run), so the scheduler's due query is one index range scan."""

    job_id = models.CharField(primary_key=True, max_length=40, default=new_job_id, editable=False)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    command = models.TextField()
    schedule_kind = models.CharField(max_length=8, choices=ScheduleKind.choices)
    run_at = models.DateTimeField(null=True, blank=True)
    cron_expr = models.CharField(max_length=200, blank=True, default="")
    every_seconds = models.PositiveIntegerField(null=True, blank=True)
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    delete_after_run = models.BooleanField(default=False)
    session_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    channel = models.CharField(max_length=128, blank=True, default="")
    title = models.CharField(max_length=200, blank=True, default="")
    priority = models.CharField(max_length=10, choices=Priority.choices, default=Priority.NORMAL)
    wake_heartbeat = models.CharField(max_length=5, choices=WakeMode.choices, default=WakeMode.OFF)
    missed_policy = models.CharField(max_length=10, choices=MissedPolicy.choices, default=MissedPolicy.STASIS)
    overlap = models.CharField(max_length=6, choices=OverlapPolicy.choices, default=OverlapPolicy.SKIP)
    timeout_seconds = models.PositiveIntegerField(default=600)
    target = models.JSONField(null=True, blank=True)
    model = models.CharField(max_length=128, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    # Interval jobs fire at anchor_at + k * every_seconds; the anchor moves when the schedule changes.
    anchor_at = models.DateTimeField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    # Why the scheduler stopped this job (its stored schedule could not be evaluated); cleared when the
    # job is saved again. Empty for every job that is scheduling normally.
    parked_reason = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # An enabled recurring job that no scheduler will ever pick up is a silent loss: the row
            # must say when it fires next, or why it was parked. One-shots end with no next run.
            models.CheckConstraint(
                condition=models.Q(enabled=False)
                | models.Q(schedule_kind="at")
                | models.Q(next_run_at__isnull=False)
                | ~models.Q(parked_reason=""),
                name="cron_job_enabled_recurring_is_armed",
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.job_id}: {self.command[:40]}"
