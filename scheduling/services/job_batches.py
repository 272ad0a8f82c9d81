"""Bulk job creation (contract §2): an array of up to 1,000 jobs becomes one transaction and one event
append, so importing a tenant or an agent's week costs one lock hold and one scheduler wake, not N."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction

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


def create_jobs(items: Any, owner_id: str | None, body_bytes: int | None = None) -> list[CronJob]:
    """Validate every item first (a bad one names `<index>.<field>` and nothing is written), then insert
    all jobs and append their events in one transaction. `body_bytes`, the size of the request body,
    spares the per-item size check when no item can be over the limit."""
    jobs = _validated_jobs(items, owner_id, check_sizes=body_bytes is None or body_bytes > _item_limit())
    drafts = [job_event(job, "cron_job_created") for job in jobs]
    with transaction.atomic():
        # The inserts bypass post_save, so the events are appended here, as the transaction's last
        # statement: the event-log lock is then held only from the append to the commit.
        _insert(jobs)
        append_events(drafts)
    return jobs


def _insert(jobs: list[CronJob]) -> None:
    """One statement. On PostgreSQL the rows travel as one JSON document that the server turns into
    typed rows (jsonb_populate_recordset): Django's bulk_create builds and adapts 26 arrays in Python
    first, which took most of a 1,000-job request's time."""
    if connection.vendor != "postgresql":
        CronJob.objects.bulk_create(jobs)
        return
    table = connection.ops.quote_name(CronJob._meta.db_table)
    fields = CronJob._meta.concrete_fields
    # A key left out reads as SQL NULL, as Django writes None (a JSON null would be jsonb 'null').
    rows = [
        {f.column: value for f in fields if (value := getattr(job, f.attname)) is not None} for job in jobs
    ]
    body = json.dumps(rows, default=_exact_timestamp)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} SELECT * FROM jsonb_populate_recordset(NULL::{table}, %s)", [body]
        )


def _exact_timestamp(value: Any) -> str:
    # Full microseconds and offset (DjangoJSONEncoder would cut to milliseconds and differ from the
    # response we return).
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _item_limit() -> int:
    return settings.UA_API_MAX_BODY_BYTES


def _validated_jobs(items: Any, owner_id: str | None, check_sizes: bool = True) -> list[CronJob]:
    if not isinstance(items, list) or not items:
        raise InvalidInput("a bulk create takes a non-empty JSON array of job objects", None)
    if len(items) > MAX_BATCH:
        raise InvalidInput(f"a bulk create takes at most {MAX_BATCH} jobs; got {len(items)}", None)
    now = clock.now()
    jobs = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"item {index} must be a JSON object", str(index))
        if check_sizes:
            _check_item_size(item, index)
        try:
            jobs.append(new_job(item, owner_id, now))
        except InvalidInput as error:
            raise InvalidInput(f"item {index}: {error.detail}", _indexed(index, error.field)) from None
    return jobs


def _check_item_size(item: dict, index: int) -> None:
    """Each item obeys the single-job body limit; only the array as a whole may be larger."""
    limit = _item_limit()
    if len(json.dumps(item, ensure_ascii=False).encode()) > limit:
        raise ItemTooLarge(f"item {index} is over the {limit}-byte limit for one job", str(index))


def _indexed(index: int, field: str | None) -> str:
    return f"{index}.{field}" if field else str(index)
