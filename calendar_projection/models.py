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
