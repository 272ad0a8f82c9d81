"""Delivering a run to its target (contract §2.1): built-in handlers and signed webhooks.

`deliver()` never raises: every failure becomes an `Outcome` with status "error" and a reason, so the
caller always has something to record.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from scheduling.storable_text import storable
from scheduling.targets import SLEEP_HANDLER

logger = logging.getLogger(__name__)

OK_REPLY = {"cron": "CRON_OK", "heartbeat": "HEARTBEAT_OK"}
# Longest output or error text stored for a run; a target may answer far more.
MAX_OUTPUT_CHARS = 64 * 1024
_client: httpx.AsyncClient | None = None


@dataclass
class Outcome:
    """What a target answered. `deferred` means 202: the target calls /complete later."""

    status: str  # "success" | "error" | "deferred"
    output: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        # Targets may answer anything; keep only what the database can store.
        self.output = storable(self.output)[:MAX_OUTPUT_CHARS]
        self.error = storable(self.error)[:MAX_OUTPUT_CHARS]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(target: dict, body: dict[str, Any], timeout: float, *, kind: str = "cron") -> Outcome:
    try:
        return await asyncio.wait_for(_deliver(target, body, timeout, kind), timeout)
    except (TimeoutError, httpx.TimeoutException):
        # Whichever fires first, our deadline or httpx's own (given the same budget), it is the timeout.
        return Outcome("error", error=f"execution timed out after {_seconds(timeout)}s")
    except Exception as error:  # the target's failure is the run's failure, never the scheduler's
        logger.warning("dispatch failed: %s", error, extra={"action": "dispatch_error"})
        return Outcome("error", error=f"{type(error).__name__}: {error}")


async def _deliver(target: dict, body: dict[str, Any], timeout: float, kind: str) -> Outcome:
    if target.get("type") == "webhook":
        return await _webhook(target, body, timeout)
    name = target.get("name", "echo")
    if name == "echo":
        return Outcome("success", output=OK_REPLY.get(kind, "CRON_OK"))
    if name == "fail":
        return Outcome("error", error=f"handler 'fail' failed on purpose: {body.get('command', '')[:200]}")
    sleep = SLEEP_HANDLER.match(name)
    if sleep:
        await asyncio.sleep(float(sleep.group(1)))
        return Outcome("success", output=f"slept {sleep.group(1)}s")
    return Outcome("error", error=f"unknown handler {name!r}")


async def _webhook(target: dict, body: dict[str, Any], timeout: float) -> Outcome:
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", **(target.get("headers") or {})}
    if target.get("secret"):
        headers["X-UA-Signature"] = sign(raw, target["secret"])
    response = await _http().post(target["url"], content=raw, headers=headers, timeout=timeout)
    if response.status_code == 202:
        return Outcome("deferred")
    if not 200 <= response.status_code < 300:
        return Outcome("error", error=f"target answered HTTP {response.status_code}: {response.text[:300]}")
    return _parse_answer(response)


def _parse_answer(response: httpx.Response) -> Outcome:
    try:
        answer = response.json()
    except ValueError:
        return Outcome("success", output=response.text)
    if not isinstance(answer, dict):
        return Outcome("success", output=json.dumps(answer))
    status = answer.get("status", "success")
    if status not in ("success", "error"):
        return Outcome("error", error=f"target answered an unknown status {status!r}")
    return Outcome(status, output=str(answer.get("output") or ""), error=str(answer.get("error") or ""))


def _http() -> httpx.AsyncClient:
    # One pooled client per event loop thread would be ideal; the scheduler runs one loop, so one client.
    global _client
    if _client is None or _client.is_closed:
        _client = httpx.AsyncClient(follow_redirects=False, limits=httpx.Limits(max_connections=200))
    return _client


async def close() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None


def _seconds(timeout: float) -> str:
    return str(int(timeout)) if float(timeout).is_integer() else f"{timeout:g}"
