from __future__ import annotations

from django.db import models


class ProjectionState(models.Model):
    """The projector's position: the last event it applied and the read model's monotonic version.
    Written in the same transaction as the read-model rows, so a replayed event is a no-op."""

    name = models.CharField(primary_key=True, max_length=40, default="calendar")
    version = models.BigIntegerField(default=0)
    last_event_seq = models.BigIntegerField(default=0)
    last_event_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} v{self.version} @{self.last_event_seq}"


def current_state() -> ProjectionState:
    """The calendar projection's state, or an unsaved zero state before the projector first runs."""
    return ProjectionState.objects.filter(name="calendar").first() or ProjectionState(name="calendar")


class CalendarSource(models.Model):
    """One job or heartbeat session as the calendar knows it: its definition (from the newest definition
    event applied, `definition_seq`) and how far its future occurrences are materialised. Never deleted:
    a deleted job stays as a tombstone, so its history keeps its title and a late `created` cannot
    bring it back."""

    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="")
    session_id = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=128, blank=True, default="")
    title = models.CharField(max_length=200, blank=True, default="")
    description = models.TextField(blank=True, default="")
    category = models.CharField(max_length=10, default="normal")
    timezone = models.CharField(max_length=64, default="UTC")
    # at | cron | every | heartbeat; "" while only runs are known (no definition event seen yet).
    kind = models.CharField(max_length=10, blank=True, default="")
    cron_expr = models.CharField(max_length=200, blank=True, default="")
    every_seconds = models.PositiveIntegerField(null=True, blank=True)
    run_at = models.DateTimeField(null=True, blank=True)
    anchor_at = models.DateTimeField(null=True, blank=True)
    active_hours = models.CharField(max_length=11, blank=True, default="")
    next_due_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    deleted = models.BooleanField(default=False)
    definition_seq = models.BigIntegerField(default=0)
    # Seq of the event that last set the descriptive fields (a run's, until a definition arrives).
    info_seq = models.BigIntegerField(default=0)
    materialised_until = models.DateTimeField(null=True, blank=True)
    # More occurrences a day than a window may list (UA_CALENDAR_MAX_OCCURRENCES_PER_JOB): its future is
    # not stored (a minutely job would be 21,600 rows) but expanded per request, at most that many + 1.
    dense = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "source_ref"], name="calendar_source_once")]
        indexes = [models.Index(fields=["materialised_until"], name="calendar_source_roll")]

    def __str__(self) -> str:
        return f"{self.source}|{self.source_ref}"


class CalendarEntry(models.Model):
    """One calendar event (contract §6): a run's occurrence (history, `run_id` set) or a materialised
    future occurrence (`run_id` empty). A week view is one range scan of `scheduled_at`."""

    event_id = models.CharField(primary_key=True, max_length=200)
    # No foreign-key constraint and no index of its own: a new hourly job inserts 360 rows at once, and the
    # constraint's per-row check at commit was a quarter of that insert's cost on PostgreSQL (issue 10).
    # The projector is this table's only writer and removes a source's entries before the source (a
    # rebuild), and `calendar_entry_source` below, which leads with this column, serves its lookups.
    calendar_source = models.ForeignKey(
        CalendarSource,
        on_delete=models.CASCADE,
        related_name="entries",
        db_constraint=False,
        db_index=False,
    )
    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="")
    scheduled_at = models.DateTimeField()
    status = models.CharField(max_length=10)
    run_id = models.CharField(max_length=40, blank=True, default="")
    run_status = models.CharField(max_length=10, blank=True, default="")
    # Which run an occurrence shows when it has several (a backfill is attempt 2): the highest
    # (attempt, created_at, run_id). Order-independent, so shuffled events end in the same state.
    run_attempt = models.PositiveSmallIntegerField(default=0)
    run_created_at = models.DateTimeField(null=True, blank=True)
    # Seq of the newest event applied to this run: an older update never overwrites a newer one.
    run_seq = models.BigIntegerField(default=0)
    # The event's JSON without the viewer's zone fields, rendered when the row changes: the feed then
    # concatenates text instead of building ~20,000 JSON objects per request.
    body = models.TextField(blank=True, default="")

    class Meta:
        indexes = [
            models.Index(fields=["scheduled_at"], name="calendar_entry_window"),
            models.Index(fields=["owner_id", "scheduled_at"], name="calendar_entry_owner_window"),
            models.Index(fields=["calendar_source", "scheduled_at"], name="calendar_entry_source"),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} ({self.status})"


class CalendarStasisEntry(models.Model):
    """A stasis entry as its newest event showed it (`seq`); the feed lists the pending ones."""

    entry_id = models.CharField(primary_key=True, max_length=40)
    event_id = models.CharField(max_length=200, db_index=True)
    owner_id = models.CharField(max_length=128, blank=True, default="")
    status = models.CharField(max_length=20)
    detected_at = models.DateTimeField(null=True, blank=True)
    seq = models.BigIntegerField(default=0)
    snapshot = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"{self.entry_id} ({self.status})"
