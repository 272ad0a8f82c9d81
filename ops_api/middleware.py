from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from ops_api.errors import json_error


class ApiPayloadLimitMiddleware:
    """API bodies over UA_API_MAX_BODY_BYTES (64 KiB) answer 413 before any view or parser runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and self._too_large(request):
            limit = settings.UA_API_MAX_BODY_BYTES
            return json_error(413, "payload_too_large", f"request bodies are limited to {limit} bytes")
        return self.get_response(request)

    @staticmethod
    def _too_large(request: HttpRequest) -> bool:
        limit = settings.UA_API_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return True
        # Chunked bodies declare no length: measure what actually arrived.
        return request.method in ("POST", "PUT", "PATCH") and len(request.body) > limit
