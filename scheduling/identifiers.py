"""Server-assigned identifiers: short, random, URL-safe, sortable enough to read in logs."""

from __future__ import annotations

import secrets


def new_job_id() -> str:
    return "job_" + secrets.token_hex(8)


def new_run_id() -> str:
    return "run_" + secrets.token_hex(10)


def new_entry_id() -> str:
    return "stasis_" + secrets.token_hex(8)


def new_notification_id() -> str:
    return "ntf_" + secrets.token_hex(8)
