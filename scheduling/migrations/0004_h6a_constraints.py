"""Enabled sessions and recurring jobs are always armed (or, for jobs, parked with a reason)."""

from django.db import migrations, models
from django.utils import timezone


def arm_or_park_existing_rows(apps, schema_editor):
    # Rows left unarmed by the old admin path: a session is made due now (the scheduler re-arms it), a
    # job is parked with a reason an operator can read, rather than guessed at here.
    now = timezone.now()
    apps.get_model("scheduling", "HeartbeatSession").objects.filter(
        enabled=True, next_due_at__isnull=True
    ).update(next_due_at=now)
    apps.get_model("scheduling", "CronJob").objects.filter(
        enabled=True, next_run_at__isnull=True
    ).exclude(schedule_kind="at").update(
        parked_reason="had no next run when the constraint was added; save the job to resume it"
    )


class Migration(migrations.Migration):
    dependencies = [("scheduling", "0003_stasis_plural")]

    operations = [
        migrations.AddField(
            model_name="cronjob",
            name="parked_reason",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RunPython(arm_or_park_existing_rows, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="cronjob",
            constraint=models.CheckConstraint(
                condition=models.Q(enabled=False)
                | models.Q(schedule_kind="at")
                | models.Q(next_run_at__isnull=False)
                | ~models.Q(parked_reason=""),
                name="cron_job_enabled_recurring_is_armed",
            ),
        ),
        migrations.AddConstraint(
            model_name="heartbeatsession",
            constraint=models.CheckConstraint(
                condition=models.Q(enabled=False) | models.Q(next_due_at__isnull=False),
                name="heartbeat_session_enabled_is_armed",
            ),
        ),
    ]
