"""Contract-shaped dictionaries of domain rows (§2, §3, §7). The API returns them and lifecycle events
carry them as payload, so a client sees one shape whichever way it learns about a change."""

from __future__ import annotations

from typing import Any

from scheduling import clock
from scheduling.clock import epoch, iso
from scheduling.models import (
    ChangeProposal,
    CronJob,
    CronRun,
    HeartbeatRun,
    HeartbeatSession,
    Notification,
    StasisEntry,
    SystemEvent,
)

OUTPUT_PREVIEW_CHARS = 400


def public_target(target: dict | None) -> dict | None:
    """Targets with their secret masked: secrets are write-only."""
    if not target:
        return target
    shown = dict(target)
    if shown.get("secret"):
        shown["secret"] = "***"
    return shown


def job_snapshot(job: CronJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "user_id": job.owner_id,
        "command": job.command,
        "schedule_kind": job.schedule_kind,
        "every": job.every_seconds,
        "every_seconds": job.every_seconds,
        "cron_expr": job.cron_expr or None,
        "run_at": iso(job.run_at),
        "run_at_epoch": epoch(job.run_at),
        "timezone": job.timezone,
        "enabled": job.enabled,
        "delete_after_run": job.delete_after_run,
        "session_id": job.session_id or None,
        "channel": job.channel or None,
        "title": job.title,
        "priority": job.priority,
        "wake_heartbeat": job.wake_heartbeat,
        "missed_policy": job.missed_policy,
        "overlap": job.overlap,
        "timeout_seconds": job.timeout_seconds,
        "target": public_target(job.target),
        "model": job.model or None,
        "metadata": job.metadata,
        "created_at": epoch(job.created_at),
        "updated_at": epoch(job.updated_at),
        "last_run_at": epoch(job.last_run_at),
        "next_run_at": epoch(job.next_run_at),
        "next_run_at_utc": iso(job.next_run_at),
        # Interval jobs fire at anchor + k*every: the calendar projection needs the anchor.
        "anchor_at_utc": iso(job.anchor_at),
    }


def run_snapshot(run: CronRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job_id": run.job_id,
        "owner_id": run.owner_id,
        "session_id": run.session_id or None,
        "title": run.job_title,
        "status": run.status,
        "reason": run.reason,
        "scheduled_at": epoch(run.scheduled_at),
        "scheduled_at_utc": iso(run.scheduled_at),
        "occurrence_id": run.occurrence_id,
        "created_at": epoch(run.created_at),
        "started_at": epoch(run.started_at),
        "finished_at": epoch(run.finished_at),
        "duration_seconds": (
            (run.finished_at - run.started_at).total_seconds() if run.finished_at and run.started_at else None
        ),
        "error": run.error or None,
        "output_preview": (run.output or "")[:OUTPUT_PREVIEW_CHARS] or None,
        "attempt": run.attempt,
    }


def session_snapshot(session: HeartbeatSession) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "owner_id": session.owner_id,
        "every_seconds": session.every_seconds,
        "every": session.every_seconds,
        "active_hours": session.active_hours or None,
        "timezone": session.timezone,
        "enabled": session.enabled,
        "channel": session.channel or None,
        "target": public_target(session.target),
        "delivery": session.delivery,
        "visibility": session.visibility,
        "busy": session.busy,
        "pending_wake": session.pending_wake or None,
        "next_due_at": epoch(session.next_due_at),
        "next_due_at_utc": iso(session.next_due_at),
        "last_run_at": epoch(session.last_run_at),
        "last_summary": session.last_summary,
        "created_at": epoch(session.created_at),
    }


def heartbeat_run_snapshot(run: HeartbeatRun) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "session_id": run.session_id,
        "owner_id": run.owner_id,
        "status": run.status,
        "reason": run.reason,
        "scheduled_at": epoch(run.scheduled_at),
        "scheduled_at_utc": iso(run.scheduled_at),
        "occurrence_id": f"heartbeat|{run.session_id}|{int(_nominal(run).timestamp())}",
        "started_at": epoch(run.started_at),
        "finished_at": epoch(run.finished_at),
        "ok_only": run.ok_only,
        "skip_count": run.skip_count,
        "error": run.error or None,
        "output_preview": (run.output or "")[:OUTPUT_PREVIEW_CHARS] or None,
    }


def _nominal(run: HeartbeatRun) -> Any:
    return run.scheduled_at or run.created_at


def stasis_snapshot(entry: StasisEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "event_id": entry.event_id,
        "source": entry.source,
        "source_ref": entry.source_ref,
        "owner_id": entry.owner_id,
        "status": entry.status,
        "scheduled_at_utc": iso(entry.scheduled_at),
        "scheduled_at_epoch": epoch(entry.scheduled_at),
        "detected_at_utc": iso(entry.detected_at),
        "resolved_at_utc": iso(entry.resolved_at),
        "reason": entry.reason,
        "run_id": entry.run_id or None,
        "resolution_run_id": entry.resolution_run_id or None,
        "event": entry.event,
    }


def system_event_snapshot(event: SystemEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "session_id": event.session_id,
        "owner_id": event.owner_id,
        "text": event.text,
        "status": "delivered" if event.delivered_at else "pending",
        "created_at": clock.epoch(event.created_at),
        "created_at_utc": clock.iso(event.created_at),
        "delivered_at": clock.epoch(event.delivered_at),
        "delivered_at_utc": clock.iso(event.delivered_at),
        "delivered_run_id": event.delivered_run_id or None,
    }


def notification_snapshot(notification: Notification) -> dict[str, Any]:
    return {
        "notification_id": notification.notification_id,
        "kind": notification.kind,
        "source": notification.source,
        "source_ref": notification.source_ref,
        "owner_id": notification.owner_id,
        "status": notification.status,
        "title": notification.title,
        "detail": notification.detail,
        "actions": notification.actions,
        "count": notification.count,
        "run_id": notification.run_id or None,
        "created_at_utc": clock.iso(notification.created_at),
        "updated_at_utc": clock.iso(notification.updated_at),
    }


def proposal_snapshot(proposal: ChangeProposal) -> dict[str, Any]:
    return {
        "proposal_id": proposal.proposal_id,
        "event_id": proposal.event_id,
        "source": proposal.source,
        "source_ref": proposal.source_ref,
        "owner_id": proposal.owner_id,
        "instruction": proposal.instruction,
        "changes": proposal.changes,
        "action": proposal.action or None,
        "run_at_utc": clock.iso(proposal.run_at),
        "timezone": proposal.timezone,
        "summary": proposal.summary,
        "status": proposal.status,
        "created_at_utc": clock.iso(proposal.created_at),
        "decided_at_utc": clock.iso(proposal.decided_at),
        "result": proposal.result,
    }
