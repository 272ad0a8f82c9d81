"""Headless Chromium against a real `manage.py runtime`, for the dashboard's browser tests and benchmark.

Debian's chromium at /usr/bin/chromium, driven by the `playwright` package; browsers are never
downloaded. A `Watched` page records console errors and every request that leaves the runtime's host.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.processes import ROOT, child_env, free_port, manage, stop, wait_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPS_TOKEN = "dashboard-browser-token"


@dataclass
class Runtime:
    base: str
    process: Popen
    log: Path
    env: dict[str, str]

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {OPS_TOKEN}"}, timeout=30)


def runtime_env(workdir: Path, use_test_database: bool, **overrides: str) -> dict[str, str]:
    """The runtime's environment: the test's PostgreSQL database, or a SQLite file of its own (the test
    process's SQLite test database is in memory, so a child cannot share it)."""
    env = child_env(UA_OPS_TOKEN=OPS_TOKEN, UA_OPS_AUTH="on", **overrides)
    if not use_test_database:
        env.pop("DATABASE_URL", None)
        env["UA_SQLITE_PATH"] = str(workdir / "dashboard.sqlite3")
    return env


def start_runtime(workdir: Path, env: dict[str, str], port: int | None = None) -> Runtime:
    port = port or free_port()
    log = workdir / f"runtime-{port}.log"
    process = manage("runtime", "--port", str(port), env=env, log=log)
    runtime = Runtime(f"http://127.0.0.1:{port}", process, log, env)
    try:
        wait_for(lambda: _healthy(runtime) or process.poll() is not None, 90, 0.2)
    except AssertionError:
        stop(process)
        raise
    if process.poll() is not None:
        raise AssertionError(f"runtime exited: {log.read_text()[-2000:]}")
    return runtime


# Makes a one-shot job whose time passed while "the runtime was down": created through the job service
# under a clock held 10 minutes back (the API refuses a run_at in the past), so the running scheduler
# finds the occurrence overdue, records it as missed and opens a stasis entry, as after real downtime.
MISSED_JOB_CODE = """
from datetime import timedelta
from scheduling import clock
from scheduling.services import jobs
with clock.frozen(clock.now() - timedelta(minutes=10)):
    job = jobs.create_job({"command": %(command)r, "title": %(title)r, "run_at": "1m"}, None)
print(job.job_id)
"""


def create_missed_job(runtime: Runtime, title: str, command: str = "missed while down") -> str:
    """A job whose only occurrence was missed, made through the services in the runtime's database."""
    code = MISSED_JOB_CODE % {"command": command, "title": title}
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        env=runtime.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise AssertionError(done.stderr)
    return done.stdout.strip().splitlines()[-1]


def stop_runtime(runtime: Runtime) -> None:
    stop(runtime.process)


def _healthy(runtime: Runtime) -> bool:
    try:
        return httpx.get(f"{runtime.base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


@dataclass
class Watched:
    """A page plus what it logged and fetched."""

    page: Any
    host: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console_errors.append(f"pageerror: {error}"))
        self.page.on("request", self._request)
        self.page.on("websocket", lambda socket: self.websockets.append(socket.url))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def _request(self, request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("data", "blob", "about"):
            return
        if parts.netloc != self.host:
            self.foreign_requests.append(request.url)


def open_dashboard(browser: Any, runtime: Runtime, query: str = "", width: int = 1280) -> Watched:
    context = browser.new_context(viewport={"width": width, "height": 900})
    watched = Watched(context.new_page(), runtime.host)
    separator = "&" if query else ""
    watched.page.goto(f"{runtime.base}/?{query}{separator}ops_token={OPS_TOKEN}")
    watched.page.wait_for_selector(
        "[data-projection-version]:not([data-projection-version=''])", timeout=15000
    )
    return watched
