"""Calendar change requests (contract §7): the deterministic parser, persisted proposals, confirm once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scheduling import clock
from scheduling.errors import InvalidInput
from scheduling.instructions import Instruction, parse_instruction
from scheduling.models import ChangeProposal, CronJob, CronRun, HeartbeatSession, StasisEntry
from scheduling.services import claims
from tests.conftest import job_payload
from tests.unit.test_bad_input_never_500 import db_state

API = "/api/v1"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("every 2 hours", Instruction(every_seconds=7200)),
        ("Every 30m", Instruction(every_seconds=1800)),
        ("run every 1 day.", Instruction(every_seconds=86400)),
        ("every hour", Instruction(every_seconds=3600)),
        ("in 90 minutes", Instruction(delay_seconds=5400)),
        ("run in 2h", Instruction(delay_seconds=7200)),
        ("at 9am", Instruction(clock_time="9:00am")),
        ("at 5:30 PM", Instruction(clock_time="5:30pm")),
        ("run at 11:15p.m.", Instruction(clock_time="11:15pm")),
        ("pause", Instruction(action="pause")),
        ("  Resume ", Instruction(action="resume")),
        ("run now!", Instruction(action="run_now")),
    ],
)
def test_the_parser_understands_its_grammar(text, parsed):
    assert parse_instruction(text) == parsed


@pytest.mark.parametrize(
    "text",
    ["", "   ", None, 7, "make it faster", "every 2 fortnights", "every 0 minutes", "at 13pm", "at 9:75am",
     "at 9", "pause please", "in soon", "x" * 501, "delete everything"],
)  # fmt: skip
def test_anything_else_is_refused_naming_instruction(text):
    with pytest.raises(InvalidInput) as refused:
        parse_instruction(text)
    assert refused.value.field == "instruction"


pytestmark_db = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clock_at_t0():
    with clock.frozen(T0):
        yield


def request_change(client, event_id, instruction, **extra):
    return client.post(
        f"{API}/ops/calendar/events/{event_id}/change-request",
        {"instruction": instruction, **extra},
        format="json",
    )


def confirm(client, event_id, proposal_id, approve=True):
    return client.post(
        f"{API}/ops/calendar/events/{event_id}/change-request/confirm",
        {"proposal_id": proposal_id, "approve": approve},
        format="json",
    )


def new_job(client, **overrides) -> dict:
    return client.post(f"{API}/cron/jobs", job_payload(**overrides), format="json").json()["job"]


def event_of(job: dict, hours: int = 1) -> str:
    return f"cron|{job['job_id']}|{int((T0 + timedelta(hours=hours)).timestamp())}"


@pytestmark_db
def test_every_n_unit_is_proposed_then_applied_once_and_a_second_confirm_is_409(operator):
    job = new_job(operator)
    event_id = event_of(job)
    response = request_change(operator, event_id, "every 2 hours")
    assert response.status_code == 200, response.content
    proposal = response.json()["proposal"]
    assert proposal["event_id"] == event_id and proposal["instruction"] == "every 2 hours"
    assert (proposal["changes"], proposal["action"], proposal["status"]) == ({"every": 7200}, None, "pending")
    assert "every 2 hours" in proposal["summary"]
    assert CronJob.objects.get(job_id=job["job_id"]).every_seconds == 3600  # nothing applied yet
    applied = confirm(operator, event_id, proposal["proposal_id"])
    assert applied.status_code == 200, applied.content
    assert (
        applied.json()["proposal"]["status"] == "applied" and applied.json()["job"]["every_seconds"] == 7200
    )
    before = db_state()
    again = confirm(operator, event_id, proposal["proposal_id"])
    assert again.status_code == 409 and again.json()["field"] == "proposal_id"
    assert confirm(operator, event_id, proposal["proposal_id"], approve=False).status_code == 409
    assert db_state() == before


@pytestmark_db
def test_a_rejected_proposal_changes_nothing_and_cannot_be_confirmed_later(operator):
    job = new_job(operator)
    proposal = request_change(operator, event_of(job), "pause").json()["proposal"]
    assert proposal["action"] == "pause" and proposal["changes"] is None
    rejected = confirm(operator, event_of(job), proposal["proposal_id"], approve=False)
    assert rejected.status_code == 200 and rejected.json()["proposal"]["status"] == "rejected"
    assert CronJob.objects.get(job_id=job["job_id"]).enabled is True
    assert confirm(operator, event_of(job), proposal["proposal_id"]).status_code == 409


@pytestmark_db
def test_pause_resume_and_run_now_apply_through_the_action_services(operator):
    job = new_job(operator)
    for instruction, check in (
        ("pause", lambda body: body["job"]["enabled"] is False),
        ("resume", lambda body: body["job"]["enabled"] is True),
        ("run now", lambda body: body["run"]["reason"] == "calendar_action"),
    ):
        proposal = request_change(operator, event_of(job), instruction).json()["proposal"]
        body = confirm(operator, event_of(job), proposal["proposal_id"]).json()
        assert body["status"] == "ok" and check(body), (instruction, body)


@pytestmark_db
def test_in_n_unit_on_a_recurring_job_schedules_a_one_shot_copy(operator):
    job = new_job(operator)
    proposal = request_change(operator, event_of(job), "in 90 minutes").json()["proposal"]
    assert proposal["action"] == "reschedule" and proposal["run_at_utc"] == "2026-06-01T13:30:00Z"
    copy = confirm(operator, event_of(job), proposal["proposal_id"]).json()["job"]
    assert copy["schedule_kind"] == "at" and copy["run_at"] == "2026-06-01T13:30:00Z"
    assert copy["metadata"]["backfill_for_job_id"] == job["job_id"]


@pytestmark_db
def test_at_a_time_on_a_missed_occurrence_reschedules_it_and_resolves_its_entry(operator):
    job = new_job(operator, timezone="America/Chicago")
    clock.set_frozen(T0 + timedelta(hours=2, minutes=30))
    claims.claim_due_occurrences(clock.now(), "scheduler:test", 100)
    entry = StasisEntry.objects.get(status="pending")
    proposal = request_change(operator, entry.event_id, "at 9:30pm").json()["proposal"]
    assert proposal["run_at_utc"] == "2026-06-02T02:30:00Z"  # 21:30 CDT, in the job's zone
    body = confirm(operator, entry.event_id, proposal["proposal_id"]).json()
    assert body["entry"]["status"] == "rescheduled" and body["job"]["run_at"] == "2026-06-02T02:30:00Z"
    assert body["job"]["metadata"]["backfill_for_job_id"] == job["job_id"]


@pytestmark_db
def test_at_a_time_on_a_one_shot_moves_it(operator):
    job = new_job(operator, every=None, run_at="in 2 hours")
    proposal = request_change(operator, event_of(job, 2), "at 5pm", timezone="UTC").json()["proposal"]
    assert proposal["changes"] == {"run_at": "2026-06-01T17:00:00Z"} and proposal["action"] is None
    moved = confirm(operator, event_of(job, 2), proposal["proposal_id"]).json()["job"]
    assert moved["job_id"] == job["job_id"] and moved["run_at"] == "2026-06-01T17:00:00Z"


@pytestmark_db
def test_heartbeat_change_requests_set_the_interval_or_wake(operator):
    operator.put(f"{API}/heartbeat/sessions/s-1", {"every": "1h"}, format="json")
    event_id = f"heartbeat|s-1|{int(T0.timestamp()) + 3600}"
    proposal = request_change(operator, event_id, "every 45 minutes").json()["proposal"]
    assert confirm(operator, event_id, proposal["proposal_id"]).json()["session"]["every_seconds"] == 2700
    woken = request_change(operator, event_id, "run now").json()["proposal"]
    assert confirm(operator, event_id, woken["proposal_id"]).json()["session"]["pending_wake"] == "now"
    assert request_change(operator, event_id, "in 2 hours").json()["field"] == "instruction"


@pytestmark_db
@pytest.mark.parametrize(
    ("instruction", "extra", "field"),
    [
        ("make it snappier", {}, "instruction"),
        ("", {}, "instruction"),
        (7, {}, "instruction"),
        ("every 10 seconds", {}, "instruction"),  # below the interval floor
        ("at 9am", {"timezone": "Mars/Olympus"}, "timezone"),
    ],
)
def test_a_change_request_that_cannot_be_understood_is_a_400_that_stores_nothing(
    operator, instruction, extra, field
):
    job = new_job(operator)
    before = db_state()
    response = request_change(operator, event_of(job), instruction, **extra)
    assert response.status_code == 400 and response.json()["field"] == field, response.content
    assert db_state() == before


@pytestmark_db
def test_confirm_needs_a_proposal_of_this_event_and_a_boolean(operator):
    job, other = new_job(operator), new_job(operator)
    proposal = request_change(operator, event_of(job), "pause").json()["proposal"]
    assert confirm(operator, event_of(other), proposal["proposal_id"]).status_code == 404
    bad = operator.post(
        f"{API}/ops/calendar/events/{event_of(job)}/change-request/confirm",
        {"proposal_id": proposal["proposal_id"], "approve": "yes"},
        format="json",
    )
    assert bad.status_code == 400 and bad.json()["field"] == "approve"
    assert ChangeProposal.objects.get().status == "pending"


@pytestmark_db
def test_owner_tokens_propose_and_confirm_only_for_their_own_events(owner_client):
    alice, bob = owner_client("alice"), owner_client("bob")
    his = new_job(bob)
    assert request_change(alice, event_of(his), "pause").status_code == 404
    proposal = request_change(bob, event_of(his), "pause").json()["proposal"]
    assert confirm(alice, event_of(his), proposal["proposal_id"]).status_code == 404
    assert confirm(bob, event_of(his), proposal["proposal_id"]).status_code == 200


@pytestmark_db
def test_a_confirm_that_fails_to_apply_changes_nothing_and_leaves_the_proposal_pending(operator):
    job = new_job(operator, overlap="skip")
    proposal = request_change(operator, event_of(job), "run now").json()["proposal"]
    operator.post(f"{API}/cron/jobs/{job['job_id']}/run")  # now the job counts as running
    before = db_state()
    refused = confirm(operator, event_of(job), proposal["proposal_id"])
    assert refused.status_code == 409 and db_state() == before
    assert CronRun.objects.count() == 1 and ChangeProposal.objects.get().status == "pending"
    assert not HeartbeatSession.objects.exists()
