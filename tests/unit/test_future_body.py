"""The projector fills one rendered template per source for its future occurrences; what it stores must be
exactly what rendering each occurrence in full gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from calendar_projection.models import CalendarEntry
from calendar_projection.shapes import FutureBody, Occurrence, SourceInfo, event_id_of, static_body
from calendar_projection.sources import new_entry

AWKWARD = ["plain", 'quote " and \\\\ backslash', "ünïcødé ☃", "\u0001id", "\u0001epoch \u0001utc", ""]


@pytest.mark.parametrize("title", AWKWARD)
@pytest.mark.parametrize("status", ["scheduled", "disabled"])
def test_a_filled_template_equals_the_full_rendering(title, status):
    info = SourceInfo(source="cron", source_ref="job_1", owner_id="o", title=title, description=title,
                      enabled=status == "scheduled", session_id="s", channel="c")  # fmt: skip
    body = FutureBody(info, status, "o")
    start = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    for step in range(0, 48 * 3600, 1877):
        moment = start + timedelta(seconds=step, microseconds=step % 7)
        event_id = event_id_of("cron", "job_1", moment)
        assert body.render(event_id, moment) == static_body(
            Occurrence(event_id, moment, status, "o"), info, False
        )


def test_a_fast_new_entry_is_the_entry_the_model_would_make():
    values = dict(event_id="cron|j|1", calendar_source_id=3, source="cron", source_ref="j",
                  scheduled_at=datetime(2026, 1, 1, tzinfo=UTC), status="scheduled")  # fmt: skip
    fast, slow = new_entry(**values), CalendarEntry(**values)
    names = [field.attname for field in CalendarEntry._meta.concrete_fields]
    assert [getattr(fast, name) for name in names] == [getattr(slow, name) for name in names]
    assert fast._state.adding and fast._state.db is None
