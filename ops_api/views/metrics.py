"""Metrics surfaces (contract §8): the JSON document under /api/v1 and Prometheus text at /metrics.

Auth: metrics describe the whole runtime, not one owner's rows, so both need the operator (the operator
token, or a dashboard session); an owner token is refused with 403. `/metrics` sits outside /api/v1,
where the contract's token rule applies, but it still takes the operator token (Prometheus sends it as a
bearer token) and answers 401 without one, unless `UA_METRICS_PUBLIC=1` opens it for scrapers that cannot
authenticate.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ops_api.auth import principal_for_token, session_is_operator, token_from_headers
from ops_api.errors import json_error
from ops_api.runtime_metrics import SchedulingCollector, metrics_document


class SchedulingRuntimeMetrics(APIView):
    def get(self, request: Request) -> Response:
        # A token principal says whether it is the operator; a logged-in Django user is one if staff.
        user = request.user
        operator = getattr(user, "is_operator", None)
        if not (operator if operator is not None else getattr(user, "is_staff", False)):
            raise PermissionDenied("metrics cover the whole runtime; they need the operator token")
        return Response(metrics_document())


def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SchedulingCollector())
    try:
        body = generate_latest(registry)
    except DatabaseError:
        response = json_error(503, "database_unavailable", "the database is unreachable; retry shortly")
        response["Retry-After"] = "5"
        return response
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    if settings.UA_METRICS_PUBLIC or settings.UA_OPS_AUTH == "off":
        return None
    if session_is_operator(request.session, request.user):
        return None
    token = token_from_headers(request.headers)
    principal = principal_for_token(token) if token else None
    if principal is None:
        response = json_error(
            401, "unauthorized", "GET /metrics needs the operator token (or UA_METRICS_PUBLIC=1)"
        )
        response["WWW-Authenticate"] = 'Bearer realm="scheduling-runtime"'
        return response
    if not principal.is_operator:
        return json_error(403, "forbidden", "metrics cover the whole runtime; they need the operator token")
    return None
