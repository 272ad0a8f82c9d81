"""Token auth (contract §1): the operator token sees everything; an owner token sees only its owner's
rows (others answer 404 as if absent). Auth is never silently off: only UA_OPS_AUTH=off disables it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rest_framework import authentication, exceptions, permissions

from ops_api.models import OwnerApiToken, token_digest


@dataclass(frozen=True)
class Principal:
    """Who is calling. `owner_id` None means the operator (no owner scoping)."""

    kind: str
    owner_id: str | None = None
    is_authenticated: bool = True

    @property
    def is_operator(self) -> bool:
        return self.owner_id is None


OPERATOR = Principal(kind="operator")


def principal_for_token(token: str | None) -> Principal | None:
    """Resolve a presented token; None when it is missing or unknown."""
    if settings.UA_OPS_AUTH == "off":
        return OPERATOR
    if not token:
        return None
    expected = settings.UA_OPS_TOKEN
    if expected and hmac.compare_digest(token.encode(), expected.encode()):
        return OPERATOR
    row = OwnerApiToken.objects.filter(digest=token_digest(token), revoked_at__isnull=True).first()
    return Principal(kind="owner", owner_id=row.owner_id) if row else None


def token_from_headers(headers: Any) -> str | None:
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return headers.get("X-UA-OPS-TOKEN") or None


class TokenAuthentication(authentication.BaseAuthentication):
    """Bearer / X-UA-OPS-TOKEN; views with `accepts_query_token = True` (the push endpoints) also take
    `?ops_token=`, because browsers cannot set headers on EventSource or WebSocket."""

    def authenticate(self, request: Any) -> tuple[Principal, None] | None:
        token = token_from_headers(request.headers)
        view = request.parser_context.get("view") if request.parser_context else None
        if not token and getattr(view, "accepts_query_token", False):
            token = request.query_params.get("ops_token")
        if settings.UA_OPS_AUTH != "off" and not token:
            return None
        principal = principal_for_token(token)
        if principal is None:
            raise exceptions.AuthenticationFailed("invalid token")
        return principal, None

    def authenticate_header(self, request: Any) -> str:
        # Present so DRF answers 401 (with WWW-Authenticate) rather than 403 for a missing token.
        return 'Bearer realm="scheduling-runtime"'


class HasValidToken(permissions.BasePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        return isinstance(request.user, Principal)


def owner_scope(request: Any) -> str | None:
    """The owner id a request is confined to (None for the operator)."""
    return request.user.owner_id
