"""Django admin: every page renders, edits go through the job service's bookkeeping and append events,
and stasis actions call the stasis services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User

from scheduling import clock
from scheduling.models import CronJob, LifecycleEvent, StasisEntry
from scheduling.services import claims
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def staff(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def job_form(**overrides):
    form = {
        "owner_id": "", "command": "summarise", "schedule_kind": "every", "run_at_0": "", "run_at_1": "",
        "cron_expr": "", "every_seconds": "3600", "timezone": "UTC", "enabled": "on", "session_id": "",
        "channel": "", "title": "from admin", "priority": "normal", "wake_heartbeat": "off",
        "missed_policy": "stasis", "overlap": "skip", "timeout_seconds": "600", "target": "null",
        "model": "", "metadata": "{}",
    }  # fmt: skip
    form.update(overrides)
    return form


@pytest.mark.parametrize(
    "model", ["cronjob", "cronrun", "heartbeatsession", "heartbeatrun", "stasisentry", "notification",
              "lifecycleevent"],
)  # fmt: skip
def test_every_admin_list_renders(staff, model):
    with clock.frozen(T0):
        job_services.create_job(job_payload(), None)
    assert staff.get(f"/admin/scheduling/{model}/").status_code == 200


def test_job_added_in_admin_is_scheduled_and_recorded(staff):
    with clock.frozen(T0):
        response = staff.post("/admin/scheduling/cronjob/add/", job_form())
    assert response.status_code == 302, response.content.decode()[:2000]
    job = CronJob.objects.get()
    assert job.next_run_at == T0 + timedelta(hours=1)
    assert LifecycleEvent.objects.get().event_type == "cron_job_created"


def test_admin_rejects_a_bad_cron_expression(staff):
    response = staff.post("/admin/scheduling/cronjob/add/", job_form(schedule_kind="cron", cron_expr="nope"))
    assert response.status_code == 200 and not CronJob.objects.exists()


def test_stasis_admin_action_approves_and_runs(staff):
    with clock.frozen(T0):
        job_services.create_job(job_payload(every="1h"), None)
    claims.claim_due_occurrences(T0 + timedelta(hours=3), "w", 10)
    entry = StasisEntry.objects.get(status="pending")
    response = staff.post(
        "/admin/scheduling/stasisentry/",
        {"action": "approve_and_run", "_selected_action": [entry.entry_id]},
    )
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.status == "approved_and_run" and entry.resolution_run_id
