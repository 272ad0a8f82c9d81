"""Every API failure is JSON `{"error", "detail", "field"?}` with the right 4xx (contract preamble)."""

from __future__ import annotations

import logging
from typing import Any

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scheduling.errors import DomainError

logger = logging.getLogger(__name__)

DRF_CODES: dict[type, str] = {
    exceptions.ParseError: "invalid_json",
    exceptions.NotAuthenticated: "unauthorized",
    exceptions.AuthenticationFailed: "unauthorized",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.Throttled: "throttled",
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        return Response(exc.as_dict(), status=exc.http_status)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    code = next((c for kind, c in DRF_CODES.items() if isinstance(exc, kind)), "invalid")
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        response.status_code = 401
    body: dict[str, Any] = {"error": code, "detail": _detail_text(exc)}
    if isinstance(exc, exceptions.ValidationError) and isinstance(exc.detail, dict) and exc.detail:
        body["field"] = next(iter(exc.detail))
    response.data = body
    return response


def _detail_text(exc: Exception) -> str:
    detail = getattr(exc, "detail", str(exc))
    if isinstance(detail, dict):
        name, value = next(iter(detail.items()))
        return f"{name}: {value[0] if isinstance(value, list) else value}"
    if isinstance(detail, list):
        return str(detail[0]) if detail else "invalid input"
    return str(detail)


# How long a client should wait before retrying while the database is unreachable.
DATABASE_RETRY_AFTER_SECONDS = 5


def database_unavailable(error: BaseException) -> JsonResponse:
    """503 for a request that failed because the database cannot be reached (contract §8)."""
    logger.warning(
        "database unavailable: %s: %s",
        type(error).__name__,
        str(error).strip()[:200],
        extra={"action": "database_unavailable"},
    )
    response = json_error(
        503, "database_unavailable", "the database is unreachable right now; retry in a few seconds"
    )
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


def json_error(status: int, code: str, detail: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail, **extra}, status=status)
