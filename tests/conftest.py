"""The named cast: an operator client, an owner token and client, a controllable clock."""

from __future__ import annotations

import fcntl
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from scheduling import clock, metrics

OPERATOR_TOKEN = "test-operator-token"

USING_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
USING_REDIS = bool(os.environ.get("REDIS_URL"))

requires_postgres = pytest.mark.skipif(
    not USING_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL=postgres://... (CI's second pass does)"
)
requires_redis = pytest.mark.skipif(
    not USING_REDIS, reason="needs Redis: set REDIS_URL=redis://... (CI's second pass does)"
)


# --- running on several workers (pytest -n 2, see README) ----------------------------------------------
# Unit tests are spread over the workers. Tests that start processes and servers keep to one worker per
# directory (xdist_group, with --dist loadgroup), so that the end-to-end suite and the integration suite
# run beside each other but each in its usual order. Each worker has its own test database (pytest-django)
# and its own Redis database (below). A test marked `exclusive` (a restart of the shared PostgreSQL
# server) runs while no other worker is inside a test.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
LIVE_GROUPS = ("e2e", "integration")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.relative_to(item.config.rootpath).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in LIVE_GROUPS:
            item.add_marker(pytest.mark.xdist_group(parts[1]))


def pytest_configure(config: pytest.Config) -> None:
    if WORKER and USING_REDIS:
        # One Redis database per worker: a frame one worker publishes never reaches another's clients.
        index = int(WORKER.removeprefix("gw")) + 1
        base, _, _ = os.environ["REDIS_URL"].rstrip("/").rpartition("/")
        os.environ["REDIS_URL"] = url = f"{base}/{index}"
        settings.REDIS_URL = url
        settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]["address"] = url


_seen_generation = {"value": ""}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """Around each test's setup, call and teardown: a shared lock, or the exclusive one."""
    run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if not run_id:
        yield
        return
    exclusive = item.get_closest_marker("exclusive") is not None
    path = Path(tempfile.gettempdir()) / f"scheduling-runtime-tests-{run_id}.lock"
    with path.open("a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        handle.seek(0)
        generation = handle.read()
        if generation != _seen_generation["value"]:
            # An exclusive test restarted the database server since this worker's last test: its
            # connections are gone, so the next query opens a new one.
            _seen_generation["value"] = generation
            for alias in connections:
                connections[alias].close()
        try:
            yield
        finally:
            if exclusive:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{WORKER} {item.nodeid} {time.time()}")
                handle.flush()


@pytest.fixture(autouse=True)
def _operator_token_configured() -> Iterator[None]:
    previous = (settings.UA_OPS_TOKEN, settings.UA_OPS_AUTH)
    settings.UA_OPS_TOKEN, settings.UA_OPS_AUTH = OPERATOR_TOKEN, "on"
    yield
    settings.UA_OPS_TOKEN, settings.UA_OPS_AUTH = previous


@pytest.fixture(autouse=True)
def _metrics_flushed_by_hand() -> Iterator[None]:
    """No background flusher in the test process (it would write outside the test's transaction);
    tests that check metrics call `metrics.flush()`. Each test starts with an empty buffer."""
    metrics.set_background_flush(False)
    metrics.discard_unflushed()
    yield
    metrics.discard_unflushed()


@pytest.fixture(autouse=True)
def _clock_released() -> Iterator[None]:
    yield
    clock.set_frozen(None)


@pytest.fixture(autouse=True)
def _calendar_renderings_forgotten() -> Iterator[None]:
    """Each test's database starts afresh, and its projection versions with it: so does the cache."""
    from calendar_projection import feed_cache

    feed_cache.clear()
    yield
    feed_cache.clear()


@pytest.fixture
def frozen_now() -> Iterator[datetime]:
    """The clock held at a fixed instant: 2026-06-01 12:00:00 UTC."""
    at = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with clock.frozen(at):
        yield at


@pytest.fixture
def operator(db: None) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {OPERATOR_TOKEN}")
    return client


@pytest.fixture
def owner_client(db: None) -> Callable[[str], APIClient]:
    """Factory: an API client holding a fresh owner token for the given owner id."""
    from ops_api.models import OwnerApiToken

    def make(owner_id: str) -> APIClient:
        _, token = OwnerApiToken.issue(owner_id)
        client = APIClient()
        client.credentials(HTTP_X_UA_OPS_TOKEN=token)
        return client

    return make


@pytest.fixture
def alice(owner_client: Callable[[str], APIClient]) -> APIClient:
    return owner_client("alice")


def job_payload(**overrides: object) -> dict:
    body = {"command": "summarise the inbox", "every": "1h", "title": "inbox digest"}
    body.update(overrides)
    return body
