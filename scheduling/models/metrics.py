from __future__ import annotations

from django.db import models


class RuntimeMetric(models.Model):
    """One persisted metric value (contract §8). Processes buffer increments in memory and merge them in
    here in batches (`scheduling.metrics`): sums add, maxima keep the larger, lasts keep the newer.
    Per-process gauges are rows named `gauge.<name>.<process>`, fresh while their process keeps writing."""

    name = models.CharField(primary_key=True, max_length=200)
    value = models.FloatField(default=0.0)
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}={self.value}"
