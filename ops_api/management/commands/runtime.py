"""`manage.py runtime`: the embedded, one-process deployment. Takes its port, applies migrations, then
serves HTTP and WebSocket with Daphne while the scheduler and projector run beside it as background workers.

The listening socket is made first, before migrations, the banner or any worker: a port that is taken
ends the command at once with one error line, having printed no token and written no run or event
(contract §8). Daphne then adopts that very socket (`fd:` endpoint), so nothing can take the port between
the check and the serving."""

from __future__ import annotations

import logging
import secrets
import socket
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from ops_api import embedded

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Migrate, then serve the API, admin and push streams and run the scheduler in one process."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-workers", action="store_true", help="serve only; run no scheduler here")

    def handle(self, *args: Any, **options: Any) -> None:
        host = options["host"]
        listener = listen(host, options["port"])
        port = listener.getsockname()[1]
        call_command("migrate", interactive=False, verbosity=0)
        self._announce_auth(host, port)
        workers = [] if options["no_workers"] else embedded.start_workers()
        try:
            self._serve(listener, host, port)
        finally:
            embedded.stop_workers(workers)
            self.stdout.write("Scheduling Runtime stopped.")

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

    def _serve(self, listener: socket.socket, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        # The deployment names its ASGI app in settings; ops_api never imports the project package.
        application = import_string(settings.ASGI_APPLICATION)
        if listener.family == socket.AF_INET:
            # Twisted adopts the descriptor and closes it when done: hand it over, do not close it twice.
            endpoints = build_endpoint_description_strings(file_descriptor=listener.detach())
        else:
            # Twisted's `fd:` endpoint string cannot name IPv6, so Daphne binds again right after the
            # check; a port taken in between still stops the server (Daphne stops on a listen failure).
            listener.close()
            endpoints = build_endpoint_description_strings(host=host, port=port)
        Server(
            application=application,
            endpoints=endpoints,
            action_logger=None,
            http_timeout=None,
            websocket_timeout=86400,
        ).run()


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
