"""Schemathesis fuzzes a live `runtime` from its own OpenAPI description, with the operator token: every
answer must be non-5xx and conform to the schema. Bounded in time (UA_FUZZ_SECONDS, default 45) and
seeded, so CI is repeatable; runs on whichever database the suite runs on."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from django.db import connection

from tests.processes import child_env, free_port, manage, stop, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "fuzz-operator-token"
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance"


@pytest.fixture
def live_runtime(tmp_path):
    port = free_port()
    env = child_env(UA_OPS_TOKEN=TOKEN, UA_OPS_AUTH="on")
    if connection.vendor != "postgresql":
        env.pop("DATABASE_URL")
        env["UA_SQLITE_PATH"] = str(tmp_path / "fuzz.sqlite3")
    process = manage("runtime", "--port", str(port), env=env, log=tmp_path / "runtime.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _healthy(base), 90, 0.2)
        yield base, tmp_path / "runtime.log"
    finally:
        stop(process)


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_fuzzed_requests_never_get_a_5xx_and_every_answer_matches_the_schema(live_runtime, tmp_path):
    base, log = live_runtime
    seconds = os.environ.get("UA_FUZZ_SECONDS", "45")
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{base}/api/schema/",
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        CHECKS,
        "--max-time",
        seconds,
        "--seed",
        "20261201",
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        # The SSE stream is long-lived unless once=1: its frames are tested over real sockets elsewhere.
        "--exclude-path",
        "/api/v1/ops/scheduling/stream",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=int(seconds) * 4 + 120)
    output = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"schemathesis found defects:\n{output}"
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
