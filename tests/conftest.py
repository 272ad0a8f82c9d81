"""The named cast: an operator client, an owner token and client, a controllable clock."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from django.conf import settings
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
