"""The projector's units of work: apply the next batch of events, rebuild from the domain tables, roll the
materialised future forward. The loop around them is `calendar_projection.loop`.

Position and writes commit together: each batch locks the ProjectionState row (SELECT ... FOR UPDATE),
applies events seq > last_event_seq, and stores the new position, version and last_event_at in the same
transaction. Several projectors are therefore safe, one applying at a time, and a replayed event is a
no-op. When the next event the projector needs has been trimmed from the log (retention keeps the newest
UA_SCHED_EVENT_BUS_MAX), or on first start, it rebuilds from the domain tables - the source of truth - in
one snapshot and continues from the log head read in that snapshot.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from calendar_projection import frames as frames_mod
from calendar_projection.applying import Batch, Fact
from calendar_projection.models import CalendarEntry, CalendarSource, CalendarStasisEntry, ProjectionState
from calendar_projection.publish import publish
from calendar_projection.sources import ROLL_WHEN_LEFT, materialise
from scheduling import clock, metrics, snapshots
from scheduling.models import CronJob, CronRun, HeartbeatRun, HeartbeatSession, LifecycleEvent, StasisEntry

logger = logging.getLogger(__name__)

STATE_NAME = "calendar"
BATCH = 500
ROLL_BATCH = 200
# Runs older than the contract's window (now - 30 d) never show; a rebuild leaves them out.
HISTORY_DAYS = 31


def _ensure_state() -> None:
    if ProjectionState.objects.filter(name=STATE_NAME).exists():
        return
    try:
        with transaction.atomic():
            ProjectionState.objects.create(name=STATE_NAME)
    except IntegrityError:
        pass  # another projector created it first


def _locked_state() -> ProjectionState:
    # The row lock is the projector lock: held to commit, so one projector applies at a time.
    return ProjectionState.objects.select_for_update().get(name=STATE_NAME)


_collector_pauses = 0
_resume_collector = False
_collector_lock = threading.Lock()


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a batch is applied. A new hourly job makes 360 entries
    with their bodies and frames; those allocations set off collection after collection, each walking
    every live object, which was a quarter of the projector's CPU (issue 10). A batch's objects are freed
    by reference counting when it ends, and the collector runs as usual again afterwards. Projectors in
    several threads of one process share one pause, lifted when the last of them is done."""
    global _collector_pauses, _resume_collector
    with _collector_lock:
        if _collector_pauses == 0:
            _resume_collector = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _resume_collector:
                gc.enable()


def project_next_batch(limit: int = BATCH) -> int:
    """Apply up to `limit` events after the stored position; returns how many were applied (a rebuild
    counts as one). 0 means the projection is caught up."""
    _ensure_state()
    started = time.perf_counter()
    with transaction.atomic():
        state = _locked_state()
        events = list(LifecycleEvent.objects.filter(seq__gt=state.last_event_seq).order_by("seq")[:limit])
        stale = state.updated_at is None or (events and events[0].seq != state.last_event_seq + 1)
        if not stale and not events and _log_head() < state.last_event_seq:
            stale = True  # the log was reset under us
        if stale:
            batch = None
        else:
            if not events:
                return 0
            now = clock.now()
            with collector_paused():
                batch = Batch(now=now)
                facts = [_fact(event) for event in events]
                batch.load(facts)
                for fact in facts:
                    batch.apply(fact)
                batch.flush()
                first_version = state.version + 1
                state.version += len(events)
                state.last_event_seq, state.last_event_at = events[-1].seq, events[-1].occurred_at
                state.updated_at = now
                state.save()
                built = frames_mod.build(events, batch, first_version, state.last_event_seq)
    if batch is None:
        return rebuild()
    _after_commit(built, len(events), started)
    return len(events)


def _after_commit(built: list[Any], applied: int, started: float) -> None:
    try:
        publish(built)
    except Exception:  # push is a doorbell; consumers re-read the log on a gap
        logger.exception("publishing projection frames failed", extra={"action": "projection_publish_failed"})
    metrics.observe("projection_build_ms", (time.perf_counter() - started) * 1000)
    metrics.count("projection_events_applied", applied)


def _log_head() -> int:
    last = LifecycleEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    return last or 0


def _fact(event: LifecycleEvent) -> Fact:
    return Fact(
        event.seq, event.event_type, event.source, event.source_ref, event.status, event.payload or {}
    )


def rebuild() -> int:
    """Rebuild the read model from the domain tables and set the position to the log head, all read in
    one snapshot. The version keeps increasing. Returns 1 (one unit of work done)."""
    _ensure_state()
    started = time.perf_counter()
    fresh_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and fresh_transaction:
            # One snapshot for every table and the log head. A concurrent projector's commit after our
            # snapshot makes the FOR UPDATE below fail with a serialization error: we retry later.
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        state = _locked_state()
        head = LifecycleEvent.objects.order_by("-seq").first()
        head_seq = head.seq if head else 0
        now = clock.now()
        CalendarEntry.objects.all().delete()
        CalendarSource.objects.all().delete()
        CalendarStasisEntry.objects.all().delete()
        batch = Batch(now=now, fresh=True)
        for fact in domain_facts(now, head_seq):
            batch.apply(fact)
        batch.flush()
        state.version += 1
        state.last_event_seq = head_seq
        state.last_event_at = head.occurred_at if head else state.last_event_at
        state.updated_at = now
        state.save()
    logger.info(
        "projection rebuilt at seq=%s version=%s", head_seq, state.version,
        extra={"action": "projection_rebuilt"},
    )  # fmt: skip
    metrics.observe("projection_build_ms", (time.perf_counter() - started) * 1000)
    metrics.count("projection_rebuilds")
    return 1


def domain_facts(now: datetime, seq: int) -> list[Fact]:
    """The domain tables as facts at `seq`: definitions first, then runs and pending stasis entries."""
    facts: list[Fact] = []
    for job in CronJob.objects.all().iterator(chunk_size=2000):
        payload = {"job_id": job.job_id, "job": snapshots.job_snapshot(job)}
        facts.append(Fact(seq, "cron_job_created", "cron", job.job_id, "", payload))
    for session in HeartbeatSession.objects.all():
        payload = {"session_id": session.session_id, "session": snapshots.session_snapshot(session)}
        status = "enabled" if session.enabled else "disabled"
        facts.append(Fact(seq, "heartbeat_scheduled", "heartbeat", session.session_id, status, payload))
    since = now - timedelta(days=HISTORY_DAYS)
    recent = Q(scheduled_at__gte=since) | Q(scheduled_at__isnull=True, created_at__gte=since)
    for run in CronRun.objects.filter(recent).exclude(status="queued").iterator(chunk_size=2000):
        payload = {"run_id": run.run_id, "job_id": run.job_id, "run": snapshots.run_snapshot(run)}
        facts.append(Fact(seq, "cron_run_completed", "cron", run.job_id, run.status, payload))
    for hb in HeartbeatRun.objects.filter(recent).exclude(status="queued").iterator(chunk_size=2000):
        payload = {"run_id": hb.run_id, "run": snapshots.heartbeat_run_snapshot(hb)}
        facts.append(Fact(seq, "heartbeat_completed", "heartbeat", hb.session_id, hb.status, payload))
    for entry in StasisEntry.objects.filter(status="pending"):
        payload = {"entry_id": entry.entry_id, "entry": snapshots.stasis_snapshot(entry)}
        facts.append(Fact(seq, "stasis_entry_created", entry.source, entry.source_ref, entry.status, payload))
    return facts


def roll_forward(limit: int = ROLL_BATCH) -> int:
    """Extend the materialised future of sources whose horizon runs short (time passes); returns how
    many sources were rolled, `limit` meaning more may be waiting."""
    _ensure_state()
    now = clock.now()
    with transaction.atomic():
        _locked_state()  # the projector lock: a batch must not rematerialise the same source meanwhile
        due = list(
            CalendarSource.objects.filter(deleted=False, definition_seq__gte=0)
            .exclude(kind="")
            .filter(Q(materialised_until__isnull=True) | Q(materialised_until__lt=now + ROLL_WHEN_LEFT))
            .order_by("materialised_until")[:limit]
        )
        if due:
            materialise(due, now)
            CalendarSource.objects.bulk_update(due, ["materialised_until", "dense"], batch_size=500)
    return len(due)


def projection_lag() -> dict[str, Any]:
    """How far the projection is behind the log (for health and metrics)."""
    state = ProjectionState.objects.filter(name=STATE_NAME).first()
    head = _log_head()
    behind = head - (state.last_event_seq if state else 0)
    return {"events_behind": max(0, behind), "version": state.version if state else 0}
