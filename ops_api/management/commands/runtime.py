"""`manage.py runtime`: the embedded, one-process deployment. Takes its port, applies migrations, then
serves HTTP and WebSocket with Daphne while the scheduler and projector run beside it as background workers.

The listening socket is made first, before migrations, the banner or any worker: a port that is taken
ends the command at once with one error line, having printed no token and written no run or event
(contract §8). Daphne then adopts that very socket (`fd:` endpoint), so nothing can take the port between
the check and the serving.

`--server-processes N` (PostgreSQL only) serves from N child processes that all accept on that one
socket, so requests use every core instead of sharing one interpreter lock with each other and with the
scheduler and projector. The scheduler stays a thread of this process; the projector becomes a
`run_projector` child. The children get the listening socket and the operator token by inheritance
(never on a command line), die with this process (PR_SET_PDEATHSIG), and one that exits unexpectedly is
started again."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils.module_loading import import_string

from ops_api import embedded

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Migrate, then serve the API, admin and push streams and run the scheduler in one process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-workers", action="store_true", help="serve only; run no scheduler here")
        parser.add_argument(
            "--server-processes",
            type=int,
            default=None,
            help="serve HTTP from this many processes sharing the port (PostgreSQL only; default "
            "UA_SERVER_PROCESSES, 1: serve from this process)",
        )
        # Internal: a server child of --server-processes, serving on an inherited listening socket.
        parser.add_argument("--serve-fd", type=int, default=None, help=argparse.SUPPRESS)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["serve_fd"] is not None:
            self._serve_inherited(options["serve_fd"])
            return
        host = options["host"]
        processes = options["server_processes"] or settings.UA_SERVER_PROCESSES
        if processes < 1:
            raise CommandError("--server-processes must be at least 1")
        if processes > 1 and connection.vendor != "postgresql":
            raise CommandError(
                "--server-processes above 1 needs PostgreSQL (set DATABASE_URL=postgres://...)"
            )
        listener = listen(host, options["port"])
        port = listener.getsockname()[1]
        call_command("migrate", interactive=False, verbosity=0)
        self._announce_auth(host, port)
        # With server processes, the projector is a process too (run_projector, at a lower CPU priority):
        # its frames could not reach the servers' push hubs from this process anyway (no shared memory).
        threads = ("scheduler",) if processes > 1 else ("scheduler", "projector")
        workers = [] if options["no_workers"] else embedded.start_workers(threads)
        try:
            if processes > 1:
                ServerProcesses(listener, processes, self.stdout, projector=not options["no_workers"]).run()
            else:
                self._serve(listener, host, port)
        finally:
            embedded.stop_workers(workers)
            self.stdout.write("Scheduling Runtime stopped.")
            self.stdout.flush()

    def _announce_auth(self, host: str, port: int) -> None:
        base = f"http://{host}:{port}"
        self.stdout.write(f"Scheduling Runtime serving on {base}/ (admin at {base}/admin/)")
        if settings.UA_OPS_AUTH == "off":
            self.stderr.write("WARNING: UA_OPS_AUTH=off: the API accepts every request without a token.")
            return
        if settings.UA_OPS_TOKEN:
            # A token from the environment is the operator's secret: never printed or logged (§1).
            self.stdout.write(f"Dashboard login: {base}/?ops_token=<your UA_OPS_TOKEN>")
        else:
            # Auth is never silently off: with no configured token, make one for this run and show it.
            settings.UA_OPS_TOKEN = secrets.token_urlsafe(24)
            self.stdout.write("UA_OPS_TOKEN is unset; generated an operator token for this run:")
            self.stdout.write(f"  operator token: {settings.UA_OPS_TOKEN}")
            self.stdout.write(f"Dashboard login: {base}/?ops_token={settings.UA_OPS_TOKEN}")
        self.stdout.write("Ctrl-C (or SIGTERM) stops the runtime.")
        self.stdout.flush()

    def _serve_inherited(self, fd: int) -> None:
        """A server child: Daphne on the listening socket its parent made (already migrated)."""
        from daphne.endpoints import build_endpoint_description_strings

        _run_daphne(build_endpoint_description_strings(file_descriptor=fd))

    def _serve(self, listener: socket.socket, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings

        if listener.family == socket.AF_INET:
            # Twisted adopts the descriptor and closes it when done: hand it over, do not close it twice.
            endpoints = build_endpoint_description_strings(file_descriptor=listener.detach())
        else:
            # Twisted's `fd:` endpoint string cannot name IPv6, so Daphne binds again right after the
            # check; a port taken in between still stops the server (Daphne stops on a listen failure).
            listener.close()
            endpoints = build_endpoint_description_strings(host=host, port=port)
        _run_daphne(endpoints)


def _run_daphne(endpoints: list[str]) -> None:
    from daphne.server import Server

    # The deployment names its ASGI app in settings; ops_api never imports the project package.
    application = import_string(settings.ASGI_APPLICATION)
    Server(
        application=application,
        endpoints=endpoints,
        action_logger=None,
        http_timeout=None,
        websocket_timeout=86400,
    ).run()


class ServerProcesses:
    """N `runtime --serve-fd` children accepting on one listening socket, and with `projector` a
    `run_projector` child, kept running until this process is asked to stop (SIGINT or SIGTERM), then
    stopped with SIGTERM (Daphne closes its connections, the projector finishes its batch)."""

    RESTART_DELAY_SECONDS = 1.0
    STOP_GRACE_SECONDS = 10.0

    def __init__(self, listener: socket.socket, count: int, stdout: Any, projector: bool = False) -> None:
        self.listener, self.count, self.stdout = listener, count, stdout
        self.roles = ["server"] * count + (["projector"] if projector else [])
        self.stopping = threading.Event()
        self.children: list[subprocess.Popen] = []

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.children = [self._start(role) for role in self.roles]
            servers = " ".join(str(child.pid) for child in self.children[: self.count])
            self.stdout.write(f"Serving from {self.count} processes: {servers}")
            if len(self.children) > self.count:
                self.stdout.write(f"Projector process: {self.children[-1].pid}")
            self.stdout.flush()
            while not self.stopping.wait(0.5):
                for index, child in enumerate(self.children):
                    if child.poll() is not None and not self.stopping.is_set():
                        logger.error(
                            "action=server_process_exited role=%s pid=%s exit_code=%s (starting another)",
                            self.roles[index],
                            child.pid,
                            child.returncode,
                            extra={"action": "server_process_exited"},
                        )
                        self.stopping.wait(self.RESTART_DELAY_SECONDS)
                        if not self.stopping.is_set():
                            self.children[index] = self._start(self.roles[index])
        finally:
            self._stop_children()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.listener.close()

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping.set()

    def _start(self, role: str) -> subprocess.Popen:
        fd = self.listener.fileno()
        env = dict(os.environ)  # manage.py, which the children run, sets DJANGO_SETTINGS_MODULE itself
        if settings.UA_OPS_TOKEN:
            env["UA_OPS_TOKEN"] = settings.UA_OPS_TOKEN  # a generated token too; inherited, never printed
        manage = [sys.executable, os.path.abspath(sys.argv[0])]
        if role == "projector":
            return subprocess.Popen([*manage, "run_projector"], env=env, preexec_fn=_die_with_parent)
        return subprocess.Popen(
            [*manage, "runtime", "--serve-fd", str(fd)],
            pass_fds=[fd],
            env=env,
            preexec_fn=_die_with_parent,
        )

    def _stop_children(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(self.STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _die_with_parent() -> None:
    """In the child before exec: a SIGKILLed runtime must not leave servers behind (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def listen(host: str, port: int) -> socket.socket:
    """The server's listening socket, or a CommandError (exit status 1, one line naming host:port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As any server does: a port left in TIME_WAIT by the last run is free; one being listened on is not.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    return sock
