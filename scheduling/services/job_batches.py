"""Bulk job creation (contract §2): an array of up to 1,000 jobs becomes one transaction and one event
append, so importing a tenant or an agent's week costs one lock hold and one scheduler wake, not N."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.db import transaction

from scheduling import clock
from scheduling.errors import DomainError, InvalidInput
from scheduling.event_log import append_events

# Drafts come from the module that builds every job event, so a bulk create and a single create emit the
# same `cron_job_created` envelope.
from scheduling.lifecycle import job_event
from scheduling.models import CronJob
from scheduling.services.jobs import new_job

MAX_BATCH = 1000


class ItemTooLarge(DomainError):
    code = "payload_too_large"
    http_status = 413


def create_jobs(items: Any, owner_id: str | None) -> list[CronJob]:
    """Validate every item first (a bad one names `<index>.<field>` and nothing is written), then insert
    all jobs and append their events in one transaction."""
    jobs = _validated_jobs(items, owner_id)
    with transaction.atomic():
        # bulk_create sends no post_save, so the events are appended here, as the transaction's last
        # statement: the event-log lock is then held only from the append to the commit.
        CronJob.objects.bulk_create(jobs)
        append_events([job_event(job, "cron_job_created") for job in jobs])
    return jobs


def _validated_jobs(items: Any, owner_id: str | None) -> list[CronJob]:
    if not isinstance(items, list) or not items:
        raise InvalidInput("a bulk create takes a non-empty JSON array of job objects", None)
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"a bulk create takes at most {MAX_BATCH} jobs; got {len(items)}", None)
    now = clock.now()
    jobs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"item {index} must be a JSON object", str(index))
        _check_item_size(item, index)
        try:
            jobs.append(new_job(item, owner_id, now))
        except InvalidInput as error:
            raise InvalidInput(f"item {index}: {error.detail}", _indexed(index, error.field)) from None
    return jobs


def _check_item_size(item: dict, index: int) -> None:
    """Each item obeys the single-job body limit; only the array as a whole may be larger."""
    limit = settings.UA_API_MAX_BODY_BYTES
    if len(json.dumps(item, ensure_ascii=False).encode()) > limit:
        raise ItemTooLarge(f"item {index} is over the {limit}-byte limit for one job", str(index))


def _indexed(index: int, field: str | None) -> str:
    return f"{index}.{field}" if field else str(index)
