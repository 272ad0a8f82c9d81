"""Races on real PostgreSQL: processes flushing metrics into the same rows at once lose no increment, and
two confirms of one change proposal apply it exactly once."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from scheduling.errors import Conflict
from scheduling.metrics import Recorder
from scheduling.metrics_report import read_report
from scheduling.models import ChangeProposal, LifecycleEvent
from scheduling.services import change_requests
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def in_threads(count: int, work) -> list:
    """Run `work(index)` in `count` threads released together; returns results or raised errors."""
    barrier, results = threading.Barrier(count), [None] * count

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:  # collected for the assertions
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_flushes_from_many_processes_add_up_exactly():
    def process(index: int) -> None:
        recorder = Recorder(f"host-{index}:1")
        for round_ in range(25):
            recorder.count("push_stream_event_payloads", 2)
            recorder.count(f"event_counts.cron.type_{round_ % 3}")
            recorder.observe("due_lag_seconds", index / 100)
            recorder.flush()

    assert all(result is None for result in in_threads(4, process))
    report = read_report()
    assert report.value("push_stream_event_payloads") == 4 * 25 * 2
    assert sum(report.nested("event_counts.")["cron"].values()) == 100
    assert report.value("due_lag_seconds.samples") == 100 and report.value("due_lag_seconds.max") == 0.03


def test_two_simultaneous_confirms_apply_a_proposal_once():
    job = job_services.create_job(job_payload(), None)
    event_id = f"cron|{job.job_id}|1780318800"
    # A change that could be applied twice without complaint: only the proposal's row lock stops that.
    proposal = change_requests.propose_change(event_id, {"instruction": "every 2 hours"}, None)
    body = {"proposal_id": proposal.proposal_id, "approve": True}
    results = in_threads(2, lambda _: change_requests.confirm_change(event_id, body, None))
    assert Counter(type(result).__name__ for result in results) == {"tuple": 1, "Conflict": 1}
    assert isinstance(next(r for r in results if not isinstance(r, tuple)), Conflict)
    assert LifecycleEvent.objects.filter(event_type="cron_job_updated").count() == 1
    assert ChangeProposal.objects.get().status == "applied"
