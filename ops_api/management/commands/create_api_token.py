from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ops_api.models import OwnerApiToken


class Command(BaseCommand):
    help = "Issue an owner-scoped API token. The token is printed once, as the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--owner", required=True, help="owner id the token is confined to")
        parser.add_argument("--label", default="", help="free text to recognise the token by")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = options["owner"].strip()
        if not owner:
            self.stderr.write("--owner must not be empty")
            raise SystemExit(2)
        _, token = OwnerApiToken.issue(owner, options["label"])
        self.stdout.write(f"Owner token for {owner!r} (shown once; store it now):")
        self.stdout.write(token)
