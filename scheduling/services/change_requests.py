"""Calendar change requests (contract §7): an instruction about one calendar event becomes a persisted
proposal (a field patch or an action) that the operator confirms or rejects, once.

A proposal is checked when it is made (the patch is validated like an API update), and applied on
confirm through the same services as every other surface, inside the confirm's transaction: if applying
fails, the proposal stays pending and nothing changes. Confirming a decided proposal is a 409.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from scheduling import clock, heartbeat_rules, schedule
from scheduling.errors import Conflict, InvalidInput, NotFound
from scheduling.instructions import Instruction, parse_instruction
from scheduling.job_input import clean_job_input
from scheduling.models import ChangeProposal, CronJob, HeartbeatSession, ProposalStatus, StasisEntry
from scheduling.services import heartbeats, jobs, stasis
from scheduling.services.calendar_actions import (
    ActionResult,
    EventRef,
    apply_action,
    parse_event_id,
    require_visible_target,
)


def propose_change(event_id: str, data: Any, owner_id: str | None) -> ChangeProposal:
    ref = parse_event_id(event_id)
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    instruction = parse_instruction(data.get("instruction"))
    timezone = data.get("timezone")
    if timezone is not None:
        if not isinstance(timezone, str):
            raise InvalidInput("timezone must be an IANA time zone name", "timezone")
        try:
            timezone = str(schedule.parse_timezone(timezone))
        except schedule.ScheduleError as error:
            raise InvalidInput(error.detail, "timezone") from None
    target = require_visible_target(ref, owner_id)
    proposal = ChangeProposal(
        event_id=ref.event_id,
        source=ref.source,
        source_ref=ref.source_ref,
        owner_id=target.owner_id,
        instruction=data["instruction"].strip(),
        created_at=clock.now(),
    )
    if isinstance(target, CronJob):
        _plan_for_job(proposal, instruction, target, timezone or target.timezone)
    else:
        _plan_for_session(proposal, instruction, target)
    with transaction.atomic():
        proposal.save(force_insert=True)
    return proposal


def _plan_for_job(proposal: ChangeProposal, instruction: Instruction, job: CronJob, tz_name: str) -> None:
    now = clock.now()
    name = job.title or job.job_id
    proposal.timezone = tz_name
    if instruction.action:
        proposal.action, proposal.summary = instruction.action, f"{_verb(instruction.action)} {name}"
    elif instruction.every_seconds:
        proposal.changes = {"every": instruction.every_seconds}
        _validated(lambda: clean_job_input(proposal.changes, existing=job, partial=True, now=now))
        proposal.summary = f"Run {name} every {_duration(instruction.every_seconds)} from now on"
    else:
        run_at = _moment(instruction, tz_name, now)
        proposal.run_at = run_at
        shown = f"{clock.iso(run_at)} ({tz_name} {run_at.astimezone(schedule.parse_timezone(tz_name)):%H:%M})"
        if job.schedule_kind == "at":
            proposal.changes = {"run_at": clock.iso(run_at)}
            _validated(lambda: clean_job_input(proposal.changes, existing=job, partial=True, now=now))
            proposal.summary = f"Move the one-shot {name} to {shown}"
        else:
            proposal.action = "reschedule"
            proposal.summary = f"Run a one-shot copy of {name} at {shown}"


def _plan_for_session(proposal: ChangeProposal, instruction: Instruction, session: HeartbeatSession) -> None:
    name = f"the heartbeat of {session.session_id}"
    proposal.timezone = session.timezone
    if instruction.action:
        proposal.action, proposal.summary = instruction.action, f"{_verb(instruction.action)} {name}"
    elif instruction.every_seconds:
        proposal.changes = {"every": instruction.every_seconds}
        floor = settings.UA_HEARTBEAT_MIN_INTERVAL_SECONDS
        _validated(lambda: heartbeat_rules.clean_session_input(proposal.changes, session, floor))
        proposal.summary = f"Run {name} every {_duration(instruction.every_seconds)}"
    else:
        raise InvalidInput(
            "a heartbeat cannot be moved to a time; use 'every N unit', 'pause', 'resume' or 'run now'",
            "instruction",
        )


def confirm_change(event_id: str, data: Any, owner_id: str | None) -> tuple[ChangeProposal, ActionResult]:
    """Apply (approve=true) or reject the proposal, exactly once."""
    ref = parse_event_id(event_id)
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object", None)
    proposal_id, approve = data.get("proposal_id"), data.get("approve")
    if not isinstance(proposal_id, str) or not proposal_id:
        raise InvalidInput("proposal_id is required", "proposal_id")
    if not isinstance(approve, bool):
        raise InvalidInput("approve must be true or false", "approve")
    with transaction.atomic():
        # The row lock makes two confirms of one proposal queue; the second then sees it decided.
        found = ChangeProposal.objects.select_for_update().filter(
            proposal_id=proposal_id, event_id=ref.event_id
        )
        proposal = (found if owner_id is None else found.filter(owner_id=owner_id)).first()
        if proposal is None:
            raise NotFound(f"no proposal {proposal_id} for {ref.event_id}", "proposal_id")
        if proposal.status != ProposalStatus.PENDING:
            raise Conflict(f"proposal {proposal_id} is already {proposal.status}", "proposal_id")
        result = _apply(proposal, ref, owner_id) if approve else ActionResult("reject", ref.event_id)
        proposal.status = ProposalStatus.APPLIED if approve else ProposalStatus.REJECTED
        proposal.decided_at = clock.now()
        proposal.result = _result_ids(result)
        proposal.save()
    return proposal, result


def _apply(proposal: ChangeProposal, ref: EventRef, owner_id: str | None) -> ActionResult:
    if proposal.changes:
        result = ActionResult("change", ref.event_id)
        if ref.source == "cron":
            result.job = jobs.update_job(ref.source_ref, proposal.changes, owner_id, partial=True)
        else:
            heartbeats.get_session(ref.source_ref, owner_id)  # 404 first: upsert would create it
            result.session = heartbeats.upsert_session(ref.source_ref, proposal.changes, owner_id)
        return result
    run_at = clock.iso(proposal.run_at)
    if proposal.action != "reschedule":
        return apply_action(ref, proposal.action, run_at, proposal.timezone, owner_id)
    pending = _pending_entry_id(ref, owner_id)
    if pending:  # the occurrence was missed: rescheduling resolves its entry too
        return apply_action(ref, "reschedule", run_at, proposal.timezone, owner_id)
    result = ActionResult("reschedule", ref.event_id)
    result.job = stasis.schedule_one_shot_copy(ref.source_ref, run_at, proposal.timezone, owner_id)
    return result


def _pending_entry_id(ref: EventRef, owner_id: str | None) -> str | None:
    entries = StasisEntry.objects.filter(event_id=ref.event_id, source=ref.source, status="pending")
    if owner_id is not None:
        entries = entries.filter(owner_id=owner_id)
    return entries.values_list("entry_id", flat=True).first()


def _result_ids(result: ActionResult) -> dict[str, Any]:
    return {
        "action": result.action,
        "job_id": result.job.job_id if result.job else None,
        "run_id": result.run.run_id if result.run else None,
        "entry_id": result.entry.entry_id if result.entry else None,
        "session_id": result.session.session_id if result.session else None,
    }


def _moment(instruction: Instruction, tz_name: str, now: datetime) -> datetime:
    if instruction.delay_seconds:
        return now + timedelta(seconds=instruction.delay_seconds)
    try:
        return schedule.parse_run_at(f"at {instruction.clock_time}", tz_name, now)
    except schedule.ScheduleError as error:
        raise InvalidInput(error.detail, "timezone" if error.field == "timezone" else "instruction") from None


def _validated(check: Any) -> None:
    """Run an input check; its refusal is about the instruction that produced the input."""
    try:
        check()
    except InvalidInput as error:
        raise InvalidInput(f"{error.detail} (from the instruction)", "instruction") from None


def _verb(action: str) -> str:
    return {"pause": "Pause", "resume": "Resume", "run_now": "Run now:"}[action]


def _duration(seconds: int) -> str:
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"
