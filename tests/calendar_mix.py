"""A realistic calendar, made through the services with a controlled clock: cron jobs in several zones
across the Berlin fall-back (2026-10-25) with the Chicago one (2026-11-01) ahead, an interval job, a
one-shot, a dense job, runs in every status, a downtime that leaves misses in stasis (one approved, one
deleted, others pending), a job deleted with history, a disabled job and a heartbeat session with
active hours. `simulate` walks the clock from due instant to due instant as the scheduler would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from scheduling import clock
from scheduling.dispatch import Outcome
from scheduling.models import CronJob, CronRun, HeartbeatSession
from scheduling.services import claims, heartbeat_runs, heartbeats, outcomes, runs, stasis
from scheduling.services import jobs as job_services

START = datetime(2026, 10, 24, 12, 0, tzinfo=UTC)
DOWN_FROM = datetime(2026, 10, 26, 2, 0, tzinfo=UTC)
DOWN_UNTIL = datetime(2026, 10, 26, 5, 10, tzinfo=UTC)
NOW = datetime(2026, 10, 27, 12, 0, 30, tzinfo=UTC)
MIDWAY = datetime(2026, 10, 25, 18, 7, tzinfo=UTC)
DENSE_FROM = datetime(2026, 10, 26, 0, 3, tzinfo=UTC)
WORKER = "scheduler:mix:1"


def _job(owner: str | None = None, **body: object) -> CronJob:
    body.setdefault("command", f"do {body.get('title', 'work')}")
    return job_services.create_job(body, owner)


class Mix:
    def __init__(self, on_step: Callable[[], None] | None = None) -> None:
        self.on_step = on_step or (lambda: None)
        self.held: list[tuple[datetime, str]] = []  # (finish at, run_id) of slow runs
        self.slow_ids: set[str] = set()
        self.fail_ids: set[str] = set()

    def build(self) -> datetime:
        with clock.frozen(START):
            self._create_jobs()
        self.simulate(MIDWAY)
        with clock.frozen(MIDWAY):
            self._midway_changes()
        self.simulate(DENSE_FROM)
        with clock.frozen(DENSE_FROM):
            # Dense (96 a day): in always_running for a week, shown one by one for a day.
            _job(title="dense", cron_expr="*/15 * * * *", timezone="UTC")
        self.simulate(DOWN_FROM)
        self.simulate(NOW, resume_at=DOWN_UNTIL)
        with clock.frozen(NOW):
            self._resolve_some_misses()
        return NOW

    def _create_jobs(self) -> None:
        _job(title="berlin hourly", cron_expr="0 * * * *", timezone="Europe/Berlin")
        _job(title="berlin 2:30", cron_expr="30 2 * * *", timezone="Europe/Berlin", priority="critical")
        _job("alice", title="chicago weekdays", cron_expr="0 9 * * 1-5", timezone="America/Chicago")
        _job("alice", title="chicago 1:30", cron_expr="30 1 * * *", timezone="America/Chicago")
        _job(
            "bob", title="kolkata quarter", cron_expr="15 */3 * * *", timezone="Asia/Kolkata", priority="low"
        )
        _job(title="interval", every="90m", missed_policy="skip")
        _job(title="one-shot", run_at=(START + timedelta(days=1, hours=3)).isoformat())
        _job(title="future one-shot", run_at=(NOW + timedelta(days=3)).isoformat())
        self.fail_ids.add(
            _job("bob", title="fails", every="4h", target={"type": "handler", "name": "fail"}).job_id
        )
        self.slow_ids.add(_job(title="slow", every="1h").job_id)
        self.doomed = _job(title="doomed", every="2h")
        self.paused = _job(title="paused", cron_expr="0 12 * * *", timezone="Europe/Paris")
        beat = {"every": "45m", "active_hours": "08:00-20:00", "timezone": "Europe/Berlin"}
        beat["owner_id"] = "alice"
        heartbeats.upsert_session("s-berlin", beat, None)

    def _midway_changes(self) -> None:
        job_services.update_job(self.paused.job_id, {"enabled": False}, None, partial=True)
        runs.queue_manual_run(self.doomed.job_id, None)
        job_services.delete_job(self.doomed.job_id, None)  # cancels the queued run; history stays

    def _resolve_some_misses(self) -> None:
        pending = stasis.list_entries(None).rows
        by_title = {entry.event.get("title"): entry for entry in pending}
        stasis.approve_backfill_run(by_title["berlin hourly"].entry_id)
        stasis.delete_missed(by_title["interval"].entry_id) if "interval" in by_title else None
        stasis.delete_missed(by_title["chicago 1:30"].entry_id) if "chicago 1:30" in by_title else None
        started = claims.claim_queued_runs(NOW, WORKER, 10)
        self._finish([d.run_id for d in started], NOW)

    # --- the scheduler, step by step ----------------------------------------------------------------
    def simulate(self, until: datetime, resume_at: datetime | None = None) -> None:
        while True:
            due = self._next_due()
            if due is None or due >= until:
                return
            if resume_at and DOWN_FROM <= due < resume_at:
                due = resume_at  # the runtime was down: the first claim after it records the misses
            with clock.frozen(due):
                self._release_held(due)
                self._claim(due)
                self.on_step()

    def _next_due(self) -> datetime | None:
        jobs = CronJob.objects.filter(next_run_at__isnull=False).order_by("next_run_at").first()
        beat = HeartbeatSession.objects.filter(enabled=True).order_by("next_due_at").first()
        moments = [m for m in (jobs and jobs.next_run_at, beat and beat.next_due_at) if m is not None]
        return min(moments, default=None)

    def _claim(self, now: datetime) -> None:
        while True:
            started, more = claims.claim_due_occurrences(now, WORKER, 100)
            quick = []
            for dispatch in started:
                if dispatch.job_id in self.slow_ids:
                    self.held.append((now + timedelta(minutes=90), dispatch.run_id))
                else:
                    quick.append(dispatch.run_id)
            self._finish(quick, now)
            if not more:
                break
        for run in heartbeat_runs.claim_due_heartbeats(now, WORKER, 30, 100):
            outcomes.record_heartbeat_results([(run.run_id, Outcome("success", output="HEARTBEAT_OK"))], now)

    def _finish(self, run_ids: list[str], now: datetime) -> None:
        if not run_ids:
            return
        jobs = dict(CronRun.objects.filter(run_id__in=run_ids).values_list("run_id", "job_id"))
        results = [
            (
                rid,
                Outcome("error", error="boom")
                if jobs.get(rid) in self.fail_ids
                else Outcome("success", "ok"),
            )
            for rid in run_ids
        ]
        outcomes.record_outcomes(results, now)

    def _release_held(self, now: datetime) -> None:
        ready = [run_id for at, run_id in self.held if at <= now]
        self.held = [(at, run_id) for at, run_id in self.held if at > now]
        self._finish(ready, now)
