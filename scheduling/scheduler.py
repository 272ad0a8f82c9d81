"""The scheduler loop: sleeps until the next thing is due or something changes, then claims and
dispatches. Several of these may run against one database (processes or the runtime's thread).

The loop owns timing and concurrency; the work is the service functions it calls (claims, outcomes,
heartbeats), which tests call directly. All database work runs on one dedicated thread, so the asyncio
loop never blocks and the process holds one database connection (plus the LISTEN one on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

from scheduling import clock, dispatch, doorbell, presence, wakeups
from scheduling.dispatch import Outcome
from scheduling.lease_sweep_gate import LeaseSweepGate
from scheduling.services import claims, heartbeat_runs, outcomes
from scheduling.wake_plan import WakePlan, read_wake_plan

logger = logging.getLogger(__name__)
T = TypeVar("T")

CLAIM_BATCH = 250
PRESENCE_EVERY_SECONDS = 25.0
# Rings within this long of the previous look share one look. Every committed API write rings twice in
# the embedded runtime (the in-process doorbell and NOTIFY); without this a burst of writes costs one
# wake-plan query each, on the same process and GIL that serve the requests. A ring after a quiet spell
# is still answered at once, so change pickup is unaffected; under a burst it adds at most this much.
WAKE_COALESCE_SECONDS = 0.01


@dataclass
class SchedulerStats:
    wakeups: int = 0
    runs_started: int = 0
    runs_finished: int = 0
    heartbeats_started: int = 0
    leases_expired: int = 0
    errors: int = 0
    sql_statements: int = 0
    started_at: float = field(default_factory=time.time)


class Scheduler:
    def __init__(self, worker_id: str | None = None, max_concurrency: int | None = None) -> None:
        self.worker_id = worker_id or presence.worker_id("scheduler")
        self.max_concurrency = max_concurrency or settings.UA_CRON_MAX_CONCURRENCY
        self.stats = SchedulerStats()
        self._inflight: dict[str, asyncio.Task] = {}
        self._kinds: dict[str, str] = {}
        self._unrecorded: set[str] = set()
        self._cron_results: list[tuple[str, Outcome]] = []
        self._heartbeat_results: list[tuple[str, Outcome]] = []
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduler-db")
        self._last_presence = 0.0
        self._last_renewal = time.monotonic()
        self._sweep_gate = LeaseSweepGate(settings.UA_RUN_LEASE_SECONDS)
        self._last_look = 0.0

    # --- waking -------------------------------------------------------------------------------------
    def ring(self) -> None:
        """Thread-safe: something changed, look again."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_executor, fn, *args)

    @staticmethod
    def _use_a_connection_of_its_own() -> None:
        """The scheduler's database thread connects directly, outside the server's connection pool.

        It holds one connection for its whole life, so a pool saves it nothing, and a pool's reconnect
        backoff would cost it its leases: after an outage a pool that gave up reconnecting leaves a waiting
        caller blocked until its own timeout (10 s), and one still backing off waits out its delay. A
        holder blocked like that renews its leases later than a sweeper whose pool reconnected at once,
        past the sweeper's one lease period (see lease_sweep_gate), and its runs would end "scheduler
        lost". Connecting directly, each round after the outage reconnects at once and renews first.
        """
        options = connection.settings_dict.get("OPTIONS", {})
        if "pool" in options:
            connection.close()
            unpooled = {key: value for key, value in options.items() if key != "pool"}
            connection.settings_dict = {**connection.settings_dict, "OPTIONS": unpooled}

    def _count_statements(self) -> None:
        """Count this scheduler's SQL statements (its idle cost is a benchmarked number)."""

        def counted(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
            self.stats.sql_statements += 1
            return execute(sql, params, many, context)

        connection.execute_wrappers.append(counted)

    def _running_wake(self) -> asyncio.Event:
        """The loop's wake event; it exists once run() has started."""
        if self._wake is None:
            raise RuntimeError("the scheduler loop is not running")
        return self._wake

    def _ring_when_set(self, stop: threading.Event) -> None:
        stop.wait()
        self.ring()

    # --- the loop -----------------------------------------------------------------------------------
    async def run(self, stop: threading.Event) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        unsubscribe = doorbell.subscribe(self.ring)
        listener_stop = threading.Event()
        if connection.vendor == "postgresql":
            wakeups.start_listener(self.ring, listener_stop)
        # A thread parked on stop.wait() rings the loop awake at once when shutdown is requested.
        stop_waiter = threading.Thread(target=self._ring_when_set, args=(stop,), daemon=True)
        stop_waiter.start()
        await self._db(self._use_a_connection_of_its_own)
        await self._db(self._count_statements)
        started = clock.now()
        logger.info("scheduler %s started", self.worker_id, extra={"action": "scheduler_started"})
        try:
            while not stop.is_set():
                timeout = await self._iterate(started)
                await self._sleep(timeout, stop)
        finally:
            unsubscribe()
            listener_stop.set()
            await self._drain()
            await self._db(self._shutdown_db)
            self._db_executor.shutdown(wait=True)
            await dispatch.close()

    async def _iterate(self, started: datetime) -> float:
        self.stats.wakeups += 1
        self._last_look = time.monotonic()
        # Clear before reading the plan: a ring that lands after the read keeps the event set, so the
        # sleep that follows returns at once instead of missing the change.
        self._running_wake().clear()
        try:
            # Leases first, whatever else this round does or fails to do.
            await self._renew_if_due()
            plan = await self._db(self._read_plan, started)
            self._sweep_gate.database_answered(time.monotonic())
            self._defer_sweep_until_the_gate_opens(plan)
            # Start due work before recording finished work: start lag is what callers feel.
            more, acted = await self._act(plan)
            await self._flush_results()
            return 0.0 if more else self._next_timeout(plan, acted)
        except Exception:
            self.stats.errors += 1
            self._sweep_gate.database_failed()
            logger.exception("scheduler iteration failed", extra={"action": "scheduler_error"})
            await self._db(close_old_connections)
            return 1.0

    def _defer_sweep_until_the_gate_opens(self, plan: WakePlan) -> None:
        """Lapsed leases wait until this scheduler has had a full lease period of database access (see
        lease_sweep_gate); the plan then wakes the loop when the gate opens instead of spinning."""
        wait = self._sweep_gate.seconds_until_open(time.monotonic())
        if plan.next_lease_expiry is not None and wait:
            opens_at = clock.now() + timedelta(seconds=wait)
            plan.next_lease_expiry = max(plan.next_lease_expiry, opens_at)

    def _next_timeout(self, plan: WakePlan, acted: bool) -> float:
        moment = plan.next_at()
        if len(self._inflight) >= self.max_concurrency:
            # Saturated: due work waits for a slot, and every finishing run rings the loop.
            moment = None
        elif moment is not None and moment <= clock.now() and not acted:
            # Due rows exist but another transaction holds them (SKIP LOCKED): back off, do not spin.
            return 0.5
        return self._seconds_until(moment, leases_in_flight=plan.next_lease_expiry is not None)

    async def _act(self, plan: WakePlan) -> tuple[bool, bool]:
        """Do what the plan says is due now. Returns (more may be due at once, anything was done)."""
        now = clock.now()
        more = acted = False
        if plan.leases_expired(now):
            acted = await self._expire_leases(now)
        free = self.max_concurrency - len(self._inflight)
        if free > 0 and plan.queued_runs:
            started = await self._db(claims.claim_queued_runs, now, self.worker_id, free)
            self._start(started)
            free -= len(started)
            more = acted = more or bool(started)
        if free > 0 and plan.job_due(now):
            started, has_more = await self._db(
                claims.claim_due_occurrences, now, self.worker_id, min(free, CLAIM_BATCH)
            )
            self._start(started)
            free -= len(started)
            more = more or has_more
            acted = acted or bool(started) or has_more
        if free > 0 and plan.heartbeat_due(now):
            requests = await self._db(self._claim_heartbeats, now, free)
            self._start(requests)
            self.stats.heartbeats_started += len(requests)
            more = more or len(requests) == free
            acted = acted or bool(requests)
        return more and len(self._inflight) < self.max_concurrency, acted

    async def _expire_leases(self, now: datetime) -> bool:
        """Sweep lapsed leases; a failing sweep is logged and must not keep this round from claiming."""
        try:
            expired = await self._db(outcomes.expire_leases, now)
            expired_hb = await self._db(heartbeat_runs.expire_heartbeat_leases, now)
        except Exception:
            self.stats.errors += 1
            self._sweep_gate.database_failed()
            logger.exception("lease sweep failed", extra={"action": "lease_sweep_failed"})
            await self._db(close_old_connections)
            return False
        self.stats.leases_expired += len(expired) + expired_hb
        return bool(expired or expired_hb)

    def _read_plan(self, started: datetime) -> WakePlan:
        announce = time.monotonic() - self._last_presence >= PRESENCE_EVERY_SECONDS
        if announce:
            self._last_presence = time.monotonic()
        return read_wake_plan(self.worker_id, started if announce else None)

    def _claim_heartbeats(self, now: datetime, limit: int) -> list[claims.Dispatch]:
        runs = heartbeat_runs.claim_due_heartbeats(now, self.worker_id, settings.UA_RUN_LEASE_SECONDS, limit)
        requests = []
        for run in runs:
            target, body, timeout = heartbeat_runs.build_heartbeat_request(run)
            requests.append(
                claims.Dispatch(run.run_id, run.session_id, target, body, timeout, kind="heartbeat")
            )
        return requests

    # --- dispatching --------------------------------------------------------------------------------
    def _start(self, requests: list[claims.Dispatch]) -> None:
        for request in requests:
            if request.kind == "cron":
                self.stats.runs_started += 1
            task = asyncio.ensure_future(self._deliver(request))
            self._inflight[request.run_id] = task
            self._kinds[request.run_id] = request.kind

    async def _deliver(self, request: claims.Dispatch) -> None:
        outcome = await dispatch.deliver(request.target, request.body, request.timeout, kind=request.kind)
        results = self._cron_results if request.kind == "cron" else self._heartbeat_results
        results.append((request.run_id, outcome))
        # The slot frees now; the run stays leased (and renewed) until its outcome is recorded.
        self._inflight.pop(request.run_id, None)
        self._kinds.pop(request.run_id, None)
        self._unrecorded.add(request.run_id)
        self._running_wake().set()

    async def _flush_results(self) -> None:
        cron, self._cron_results = self._cron_results, []
        beats, self._heartbeat_results = self._heartbeat_results, []
        retry: list[tuple[str, Outcome]] = []
        if cron:
            finished, unrecorded = await self._db(outcomes.record_outcomes_resilient, cron, clock.now())
            self.stats.runs_finished += finished
            self._cron_results.extend(unrecorded)
            retry += unrecorded
        if beats:
            unrecorded = await self._db(outcomes.record_heartbeat_results, beats, clock.now())
            self._heartbeat_results.extend(unrecorded)
            retry += unrecorded
        self._unrecorded.difference_update(run_id for run_id, _ in cron + beats)
        self._unrecorded.update(run_id for run_id, _ in retry)
        if retry:
            # The database refused even the fallback (it is down): keep the results, retry after a pause.
            raise RuntimeError(f"{len(retry)} outcomes could not be recorded yet")

    async def _renew_if_due(self) -> None:
        leased = [*self._inflight, *self._unrecorded]
        if not leased or time.monotonic() - self._last_renewal < settings.UA_RUN_LEASE_SECONDS / 3:
            return
        # Marked renewed only once it worked: after a failure every round tries again first, so a holder
        # renews within a second of the database coming back (see lease_sweep_gate).
        await self._db(outcomes.renew_leases, leased, self.worker_id, clock.now())
        self._last_renewal = time.monotonic()

    # --- sleeping -----------------------------------------------------------------------------------
    def _seconds_until(self, moment: datetime | None, leases_in_flight: bool = False) -> float:
        floor = settings.UA_SCHEDULER_SAFETY_POLL_SECONDS
        if connection.vendor != "postgresql":
            floor = min(floor, 5.0)  # no cross-process notifications on SQLite: poll a little faster
        if self._inflight or self._unrecorded:
            floor = min(floor, settings.UA_RUN_LEASE_SECONDS / 3)
        if leases_in_flight:
            # Any scheduler's runs: keep this scheduler's database access unbroken (lease_sweep_gate).
            floor = min(floor, self._sweep_gate.look_every())
        if moment is None:
            return floor
        return max(0.0, min(floor, (moment - clock.now()).total_seconds()))

    async def _sleep(self, timeout: float, stop: threading.Event) -> None:
        if timeout <= 0 or stop.is_set():
            return
        try:
            await asyncio.wait_for(self._running_wake().wait(), timeout)
        except TimeoutError:
            return
        delay = self.coalescing_delay(time.monotonic())
        if delay > 0 and not stop.is_set():
            await asyncio.sleep(delay)

    def coalescing_delay(self, now_monotonic: float) -> float:
        """How long a ring waits so that it shares a look with the rings after it (see WAKE_COALESCE)."""
        return max(0.0, self._last_look + WAKE_COALESCE_SECONDS - now_monotonic)

    async def _drain(self, grace: float = 5.0) -> None:
        """Give runs in flight a moment, then record the rest as failed: a run this process abandons is
        finished now with the reason, rather than 30 s later as "scheduler lost"."""
        if self._inflight:
            await asyncio.wait(list(self._inflight.values()), timeout=grace)
        for run_id, task in list(self._inflight.items()):
            task.cancel()
            kind = self._kinds.get(run_id, "cron")
            results = self._cron_results if kind == "cron" else self._heartbeat_results
            results.append((run_id, Outcome("error", error="scheduler stopped while the run was in flight")))
        self._inflight.clear()
        try:
            await self._flush_results()
        except Exception:
            logger.exception("could not record outcomes at shutdown", extra={"action": "scheduler_stop"})

    def _shutdown_db(self) -> None:
        try:
            presence.retire(self.worker_id)
        except Exception:  # the database may be the reason we stop; presence then simply goes stale
            logger.warning("could not retire presence", extra={"action": "scheduler_stop"})
        connection.close()


def run_forever(stop: threading.Event, **kwargs: Any) -> None:
    """Entry point for a thread or process: run one scheduler until `stop` is set."""
    asyncio.run(Scheduler(**kwargs).run(stop))
