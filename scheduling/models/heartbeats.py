from __future__ import annotations

from django.db import models

from scheduling.identifiers import new_run_id

from .base import RecordedModel


def default_delivery() -> dict:
    return {"mode": "last", "targets": []}


def default_visibility() -> dict:
    return {"show_ok": False, "show_alerts": True, "dedupe_window_seconds": 86400}


class HeartbeatSession(RecordedModel):
    """An agent session's periodic heartbeat. `next_due_at` is denormalised and indexed like a job's."""

    session_id = models.CharField(primary_key=True, max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    every_seconds = models.PositiveIntegerField(default=1800)
    active_hours = models.CharField(max_length=11, blank=True, default="")
    timezone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    channel = models.CharField(max_length=128, blank=True, default="")
    target = models.JSONField(null=True, blank=True)
    delivery = models.JSONField(default=default_delivery, blank=True)
    visibility = models.JSONField(default=default_visibility, blank=True)
    busy = models.BooleanField(default=False)
    # A coalesced wake request: "now" beats "next"; cleared when a heartbeat runs.
    pending_wake = models.CharField(max_length=4, blank=True, default="")
    next_due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_summary = models.JSONField(null=True, blank=True)
    # Fingerprint and time of the last alert delivered, for the dedupe window.
    last_alert_digest = models.CharField(max_length=64, blank=True, default="")
    last_alert_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["session_id"]

    def __str__(self) -> str:
        return self.session_id


class HeartbeatRun(RecordedModel):
    run_id = models.CharField(primary_key=True, max_length=40, default=new_run_id, editable=False)
    session_id = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    channel = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=10, default="queued")
    # interval | wake_now | wake_next, or why a heartbeat was skipped (busy, outside_active_hours, running).
    reason = models.CharField(max_length=24, default="interval")
    scheduled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    ok_only = models.BooleanField(default=False)
    # How many consecutive skips (same reason) this row stands for: a long busy streak keeps only its
    # first and its newest row, so a session busy for weeks does not add a row every retry (see
    # heartbeat_runs._record_skip); each skip still emits its own heartbeat_skipped event.
    skip_count = models.PositiveIntegerField(default=1)
    output = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    lease_owner = models.CharField(max_length=128, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["session_id", "-created_at"], name="hb_run_session_recent"),
            models.Index(fields=["session_id", "scheduled_at"], name="hb_run_session_occurrence"),
            # The scheduler's wake plan and lease sweep ask for MIN(lease_expires_at) of running
            # heartbeats on every wake: a partial index keeps that one probe however long the history.
            models.Index(
                fields=["lease_expires_at"],
                name="hb_run_running_lease",
                condition=models.Q(status="running"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} ({self.status})"


class WakeRequest(RecordedModel):
    session_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    mode = models.CharField(max_length=4)
    reason = models.CharField(max_length=200, blank=True, default="")
    requested_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"wake {self.mode} {self.session_id or '*'}"


class SystemEvent(models.Model):
    """Text queued for a session; delivered with its next heartbeat."""

    session_id = models.CharField(max_length=128, db_index=True)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    text = models.TextField()
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivered_run_id = models.CharField(max_length=40, blank=True, default="")

    class Meta:
        ordering = ["created_at"]
        indexes = [
            # Every heartbeat claim, request build and finish looks up the events reserved for one run.
            models.Index(fields=["delivered_run_id"], name="system_event_delivered_run"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.text[:40]}"
