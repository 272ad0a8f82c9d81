"""What the dashboard's panels show, read through the same services the API answers from (the operator
sees every owner's rows). Each function returns plain dictionaries for one template partial; times are
given both as UTC ISO (for machines) and as text in the viewer's time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DatabaseError, connection

from scheduling import presence, snapshots
from scheduling.services import heartbeats as heartbeat_services
from scheduling.services import jobs as job_services
from scheduling.services import notifications as notification_services
from scheduling.services import runs as run_services
from scheduling.services import stasis as stasis_services

MAX_JOBS_SHOWN = 500
PANELS = ("health", "stasis", "sessions", "jobs", "notifications")


def local_text(moment: float | str | datetime | None, zone: ZoneInfo) -> str:
    """`Tue 01 Dec 14:05` in the viewer's zone, from an epoch, a UTC ISO string or a datetime."""
    if moment is None or moment == "":
        return "—"
    if isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(moment, UTC)
    elif isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.astimezone(zone).strftime("%a %d %b %H:%M:%S")


def lag_text(started: float | None, scheduled: float | None) -> str:
    """Lag of a run: started − scheduled (manual runs have no nominal time, so no lag)."""
    if started is None or scheduled is None:
        return "—"
    seconds = started - scheduled
    if abs(seconds) < 60:
        return f"{seconds:+.2f} s"
    return f"{seconds / 60:+.1f} min"


ACTION_LABELS = {
    "approve_backfill_run": "Approve & run",
    "reschedule": "Reschedule",
    "delete_missed": "Delete",
    "run_now": "Run now",
    "pause": "Pause",
    "resume": "Resume",
    "disable": "Disable",
}


def schedule_text(job: dict[str, Any], zone: ZoneInfo) -> str:
    if job["schedule_kind"] == "at":
        return f"once at {local_text(job['run_at_epoch'], zone)}"
    if job["schedule_kind"] == "cron":
        return f"cron {job['cron_expr']}"
    return f"every {duration_text(job['every_seconds'])}"


def duration_text(seconds: float | None) -> str:
    if not seconds:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def jobs_panel(zone: ZoneInfo) -> dict[str, Any]:
    jobs = job_services.list_jobs(None).rows
    shown = job_services.describe_jobs(jobs[:MAX_JOBS_SHOWN])
    for job in shown:
        job["schedule_text"] = schedule_text(job, zone)
        job["next_run_text"] = local_text(job["next_run_at"], zone)
        last = job["last_run"]
        job["last_error"] = next((run["error"] for run in [last] if run and run["status"] == "error"), None)
        if last:
            last["lag_text"] = lag_text(last["started_at"], last["scheduled_at"])
    return {"jobs": shown, "jobs_total": len(jobs), "jobs_hidden": max(0, len(jobs) - MAX_JOBS_SHOWN)}


def job_runs_panel(job_id: str, zone: ZoneInfo, limit: int = 20) -> dict[str, Any]:
    runs = [snapshots.run_snapshot(run) for run in run_services.list_runs(None, job_id, limit).rows]
    for run in runs:
        run["scheduled_text"] = local_text(run["scheduled_at"], zone)
        run["started_text"] = local_text(run["started_at"], zone)
        run["lag_text"] = lag_text(run["started_at"], run["scheduled_at"])
    return {"job_id": job_id, "runs": runs}


def sessions_panel(zone: ZoneInfo) -> dict[str, Any]:
    sessions = [snapshots.session_snapshot(row) for row in heartbeat_services.list_sessions(None).rows]
    for session in sessions:
        session["next_due_text"] = local_text(session["next_due_at"], zone)
        session["every_text"] = duration_text(session["every_seconds"])
        summary = session["last_summary"] or {}
        session["summary_text"] = summary.get("text") or ("HEARTBEAT_OK" if summary.get("ok_only") else "")
        session["summary_time"] = local_text(summary.get("timestamp"), zone) if summary else "—"
    return {"sessions": sessions}


def stasis_panel(zone: ZoneInfo) -> dict[str, Any]:
    entries = [snapshots.stasis_snapshot(row) for row in stasis_services.list_entries(None).rows]
    for entry in entries:
        entry["title"] = (entry["event"] or {}).get("title") or entry["source_ref"]
        entry["scheduled_text"] = local_text(entry["scheduled_at_epoch"], zone)
        entry["detected_text"] = local_text(entry["detected_at_utc"], zone)
    return {"entries": entries}


def notifications_panel(zone: ZoneInfo) -> dict[str, Any]:
    rows = notification_services.list_notifications(None, "live", 100).rows
    notifications = [snapshots.notification_snapshot(row) for row in rows]
    for notification in notifications:
        notification["updated_text"] = local_text(notification["updated_at_utc"], zone)
        for action in notification["actions"] or []:
            action["label"] = ACTION_LABELS.get(action.get("action"), action.get("action"))
    return {"notifications": notifications}


def health_panel(zone: ZoneInfo) -> dict[str, Any]:
    """Scheduler and projector state, due lag and projection lag, from the same readers as
    /api/v1/health and /api/v1/ops/metrics/scheduling-runtime."""
    from ops_api.runtime_metrics import projection_lag
    from scheduling.metrics_report import read_report

    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        lag, projection = projection_lag(), read_report().projection()
    except DatabaseError:  # the strip reports a database outage instead of failing the page
        return {"db_status": "down"}
    due = {key: projection.get(f"due_lag_seconds_{key}") for key in ("last", "avg", "max")}
    return {
        "db_status": "ok",
        "scheduler": presence.status_of("scheduler"),
        "projector": presence.status_of("projector"),
        "event_head": lag.head_seq,
        "projection_lag_events": lag.events,
        "projection_lag_seconds": round(lag.seconds, 1),
        "due_lag": due if projection.get("due_lag_samples") else None,
    }


def panel_context(name: str, zone: ZoneInfo) -> dict[str, Any]:
    builders = {
        "health": health_panel,
        "stasis": stasis_panel,
        "sessions": sessions_panel,
        "jobs": jobs_panel,
        "notifications": notifications_panel,
    }
    return builders[name](zone)
