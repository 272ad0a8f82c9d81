"""A calendar read waits, briefly, for a live projector to reach the log head it saw (read your writes),
and never waits for a projector that is not running."""

from __future__ import annotations

import pytest
from django.test import override_settings

from calendar_projection import freshness
from calendar_projection.models import ProjectionState
from scheduling import clock, presence
from scheduling.services import jobs as job_services
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db


def behind() -> ProjectionState:
    job_services.create_job(job_payload(), None)  # seq 1 in the log; the projection is still at 0
    return ProjectionState(name="calendar", version=1, last_event_seq=0)


def test_a_live_projector_that_catches_up_is_waited_for(monkeypatch):
    state = behind()
    presence.announce("projector", "projector:test", clock.now())
    reads = iter([ProjectionState(last_event_seq=0), ProjectionState(version=2, last_event_seq=1)])
    monkeypatch.setattr(freshness, "current_state", lambda: next(reads))
    assert freshness.caught_up_state(state).last_event_seq == 1


def test_without_a_live_projector_the_read_answers_at_once(monkeypatch):
    state = behind()
    monkeypatch.setattr(freshness, "current_state", lambda: pytest.fail("must not poll"))
    assert freshness.caught_up_state(state) is state


@override_settings(UA_CALENDAR_CATCH_UP_MS=30)
def test_the_wait_is_bounded(monkeypatch):
    state = behind()
    presence.announce("projector", "projector:test", clock.now())
    monkeypatch.setattr(freshness, "current_state", lambda: ProjectionState(last_event_seq=0))
    assert freshness.caught_up_state(state).last_event_seq == 0
