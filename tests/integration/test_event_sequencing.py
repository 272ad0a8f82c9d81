"""`seq` is gapless and in commit order under concurrent writers (contract §4), on real PostgreSQL.

Writers hold their transaction open for a moment after appending, which is exactly when a naive sequence
lets a later number commit first. The control test runs the same race with a plain PostgreSQL sequence
instead of the serialising lock and shows the checker catches the gaps and losses that causes.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import pytest
from django.db import connection, connections, transaction

from scheduling import event_log
from scheduling.models import LifecycleEvent
from scheduling.services import jobs as job_services
from tests.conftest import job_payload, requires_postgres

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 4
EVENTS_PER_WRITER = 120


@dataclass
class ReaderLog:
    seen: list[int] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)


def write_events(writer: int, start: threading.Barrier) -> None:
    rng = random.Random(writer)
    try:
        start.wait()
        for index in range(EVENTS_PER_WRITER):
            with transaction.atomic():
                job_services.create_job(job_payload(title=f"w{writer}-{index}"), None)
                # Hold the transaction open after the append: the window a reader must not fall into.
                time.sleep(rng.uniform(0, 0.002))
    finally:
        connections.close_all()


def tail_events(done: threading.Event, log: ReaderLog) -> None:
    """A client paging by since_seq, as the replay endpoint does, noting every jump in the sequence."""
    since = 0
    try:
        while True:
            finished = done.is_set()
            for event in event_log.read_since(since, 500):
                if event.seq != since + 1:
                    log.gaps.append((since, event.seq))
                log.seen.append(event.seq)
                since = event.seq
            if finished:
                return
    finally:
        connections.close_all()


def race() -> ReaderLog:
    start, done, log = threading.Barrier(WRITERS), threading.Event(), ReaderLog()
    reader = threading.Thread(target=tail_events, args=(done, log))
    writers = [threading.Thread(target=write_events, args=(n, start)) for n in range(WRITERS)]
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    return log


def test_concurrent_appends_are_seen_once_in_order_with_no_gaps():
    log = race()
    total = WRITERS * EVENTS_PER_WRITER
    assert log.gaps == []
    assert log.seen == list(range(1, total + 1))
    assert list(LifecycleEvent.objects.order_by("seq").values_list("seq", flat=True)) == log.seen


def test_control_without_the_lock_a_tailing_reader_misses_events(monkeypatch):
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE IF NOT EXISTS naive_event_seq")
    # One event per transaction, numbered by a plain sequence and no lock: the obvious design.
    monkeypatch.setattr(
        event_log, "_sequencing_sql", lambda table: ("", "SELECT nextval('naive_event_seq') - 1 AS last")
    )
    try:
        log = race()
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP SEQUENCE naive_event_seq")
    stored = set(LifecycleEvent.objects.values_list("seq", flat=True))
    assert log.gaps, "the unserialised variant should let later numbers commit first"
    assert stored - set(log.seen), "and a tailing reader should lose the numbers that committed late"
