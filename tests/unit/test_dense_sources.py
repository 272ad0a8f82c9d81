"""Jobs that fire more often in a day than a window lists (minutely ones) store no future rows: the
feed expands them per request. Both paths still agree, whatever the window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendar_projection.models import CalendarEntry, CalendarSource
from calendar_projection.projector import project_next_batch
from scheduling import clock
from scheduling.services import jobs as job_services
from tests.conftest import job_payload
from tests.unit.test_calendar_parity import drain, feed, keys

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def minutely_and_hourly():
    with clock.frozen(NOW):
        project_next_batch()
        minutely = job_services.create_job(job_payload(every="60s", title="poll"), None)
        hourly = job_services.create_job(job_payload(every="1h", title="digest"), None)
        drain()
    return minutely, hourly


def test_a_minutely_job_stores_no_future_rows_but_an_hourly_one_does(minutely_and_hourly):
    minutely, hourly = minutely_and_hourly
    assert CalendarSource.objects.get(source_ref=minutely.job_id).dense
    assert not CalendarEntry.objects.filter(source_ref=minutely.job_id).exists()
    assert CalendarEntry.objects.filter(source_ref=hourly.job_id).count() >= 14 * 24


@pytest.mark.parametrize(
    "params",
    [
        {},  # the week: the minutely job is always running
        {"view": "day"},
        {"start": str(NOW.timestamp() + 3600), "end": str(NOW.timestamp() + 3600 + 1800)},  # 30 events
        {"start": str(NOW.timestamp() + 10 * 86400), "end": str(NOW.timestamp() + 10 * 86400 + 7200)},
    ],
)
def test_both_paths_show_the_same_calendar_for_a_dense_job(operator, minutely_and_hourly, params):
    minutely, _ = minutely_and_hourly
    with clock.frozen(NOW + timedelta(seconds=5)):
        projected, scanned = feed(operator, params, True), feed(operator, params, False)
    assert projected["path"] == "projection" and scanned["path"] == "scan"
    assert keys(projected) == keys(scanned)
    listed = [e for e in projected["events"] if e["source_ref"] == minutely.job_id]
    dense = [item for item in projected["always_running"] if item["source_ref"] == minutely.job_id]
    assert bool(listed) != bool(dense)
    if dense:
        scan_item = next(i for i in scanned["always_running"] if i["source_ref"] == minutely.job_id)
        assert dense[0]["count"] == scan_item["count"]
