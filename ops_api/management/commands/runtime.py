"""`manage.py runtime`: the embedded, one-process deployment. Applies migrations, then serves HTTP and
WebSocket with Daphne while the scheduler and projector run beside it as background workers."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
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
        host, port = options["host"], options["port"]
        call_command("migrate", interactive=False, verbosity=0)
        self._announce_auth(host, port)
        workers = [] if options["no_workers"] else embedded.start_workers()
        try:
            self._serve(host, port)
        finally:
            embedded.stop_workers(workers)

    def _announce_auth(self, host: str, port: int) -> None:
        base = f"http://{host}:{port}"
        self.stdout.write(f"Scheduling Runtime serving on {base}/ (admin at {base}/admin/)")
        if settings.UA_OPS_AUTH == "off":
            self.stderr.write("WARNING: UA_OPS_AUTH=off: the API accepts every request without a token.")
            return
        if not settings.UA_OPS_TOKEN:
            # Auth is never silently off: with no configured token, make one for this run and show it.
            settings.UA_OPS_TOKEN = secrets.token_urlsafe(24)
            self.stdout.write("UA_OPS_TOKEN is unset; generated an operator token for this run:")
            self.stdout.write(f"  operator token: {settings.UA_OPS_TOKEN}")
        self.stdout.write(f"Dashboard login: {base}/?ops_token={settings.UA_OPS_TOKEN}")
        self.stdout.flush()

    def _serve(self, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        # The deployment names its ASGI app in settings; ops_api never imports the project package.
        application = import_string(settings.ASGI_APPLICATION)
        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            action_logger=None,
            http_timeout=None,
            websocket_timeout=86400,
        ).run()
