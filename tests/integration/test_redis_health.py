"""Health pings the Redis channel layer instead of assuming it is up."""

from __future__ import annotations

import pytest

from tests.conftest import requires_redis

pytestmark = [requires_redis, pytest.mark.django_db]


def test_health_reports_a_reachable_redis_channel_layer(client):
    assert client.get("/api/v1/health").json()["channel_layer"] == {"backend": "redis", "status": "ok"}


def test_health_reports_an_unreachable_redis_channel_layer(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:9/0"
    layer = client.get("/api/v1/health").json()["channel_layer"]
    assert layer["backend"] == "redis" and layer["status"].startswith("error")
