"""Bulk job creation (contract §2): an array body creates up to 1,000 jobs in one transaction with one
event append, on whichever database the run uses."""

from __future__ import annotations

import pytest

from scheduling import doorbell
from scheduling.models import CronJob, LifecycleEvent
from tests.conftest import job_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/cron/jobs"


def test_an_array_creates_every_job_and_answers_them_in_the_order_given(operator, frozen_now):
    items = [job_payload(title=f"job {n}", every=f"{n + 1}h") for n in range(5)]
    response = operator.post(URL, items, format="json")
    assert response.status_code == 201, response.content
    jobs = response.json()["jobs"]
    assert [job["title"] for job in jobs] == [f"job {n}" for n in range(5)]
    assert [job["every_seconds"] for job in jobs] == [3600 * (n + 1) for n in range(5)]
    assert all(job["running"] is False and job["last_run"] is None for job in jobs)
    listed = operator.get(URL).json()["jobs"]
    assert {job["job_id"] for job in listed} == {job["job_id"] for job in jobs}


def test_a_bulk_created_job_looks_exactly_like_a_single_created_one(operator, frozen_now):
    item = job_payload(cron_expr="0 9 * * *", every=None)
    single = operator.post(URL, item, format="json").json()["job"]
    bulk = operator.post(URL, [item], format="json").json()["jobs"][0]
    assert {**bulk, "job_id": None} == {**single, "job_id": None}
    events = list(LifecycleEvent.objects.order_by("seq"))
    assert events[0].payload["job"] == {**events[1].payload["job"], "job_id": single["job_id"]}


def test_each_job_gets_one_created_event_with_consecutive_seqs_appended_in_one_batch(
    operator, django_capture_on_commit_callbacks
):
    before = LifecycleEvent.objects.count()
    rings = []
    unsubscribe = doorbell.subscribe(lambda: rings.append(1))
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = operator.post(URL, [job_payload(title=str(n)) for n in range(20)], format="json")
    finally:
        unsubscribe()
    jobs = response.json()["jobs"]
    events = list(LifecycleEvent.objects.order_by("seq"))[before:]
    assert [e.event_type for e in events] == ["cron_job_created"] * 20
    assert [e.source_ref for e in events] == [job["job_id"] for job in jobs]
    assert [e.seq for e in events] == list(range(events[0].seq, events[0].seq + 20))
    assert rings == [1], "the scheduler is woken once for the whole batch"


def test_a_thousand_jobs_fit_in_one_request_although_the_body_is_over_64_kib(operator):
    items = [job_payload(title=f"import {n:04d}", command="c" * 100) for n in range(1000)]
    response = operator.post(URL, items, format="json")
    assert response.status_code == 201, response.content[:300]
    assert CronJob.objects.count() == 1000 and LifecycleEvent.objects.count() == 1000


def test_an_owner_tokens_bulk_jobs_belong_to_it_and_stay_invisible_to_others(owner_client, alice):
    response = alice.post(URL, [job_payload(), job_payload(user_id="alice")], format="json")
    assert response.status_code == 201, response.content
    assert [job["user_id"] for job in response.json()["jobs"]] == ["alice", "alice"]
    assert set(LifecycleEvent.objects.values_list("owner_id", flat=True)) == {"alice"}
    assert owner_client("bob").get(URL).json()["jobs"] == []


def test_an_owner_token_cannot_bulk_create_for_another_user_and_nothing_is_written(alice):
    response = alice.post(URL, [job_payload(), job_payload(user_id="bob")], format="json")
    assert response.status_code == 400 and response.json()["field"] == "1.user_id"
    assert CronJob.objects.count() == 0 and LifecycleEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("bad_item", "field"),
    [({"cron_expr": "61 * * * *", "every": None}, "3.cron_expr"), ({"every": None}, "3.schedule")],
)
def test_one_bad_item_names_its_index_and_field_and_nothing_is_written(operator, bad_item, field):
    items = [job_payload() for _ in range(5)]
    items[3] = {**items[3], **bad_item}
    response = operator.post(URL, items, format="json")
    assert response.status_code == 400 and response.json()["field"] == field, response.content
    assert CronJob.objects.count() == 0 and LifecycleEvent.objects.count() == 0
