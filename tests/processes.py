"""Real processes for integration and end-to-end tests: scheduler processes and the runtime server,
started with `manage.py` against the test database, plus one wait-with-deadline helper."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until `predicate()` is truthy (returning it) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def test_database_url() -> str:
    """DATABASE_URL of the database pytest-django created, for child processes."""
    cfg = connection.settings_dict
    if connection.vendor == "postgresql":
        host, port = cfg.get("HOST") or "127.0.0.1", cfg.get("PORT") or 5432
        auth = cfg["USER"] + (f":{cfg['PASSWORD']}" if cfg.get("PASSWORD") else "")
        return f"postgres://{auth}@{host}:{port}/{cfg['NAME']}"
    return f"sqlite:///{cfg['NAME']}"


def child_env(**overrides: str) -> dict[str, str]:
    # Projector processes keep normal CPU priority here: in a test they share the cores with the other
    # test worker, and a test waits for what they project (production lowers it, UA_PROJECTOR_NICE).
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "PYTHONUNBUFFERED": "1",
        "UA_PROJECTOR_NICE": "0",
        **overrides,
    }
    return env


def manage(*args: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def start_daphne(log: Path, **env: str) -> tuple[subprocess.Popen, int]:
    """`daphne config.asgi:application` (the production server) on a free port, with child_env(**env);
    returns the process and its port. The caller waits for it to answer and stops it."""
    port = free_port()
    out = open(log, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
        cwd=ROOT,
        env=child_env(**env),
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return process, port


def stop(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
