from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ops_api.errors import database_unavailable, json_error
from scheduling.database_faults import is_connection_error
from scheduling.storable_text import UNSTORABLE

BULK_CREATE_PATH = "/api/v1/cron/jobs"


class ApiPayloadLimitMiddleware:
    """API bodies over UA_API_MAX_BODY_BYTES (64 KiB) answer 413, and URLs holding NUL characters 400,
    before any view or parser runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/"):
            if self._too_large(request):
                limit = settings.UA_API_MAX_BODY_BYTES
                return json_error(413, "payload_too_large", f"request bodies are limited to {limit} bytes")
            field = self._nul_in_url(request)
            if field:
                detail = "the URL may not contain NUL (%00) characters"
                return json_error(400, "invalid", detail, field=field)
        return self.get_response(request)

    @staticmethod
    def _nul_in_url(request: HttpRequest) -> str | None:
        # PostgreSQL cannot compare or store text holding NUL: refuse it before any query sees it.
        if UNSTORABLE.search(request.path):
            return "path"
        for name, values in request.GET.lists():
            if UNSTORABLE.search(name) or any(UNSTORABLE.search(value) for value in values):
                return name
        return None

    @staticmethod
    def _too_large(request: HttpRequest) -> bool:
        limit = settings.UA_API_MAX_BODY_BYTES
        bulk = request.method == "POST" and request.path == BULK_CREATE_PATH
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > (max(limit, settings.UA_API_MAX_BULK_BODY_BYTES) if bulk else limit):
            return True
        if request.method not in ("POST", "PUT", "PATCH"):
            return False
        # Chunked bodies declare no length: measure what actually arrived.
        body = request.body
        if bulk and body.lstrip()[:1] == b"[":
            # A bulk create array holds up to 1,000 jobs; the service holds each item to the one-job limit.
            limit = max(limit, settings.UA_API_MAX_BULK_BODY_BYTES)
        return len(body) > limit


class DatabaseUnavailableMiddleware:
    """A view that fails because the database cannot be reached answers 503 with Retry-After and a JSON
    error (contract §8), never a 500 traceback. DRF views reach here too: their exception handler leaves
    non-API errors to Django, which offers them to `process_exception`. Installed last in MIDDLEWARE, so
    its `process_exception` runs first."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not is_connection_error(exception):
            return None
        return database_unavailable(exception)
