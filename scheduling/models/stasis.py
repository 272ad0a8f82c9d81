from __future__ import annotations

from django.db import models

from scheduling.identifiers import new_entry_id, new_notification_id

from .base import RecordedModel


class StasisStatus(models.TextChoices):
    PENDING = "pending"
    APPROVED_AND_RUN = "approved_and_run"
    RESCHEDULED = "rescheduled"
    DELETED = "deleted"
    SKIPPED_SUPERSEDED = "skipped_superseded"


class StasisEntry(RecordedModel):
    """A missed occurrence waiting for an operator decision."""

    entry_id = models.CharField(primary_key=True, max_length=40, default=new_entry_id, editable=False)
    event_id = models.CharField(max_length=200, db_index=True)
    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    session_id = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=20, choices=StasisStatus.choices, default=StasisStatus.PENDING)
    scheduled_at = models.DateTimeField()
    detected_at = models.DateTimeField()
    reason = models.CharField(max_length=200, blank=True, default="")
    run_id = models.CharField(max_length=40, blank=True, default="")
    resolution_run_id = models.CharField(max_length=40, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)
    event = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-detected_at"]
        verbose_name_plural = "stasis entries"
        constraints = [
            # At most one pending entry per job or session: a newer miss supersedes the older one.
            models.UniqueConstraint(
                fields=["source", "source_ref"],
                condition=models.Q(status="pending"),
                name="stasis_one_pending_per_source",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"


class Notification(models.Model):
    """An operator-facing notice of a miss or failure. Repeated failures of one job bump `count` on the
    one live notification instead of adding rows."""

    notification_id = models.CharField(
        primary_key=True, max_length=40, default=new_notification_id, editable=False
    )
    kind = models.CharField(max_length=20)
    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    status = models.CharField(max_length=12, default="live")
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True, default="")
    actions = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=1)
    run_id = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["source", "source_ref", "kind", "status"], name="notification_live")]

    def __str__(self) -> str:
        return self.title
