"""An enabled session or recurring job that no scheduler will ever pick up is impossible: the database
refuses it (CHECK constraints), and every service path keeps it armed (one body for both databases)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from scheduling import clock
from scheduling.models import CronJob, HeartbeatSession
from scheduling.services import claims
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_the_database_refuses_an_enabled_session_without_a_due_time():
    with clock.frozen(T0):
        heartbeat_services.upsert_session("s-1", {"every": "30m"}, None)
    with pytest.raises(IntegrityError), transaction.atomic():
        HeartbeatSession.objects.filter(session_id="s-1").update(next_due_at=None)
    HeartbeatSession.objects.filter(session_id="s-1").update(enabled=False, next_due_at=None)


def test_the_database_refuses_an_enabled_recurring_job_without_a_next_run_unless_parked():
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(every="1h"), None)
        one_shot = job_services.create_job(job_payload(run_at="2026-06-01T13:00:00Z"), None)
    with pytest.raises(IntegrityError), transaction.atomic():
        CronJob.objects.filter(job_id=job.job_id).update(next_run_at=None)
    CronJob.objects.filter(job_id=job.job_id).update(next_run_at=None, parked_reason="broken schedule")
    CronJob.objects.filter(job_id=one_shot.job_id).update(next_run_at=None)  # a one-shot that has run


def test_a_parked_job_records_why_and_saving_it_re_arms_it():
    with clock.frozen(T0):
        job = job_services.create_job(job_payload(every=None, cron_expr="0 9 * * *"), None)
    CronJob.objects.filter(job_id=job.job_id).update(cron_expr="not a cron", next_run_at=T0)
    claims.claim_due_occurrences(T0 + timedelta(minutes=1), "w", 10)
    job.refresh_from_db()
    assert job.next_run_at is None and job.parked_reason.startswith("ScheduleError")
    with clock.frozen(T0 + timedelta(minutes=2)):
        job_services.update_job(job.job_id, {"cron_expr": "0 10 * * *"}, None, partial=True)
    job.refresh_from_db()
    assert job.parked_reason == "" and job.next_run_at == datetime(2026, 6, 1, 10, 0, tzinfo=UTC) + timedelta(
        days=1
    )
