from __future__ import annotations

from django.db import models


class LifecycleEvent(models.Model):
    """The sequenced event log. `seq` is assigned under a lock held to commit, so it is gapless and in
    commit order: a reader paging by `seq > since_seq` can never skip a row that commits later."""

    seq = models.BigIntegerField(primary_key=True)
    event_type = models.CharField(max_length=40)
    source = models.CharField(max_length=10)
    source_ref = models.CharField(max_length=128)
    owner_id = models.CharField(max_length=128, blank=True, default="", db_index=True)
    session_id = models.CharField(max_length=128, blank=True, default="")
    channel = models.CharField(max_length=128, blank=True, default="")
    occurred_at = models.DateTimeField()
    status = models.CharField(max_length=24, blank=True, default="")
    payload = models.JSONField(default=dict)

    class Meta:
        ordering = ["seq"]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.source_ref}"


class WorkerPresence(models.Model):
    """A scheduler or projector process announcing itself; health reads the freshest row per kind."""

    worker_id = models.CharField(primary_key=True, max_length=128)
    kind = models.CharField(max_length=16)
    host = models.CharField(max_length=128, blank=True, default="")
    pid = models.IntegerField(default=0)
    started_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.worker_id
