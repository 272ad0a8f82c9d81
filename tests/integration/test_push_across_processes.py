"""Push across processes on PostgreSQL + Redis: two Daphne servers on `config.asgi` (no scheduler or
projector inside), changes made through server A reach a client of server B. Two paths deliver:
the event log (NOTIFY wakes B's hub, which reads the log) and the channel layer (a projector process
publishes frames, with calendar entries, that reach B through Redis)."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from scheduling import clock, presence
from tests.conftest import requires_postgres, requires_redis
from tests.e2e.push_clients import SseReader, WebSocketReader, api, healthy
from tests.processes import child_env, manage, start_daphne, stop, wait_for

pytestmark = [requires_postgres, requires_redis, pytest.mark.django_db(transaction=True)]

TOKEN = "cross-process-token"


def daphne(tmp_path, name: str, **env: str) -> tuple[subprocess.Popen, str]:
    process, port = start_daphne(tmp_path / f"{name}.log", UA_OPS_TOKEN=TOKEN, **env)
    return process, f"127.0.0.1:{port}"


@pytest.fixture
def two_servers(tmp_path):
    servers = [daphne(tmp_path, name, UA_SCHED_PUSH_PROJECTOR_GRACE_MS="120000") for name in ("a", "b")]
    try:
        for _, address in servers:
            wait_for(lambda address=address: healthy(address), 90, 0.2)
        yield [address for _, address in servers]
    finally:
        for process, _ in servers:
            stop(process)
    for name in ("a", "b"):
        assert "Traceback" not in (tmp_path / f"{name}.log").read_text()


def create_job(address: str) -> dict:
    with api(address, TOKEN) as client:
        response = client.post("/api/v1/cron/jobs", json={"command": "across", "every": "1h"})
        assert response.status_code == 201, response.text
        return response.json()["job"]


def test_a_client_on_server_b_receives_a_change_made_through_server_a_from_the_log(two_servers):
    server_a, server_b = two_servers
    websocket = WebSocketReader(server_b, f"ops_token={TOKEN}&since_seq=0").start()
    sse = SseReader(server_b, f"ops_token={TOKEN}&since_seq=0").start()
    try:
        job = create_job(server_a)
        for reader in (websocket, sse):
            frame = reader.next_event(30)
            assert frame["event"]["seq"] == 1 and frame["event"]["source_ref"] == job["job_id"]
            assert "calendar_entries" not in frame  # no projector runs: the log delivered it
    finally:
        websocket.close()
        sse.close()


@pytest.fixture
def live_projector() -> None:
    """A live projector, announced before the servers start: a hub caches the answer to "is a projector
    alive?" for a few seconds, so an announcement made after a server's first look would come too late."""
    presence.announce("projector", "projector:test", clock.now() - timedelta(seconds=1))


def test_frames_a_projector_process_publishes_reach_a_client_on_another_server_through_redis(
    live_projector, two_servers, tmp_path
):
    server_a, server_b = two_servers
    # The servers now leave delivery to the projector for the grace period (here 120 s, far longer than
    # a loaded machine needs to start the publisher process).
    first = create_job(server_a)
    websocket = WebSocketReader(server_b, f"ops_token={TOKEN}&since_seq=0").start()
    try:
        # Seq 1 comes from the log, in the stream's snapshot: the subscription is live once it arrives.
        assert websocket.next_event(60)["event"]["source_ref"] == first["job_id"]
        job = create_job(server_a)
        publisher = manage("shell", "-c", PUBLISH_SEQ_2, env=child_env(), log=tmp_path / "publisher.log")
        assert publisher.wait(60) == 0, (tmp_path / "publisher.log").read_text()
        frame = websocket.next_event(60)
        assert frame["event"]["seq"] == 2 and frame["event"]["source_ref"] == job["job_id"]
        assert frame["calendar_entries"] == [{"event_id": f"cron|{job['job_id']}|0", "status": "scheduled"}]
        assert frame["projection_version"] == 41
    finally:
        websocket.close()
        stop_if_running(publisher if "publisher" in locals() else None)


PUBLISH_SEQ_2 = """
from calendar_projection.publish import event_frame, publish
from scheduling import event_log
from scheduling.models import LifecycleEvent
event = LifecycleEvent.objects.get(seq=2)
entry = {"event_id": f"cron|{event.source_ref}|0", "status": "scheduled"}
publish([event_frame(event_log.envelope(event), 41, 2, [entry])])
"""


def stop_if_running(process: subprocess.Popen | None) -> None:
    if process is not None:
        stop(process)
